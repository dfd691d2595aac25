"""`python -m service` is the `wsrelay` command."""

from .cli import main

main()
