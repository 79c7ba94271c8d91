"""``python -m gitrecords.cli``: the same as the ``gitrecords`` console script."""

from . import main

main()
