"""`rulesvc data-keys new|rotate`: the keys encrypting the clear inputs at rest (`rulesvc.datakeys`)."""

from __future__ import annotations

import json

import typer

from rulesvc.settings import Settings

data_keys_app = typer.Typer(
    help="Encryption at rest of the clear inputs (RULESVC_DATA_KEYS / RULESVC_DATA_KEY_FILE).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(data_keys_app, name="data-keys")


@data_keys_app.command("new")
def data_keys_new() -> None:
    """Print a fresh 32-byte key (base64url) to add to the keyring under a new id."""
    from rulesvc.datakeys import new_key_text

    typer.echo(new_key_text())


@data_keys_app.command("rotate")
def data_keys_rotate() -> None:
    """Re-wrap every stored input's data key under the current key, encrypting rows stored in clear (in
    small transactions: the service keeps running). Then keys no row names any more may be dropped."""
    from rulesvc.datakeys import DataKeyError
    from rulesvc.wiring.database import rotate_data_keys

    try:
        counts = rotate_data_keys(Settings())
    except DataKeyError as exc:
        typer.echo(f"{exc.code}: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(counts, ensure_ascii=False))
