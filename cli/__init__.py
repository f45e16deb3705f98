"""The `rulesvc` command line, in one place: `main` is the console script."""

from cli.root import app, main

__all__ = ["app", "main"]
