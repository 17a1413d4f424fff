"""Helpers shared by tests: message factories and service processes."""
