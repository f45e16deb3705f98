"""`rulesvc` command line: authoring commands here, service/operations commands in cli_ops."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="rulesvc",
    help="rulesvc — rules-first decision service for financial ticket systems.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def main() -> None:
    from rulesvc import cli_authoring, cli_ops, cli_rulesets

    cli_authoring.register(app)
    cli_ops.register(app)
    cli_rulesets.register(app)
    app()
