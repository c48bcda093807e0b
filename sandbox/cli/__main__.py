"""``python -m sandbox.cli``: the ``dp-sandbox`` command."""

from sandbox.cli import main

main()
