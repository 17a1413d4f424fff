"""``python -m services.cli``: the ``newsflow`` command."""

from services.cli.main import main

main()
