"""`rulesvc` command line: authoring commands in `authoring`, service/operations commands in `ops`,
people and keys in `people`, ruleset and calendar lifecycle commands in `rulesets` and `calendars`."""

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
    from cli import (
        authoring,
        backup,
        calendars,
        cases,
        datakeys,
        dmn,
        evidence,
        ops,
        people,
        rulesets,
        tables,
    )

    authoring.register(app)
    ops.register(app)
    backup.register(app)
    people.register(app)
    rulesets.register(app)
    calendars.register(app)
    datakeys.register(app)
    dmn.register(app)
    tables.register(app)
    cases.register(app)
    evidence.register(app)
    app()
