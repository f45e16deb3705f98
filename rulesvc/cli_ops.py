"""Service and operations commands (serve, keys, audit, ...)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the operations commands to the root app."""
