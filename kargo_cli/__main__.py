"""`python -m kargo_cli`: the same as the installed `kargo` command."""

from kargo_cli.main import main

main()
