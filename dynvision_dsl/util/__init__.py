"""Small helpers shared by the CLI and the science layer (files, `--set` params)."""
