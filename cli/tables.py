"""`rulesvc tables export|import`: a decision table as an Excel (XLSX) or CSV sheet, and back.

    rulesvc tables export rulesets/expense-approval.yaml --table 报销审批 --out 报销审批.xlsx
    rulesvc tables import 报销审批.xlsx --ruleset rulesets/expense-approval.yaml

Import rewrites the ruleset file on disk (or `--out`): a working copy to check, test and upload as a draft;
nothing is published from here. Errors are printed by cell (`报销审批.xlsx!报销审批!E5: ...`)."""

from __future__ import annotations

from pathlib import Path

import typer

from rulesvc.errors import RulesetError

tables_app = typer.Typer(help="决策表与 Excel（XLSX）/CSV 互相转换", no_args_is_help=True)


def fail(errors: list[RulesetError]) -> None:
    for error in errors:
        typer.echo(str(error))
    typer.echo(f"{len(errors)} 个错误", err=True)
    raise typer.Exit(1)


def load_ruleset_file(ruleset_file: Path, rules: Path | None):  # type: ignore[no-untyped-def]
    from rulesvc.lang.loader import load_folder

    folder_path = rules or ruleset_file.resolve().parent
    folder, errors = load_folder([folder_path])
    wanted = ruleset_file.resolve()
    ruleset = next((r for r in folder.rulesets.values() if Path(r.file).resolve() == wanted), None)
    own = [e for e in errors if Path(e.location.file).resolve() == wanted or "kinds" in e.location.file]
    if own:
        fail(own)
    if ruleset is None:
        typer.echo(f"{ruleset_file}: 不是 {folder_path} 里的规则集文件", err=True)
        raise typer.Exit(2)
    return folder, ruleset


RULES_HELP = "规则目录（kinds/ 与 calendars/ 所在，默认为规则集文件所在目录）"


@tables_app.command("export")
def export_command(
    ruleset_file: Path = typer.Argument(..., help="规则集 YAML 文件"),
    table: str | None = typer.Option(None, "--table", help="规则表 id（规则集只有一张表时可省略）"),
    out: Path = typer.Option(..., "--out", help="输出文件：.xlsx 或 .csv"),
    rules: Path | None = typer.Option(None, "--rules", help=RULES_HELP),
) -> None:
    """导出一张规则表为 Excel（.xlsx）或 CSV。"""
    from rulesvc.sheets import export_table_csv, export_table_xlsx, table_ids

    folder, ruleset = load_ruleset_file(ruleset_file, rules)
    ids = table_ids(ruleset)
    if table is None and len(ids) == 1:
        table = ids[0]
    if table not in ids:
        typer.echo(f"规则集 {ruleset.name} 的规则表：{'、'.join(ids) or '（无）'}；用 --table 指定", err=True)
        raise typer.Exit(2)
    if out.suffix.lower() == ".csv":
        data = export_table_csv(ruleset, table)
    else:
        data = export_table_xlsx(ruleset, table, folder.kinds[ruleset.kind])
    out.write_bytes(data)
    typer.echo(f"已导出 {ruleset.name} / {table} → {out}")


@tables_app.command("import")
def import_command(
    sheet: Path = typer.Argument(..., help="修改过的 .xlsx 或 .csv"),
    ruleset_file: Path = typer.Option(..., "--ruleset", help="规则表所在的规则集 YAML 文件"),
    table: str | None = typer.Option(None, "--table", help="规则表 id（默认：表格 B1 写的表）"),
    out: Path | None = typer.Option(None, "--out", help="写到这个文件（默认：改写 --ruleset 文件）"),
    rules: Path | None = typer.Option(None, "--rules", help=RULES_HELP),
) -> None:
    """把表格里的行写回规则集文件（只改这张表的行、默认行、命中策略），写前按草稿的标准检查。"""
    from rulesvc.sheets import import_table

    folder, ruleset = load_ruleset_file(ruleset_file, rules)
    try:
        data = sheet.read_bytes()
    except OSError as exc:
        typer.echo(f"{sheet}: 无法读取：{exc.strerror}", err=True)
        raise typer.Exit(2) from None
    text, errors = import_table(sheet.name, data, ruleset, folder.kinds, folder.calendars, table_id=table)
    if errors or text is None:
        fail(errors)
        return
    target = out or ruleset_file
    target.write_text(text, encoding="utf-8")
    typer.echo(f"已写入 {target}（草稿：检查、测试后再提交审批）")


def register(app: typer.Typer) -> None:
    app.add_typer(tables_app, name="tables")
