"""`rulesvc dmn import MODEL.dmn --out DIR` and `rulesvc dmn eval MODEL.dmn --decision NAME --input JSON`.

Both go through the importer (`rulesvc.lang.dmn`): eval loads the imported kind and ruleset exactly as a
rules folder is loaded and evaluates them on the engine (`CompiledRuleset.evaluate`), then reads the
decision's result fact back in DMN's shape."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer

from rulesvc.errors import InvalidEventError, InvalidRulesetError, RuleRuntimeError, RulesetError

dmn_app = typer.Typer(
    help="DMN 1.3–1.5 decision tables: import into a rules folder, evaluate", no_args_is_help=True
)


def _read(model: Path) -> tuple[str, str]:
    try:
        return str(model), model.read_text(encoding="utf-8")
    except OSError as exc:
        typer.echo(f"{model}: 无法读取：{exc.strerror}", err=True)
        raise typer.Exit(2) from None


def _fail(errors: list[RulesetError]) -> None:
    for error in errors:
        typer.echo(str(error))
    typer.echo(f"共 {len(errors)} 处错误", err=True)
    raise typer.Exit(1)


def write_folder(model_file: str, text: str, out: Path) -> tuple[Path, Path]:
    from rulesvc.lang.dmn import import_dmn

    model = import_dmn(model_file, text)
    (out / "kinds").mkdir(parents=True, exist_ok=True)
    kind_path = out / "kinds" / f"{model.kind}.yaml"
    ruleset_path = out / f"{model.ruleset}.yaml"
    kind_path.write_text(model.kind_yaml, encoding="utf-8")
    ruleset_path.write_text(model.ruleset_yaml, encoding="utf-8")
    return kind_path, ruleset_path


@dmn_app.command("import")
def import_command(
    model: Path = typer.Argument(..., help="the .dmn file"),
    out: Path = typer.Option(
        ..., "--out", help="the rules folder to write (kinds/<kind>.yaml, <ruleset>.yaml)"
    ),
) -> None:
    """Write the model's decision tables as a ruleset folder that `rulesvc check` accepts."""
    file, text = _read(model)
    try:
        kind_path, ruleset_path = write_folder(file, text, out)
    except InvalidRulesetError as exc:
        _fail(exc.errors)
        return
    typer.echo(f"已写入 {kind_path} 和 {ruleset_path}")


@dmn_app.command("export")
def export_command(
    ruleset: str = typer.Option(..., "--ruleset", help="the ruleset whose tables to export"),
    paths: list[Path] = typer.Argument(None, help="rules folders (default: rulesets/)"),
    out: Path = typer.Option(..., "--out", help="the .dmn file to write"),
) -> None:
    """Write a ruleset's decision tables (tables with outputs) as a DMN 1.3 model."""
    from rulesvc.lang.dmn_export import export_dmn
    from rulesvc.lang.loader import load_folder

    folder, errors = load_folder(paths or [Path("rulesets")])
    if errors:
        _fail(errors)
    if ruleset not in folder.rulesets:
        typer.echo(f"没有规则集 {ruleset!r}（有：{', '.join(sorted(folder.rulesets)) or '无'}）", err=True)
        raise typer.Exit(2)
    try:
        text = export_dmn(folder.rulesets[ruleset], folder.kinds)
    except InvalidRulesetError as exc:
        _fail(exc.errors)
        return
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}")


def evaluate(model_file: str, text: str, decision: str, inputs: dict[str, Any]) -> Any:
    """The decision's value in DMN's shape (see `rulesvc dmn eval`); raises InvalidRulesetError (the model
    or its translation), InvalidEventError (the inputs), RuleRuntimeError (a UNIQUE/ANY violation) or
    KeyError (no such decision)."""
    from rulesvc.engine.compiler import base_scope
    from rulesvc.lang.dmn import import_dmn
    from rulesvc.lang.kinds import load_kind
    from rulesvc.lang.loader import RulesFolder, load_ruleset
    from rulesvc.rulebook import RuleBook
    from rulesvc.sla.calendar import always_open
    from rulesvc.validation import read_event

    model = import_dmn(model_file, text)
    if decision not in model.decisions:
        raise KeyError(decision)
    kind, errors = load_kind(f"kinds/{model.kind}.yaml", model.kind_yaml)
    if kind is None or errors:
        raise InvalidRulesetError(errors)
    calendars = {"24x7": always_open()}
    ruleset, errors = load_ruleset(
        f"{model.ruleset}.yaml", model.ruleset_yaml, {kind.kind: kind}, calendars, analyse=False
    )
    if ruleset is None or errors:
        raise InvalidRulesetError(errors)
    book = RuleBook(RulesFolder({kind.kind: kind}, calendars, {ruleset.name: ruleset}))
    ticket: dict[str, Any] = {"kind": kind.kind, "id": "dmn-eval"}
    flat: dict[str, Any] = {}
    for name, value in inputs.items():
        if isinstance(value, dict) and name not in model.inputs:
            flat.update({f"{name}.{part}": item for part, item in value.items()})
        else:
            flat[name] = value
    for name, value in flat.items():
        if name not in model.inputs:
            known = ", ".join(model.inputs) or "none"
            raise InvalidEventError(f"{name}: 模型没有这个输入数据（输入数据：{known}）", name)
        ticket[model.inputs[name]] = value
    now = datetime.now(UTC)
    event = read_event(
        {"event_id": "dmn-eval", "type": "ticket.created", "occurred_at": now.isoformat(), "ticket": ticket},
        {kind.kind: kind},
        now=now,
    ).event
    run = book.compiled[ruleset.name].evaluate(event, base_scope(event))
    target = model.decisions[decision]
    fact = run.facts.get(target.fact)
    if fact is None:
        return None
    values = {output.name: fact.get(output.field) for output in target.outputs}
    if target.aggregate is not None:
        return next(iter(values.values()))
    if target.hit in ("rule_order", "output_order", "collect"):
        columns = {name: list(column or []) for name, column in values.items()}
        if len(columns) == 1:
            return next(iter(columns.values()))
        count = len(next(iter(columns.values()), []))
        return [{name: columns[name][i] for name in columns} for i in range(count)]
    if len(values) == 1:
        return next(iter(values.values()))
    return values


@dmn_app.command("eval")
def eval_command(
    model: Path = typer.Argument(..., help="the .dmn file"),
    decision: str = typer.Option(..., "--decision", help="the decision's name in the model"),
    input_json: str = typer.Option("{}", "--input", help='the input data as JSON, e.g. {"Age": 18}'),
) -> None:
    """Evaluate one decision; print its value as JSON (one output → the value; several → an object by output
    name; RULE ORDER / OUTPUT ORDER / COLLECT → a list; an aggregation → the number; no match → null)."""
    from rulesvc import exactjson

    file, text = _read(model)
    try:
        inputs = exactjson.loads(input_json)
    except ValueError as exc:
        typer.echo(f"--input 不是合法的 JSON：{exc}", err=True)
        raise typer.Exit(2) from None
    if not isinstance(inputs, dict):
        typer.echo("--input 须是 JSON 对象（输入数据名 → 值）", err=True)
        raise typer.Exit(2)
    try:
        value = evaluate(file, text, decision, inputs)
    except InvalidRulesetError as exc:
        _fail(exc.errors)
        return
    except KeyError:
        typer.echo(f"模型里没有决策 {decision!r}", err=True)
        raise typer.Exit(2) from None
    except (InvalidEventError, RuleRuntimeError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(exactjson.dumps(_plain(value)))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


jdm_app = typer.Typer(
    help="GoRules JDM decision tables: import into a rules folder, export", no_args_is_help=True
)


@jdm_app.command("import")
def jdm_import_command(
    model: Path = typer.Argument(..., help="the JDM .json file"),
    out: Path = typer.Option(..., "--out", help="the rules folder to write"),
    name: str | None = typer.Option(
        None, "--name", help="the kind's and ruleset's name (default: the file's)"
    ),
) -> None:
    """Write a JDM graph's decision tables as a ruleset folder that `rulesvc check` accepts."""
    from rulesvc.lang.jdm import import_jdm

    file, text = _read(model)
    try:
        found = import_jdm(file, text, name or model.stem)
    except InvalidRulesetError as exc:
        _fail(exc.errors)
        return
    (out / "kinds").mkdir(parents=True, exist_ok=True)
    (out / "kinds" / f"{found.kind}.yaml").write_text(found.kind_yaml, encoding="utf-8")
    (out / f"{found.ruleset}.yaml").write_text(found.ruleset_yaml, encoding="utf-8")
    typer.echo(f"已写入 {out / 'kinds' / (found.kind + '.yaml')} 和 {out / (found.ruleset + '.yaml')}")


@jdm_app.command("export")
def jdm_export_command(
    ruleset: str = typer.Option(..., "--ruleset", help="the ruleset"),
    table: str = typer.Option(..., "--table", help="the table's id"),
    paths: list[Path] = typer.Argument(None, help="rules folders (default: rulesets/)"),
    out: Path = typer.Option(..., "--out", help="the JDM .json file to write"),
) -> None:
    """Write one decision table (hit: first or collect, with outputs) as a JDM graph."""
    from rulesvc.lang.jdm import export_jdm
    from rulesvc.lang.loader import load_folder

    folder, errors = load_folder(paths or [Path("rulesets")])
    if errors:
        _fail(errors)
    if ruleset not in folder.rulesets:
        typer.echo(f"没有规则集 {ruleset!r}", err=True)
        raise typer.Exit(2)
    try:
        text = export_jdm(folder.rulesets[ruleset], folder.kinds, table)
    except InvalidRulesetError as exc:
        _fail(exc.errors)
        return
    except KeyError:
        typer.echo(f"规则集 {ruleset} 没有决策表 {table!r}", err=True)
        raise typer.Exit(2) from None
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(dmn_app, name="dmn")
    app.add_typer(jdm_app, name="jdm")
