"""``python -m chaosrunner`` is the same as the ``chaosrunner`` command."""

from chaosrunner.cli import main

main()
