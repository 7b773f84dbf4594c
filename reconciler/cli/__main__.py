"""`python -m reconciler.cli`: the same command as `reconciler`."""

from reconciler.cli import main

main()
