"""The command line: thin Typer commands that delegate to the services."""
