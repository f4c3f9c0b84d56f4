"""`python -m cli` runs portintel (the same as the `portintel` console script)."""

from cli.app import main

main()
