"""`rulesvc backup FILE` and `rulesvc restore FILE`: a copy of the configured database while the service
runs, and putting one back into a fresh database, migrated and verified (docs/operations.md).

Both print one JSON object on stdout; exit 1 when the copy or the restored database does not verify, 2
when the copy cannot be taken or put back (the reason in Chinese on stderr, with its code).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rulesvc.settings import Settings


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)


def backup(
    file: Path = typer.Argument(..., help="the copy to write (must not exist)"),
    pg_dump: str | None = typer.Option(None, "--pg-dump", help="pg_dump to run (default: found on the PATH)"),
    checkpoint: bool = typer.Option(
        True, "--checkpoint/--no-checkpoint", help="sign a checkpoint of the live chain just before the copy"
    ),
) -> None:
    """Copy the configured database while the service runs: SQLite through its online backup API (one
    consistent state), PostgreSQL with `pg_dump -Fc` of one snapshot. The checkpoints the copy extends are
    kept in FILE.checkpoints/; an SQLite copy is verified at once."""
    from rulesvc.wiring.backup import BackupError, take_backup

    try:
        result = take_backup(Settings(), file, pg_dump=pg_dump, checkpoint=checkpoint)
    except BackupError as exc:
        typer.echo(f"{exc.code}: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
    if not result.ok:
        raise typer.Exit(1)


def restore(
    file: Path = typer.Argument(..., help="a copy made by `rulesvc backup` (or pg_dump -Fc)"),
    checkpoints: list[Path] = typer.Option(
        [],
        "--checkpoints",
        help="directory of signed checkpoints to verify against (repeatable; default FILE.checkpoints/)",
    ),
    pg_restore: str | None = typer.Option(
        None, "--pg-restore", help="pg_restore to run (default: found on the PATH)"
    ),
) -> None:
    """Put a backup into the configured database (a new SQLite file, or an empty PostgreSQL database),
    migrate it to this release's schema, and verify it offline against the checkpoints kept with it."""
    from rulesvc.wiring.backup import BackupError, restore_backup

    try:
        result = restore_backup(Settings(), file, checkpoints, pg_restore=pg_restore)
    except BackupError as exc:
        typer.echo(f"{exc.code}: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
    if not result.ok:
        raise typer.Exit(1)
