"""The portintel command line: thin Typer commands over `core.pipeline`."""
