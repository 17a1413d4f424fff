"""Every ``newsflow`` command: one module per command group, plumbing in ``common``.

The only package allowed to import every other ``services`` package (a test checks it).
"""
