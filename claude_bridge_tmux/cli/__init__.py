"""Our own command line: the drop-in `claude -p` front (main), typer subcommands, help/version, the `claude` shim."""
