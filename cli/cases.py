"""`rulesvc cases export|import`: a ruleset's compliance cases as an Excel (XLSX) or CSV sheet, and back.

    rulesvc cases export rulesets/expense-approval.yaml --out 报销样例.xlsx
    rulesvc cases import 报销样例.xlsx --ruleset rulesets/expense-approval.yaml

Import rewrites the ruleset's case file (`cases/<ruleset>.yaml` beside it, or `--out`); cases that did not
change keep their text and comments. Errors are printed by cell (`报销样例.xlsx!合规样例!C7: ...`)."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.tables import RULES_HELP, fail, load_ruleset_file

cases_app = typer.Typer(help="合规样例与 Excel（XLSX）/CSV 互相转换", no_args_is_help=True)


def _case_file(folder_files: list[Path], ruleset_file: Path, name: str, rules: Path | None) -> Path:
    """The ruleset's case file: the rules folder's `cases/<name>.yaml`."""
    found = next((f for f in folder_files if f.stem == name), None)
    return found or (rules or ruleset_file.resolve().parent) / "cases" / f"{name}.yaml"


@cases_app.command("export")
def export_command(
    ruleset_file: Path = typer.Argument(..., help="规则集 YAML 文件"),
    out: Path = typer.Option(..., "--out", help="输出文件：.xlsx 或 .csv"),
    rules: Path | None = typer.Option(None, "--rules", help=RULES_HELP),
) -> None:
    """导出规则集的合规样例为 Excel（.xlsx）或 CSV（每行一个事件）。"""
    from rulesvc.sheets import export_cases_csv, export_cases_xlsx

    folder, ruleset = load_ruleset_file(ruleset_file, rules)
    case_file = _case_file(folder.case_files, ruleset_file, ruleset.name, rules)
    text = case_file.read_text(encoding="utf-8") if case_file.exists() else "cases: []\n"
    kind = folder.kinds[ruleset.kind]
    export = export_cases_csv if out.suffix.lower() == ".csv" else export_cases_xlsx
    out.write_bytes(export(str(case_file), text, ruleset.name, kind))
    typer.echo(f"已导出 {ruleset.name} 的合规样例 → {out}")


@cases_app.command("import")
def import_command(
    sheet: Path = typer.Argument(..., help="修改过的 .xlsx 或 .csv"),
    ruleset_file: Path = typer.Option(..., "--ruleset", help="样例所属的规则集 YAML 文件"),
    out: Path | None = typer.Option(
        None, "--out", help="写到这个文件（默认：规则目录的 cases/<规则集>.yaml）"
    ),
    rules: Path | None = typer.Option(None, "--rules", help=RULES_HELP),
) -> None:
    """把表格里的样例写回样例文件，写前按上传样例文件的标准检查（每个事件按工单类型校验）。"""
    from rulesvc.sheets import import_cases

    folder, ruleset = load_ruleset_file(ruleset_file, rules)
    try:
        data = sheet.read_bytes()
    except OSError as exc:
        typer.echo(f"{sheet}: 无法读取：{exc.strerror}", err=True)
        raise typer.Exit(2) from None
    case_file = _case_file(folder.case_files, ruleset_file, ruleset.name, rules)
    target = out or case_file
    old = target.read_text(encoding="utf-8") if target.exists() else ""
    kind = folder.kinds[ruleset.kind]
    text, errors = import_cases(
        sheet.name, data, ruleset.name, kind, folder.kinds, case_file=str(target), old_text=old
    )
    if errors or text is None:
        fail(errors)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    typer.echo(f"已写入 {target}（运行 rulesvc test 检查，再随草稿上传）")


def register(app: typer.Typer) -> None:
    app.add_typer(cases_app, name="cases")
