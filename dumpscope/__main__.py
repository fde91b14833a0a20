"""Entry point for `python -m dumpscope`."""

from dumpscope.cli import main

main()
