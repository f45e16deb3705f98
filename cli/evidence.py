"""Evidence files from the command line: `rulesvc test --report FILE.html|FILE.xlsx|FILE.pdf` writes them
(`write_reports`), `rulesvc report verify FILE` checks one (its digest, and that it is what its content
renders to)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import typer

from rulesvc.cases.runner import Report
from rulesvc.rulebook import RuleBook

FORMATS = (".html", ".htm", ".xlsx", ".pdf")

app = typer.Typer(name="report", help="合规测试证据文件：校验。", no_args_is_help=True)


def check_report_paths(paths: Sequence[Path]) -> None:
    """Refuse (exit 2) a report file whose format is not one we write, before anything runs."""
    for path in paths:
        if path.suffix.lower() not in FORMATS:
            typer.echo(f"--report {path}: 证据文件须为 .html、.xlsx 或 .pdf", err=True)
            raise typer.Exit(2)


def write_reports(
    paths: Sequence[Path], folders: Sequence[Path], book: RuleBook, report: Report, database: str | None
) -> None:
    """Write the evidence of this run to each path (its format by suffix). With a database (`--database`,
    or RULESVC_DATABASE_URL), a ruleset whose file holds exactly a published version's content is shown as
    that version with its audit chain entry, author and approver; otherwise as 未发布/工作副本."""
    from rulesvc.lifecycle.gate import corpus_hash, shipped_cases
    from rulesvc.testreport.document import TestedRuleset, build_evidence
    from rulesvc.testreport.html_file import render_html
    from rulesvc.testreport.pdf_file import PdfUnavailableError, render_pdf
    from rulesvc.testreport.xlsx_file import render_xlsx

    now = datetime.now(UTC)
    rulesets = book.folder.rulesets
    tested = {name: TestedRuleset(name, "工作副本", r.content_hash, state="") for name, r in rulesets.items()}
    url = database or os.environ.get("RULESVC_DATABASE_URL")
    if url:
        from rulesvc.lifecycle.evidence import published_matches
        from rulesvc.wiring.database import ruleset_versions

        with ruleset_versions(url) as store:
            hashes = {name: r.content_hash for name, r in rulesets.items()}
            tested.update(published_matches(store, hashes, now))
    evidence = build_evidence(
        "规则文件夹 " + "、".join(str(p) for p in folders),
        list(tested.values()),
        report,
        now,
        corpus_hash(shipped_cases(book.folder)),
    )
    for path in paths:
        suffix = path.suffix.lower()
        try:
            if suffix == ".xlsx":
                path.write_bytes(render_xlsx(evidence))
            elif suffix == ".pdf":
                path.write_bytes(render_pdf(evidence))
            else:
                path.write_text(render_html(evidence), encoding="utf-8")
        except PdfUnavailableError as exc:
            typer.echo(f"--report {path}: {exc} [{exc.code}]", err=True)
            raise typer.Exit(2) from exc
        typer.echo(f"证据文件：{path}（报告摘要 SHA-256 {evidence.digest}）")


@app.command("verify")
def verify(file: Path = typer.Argument(..., help="an evidence file (.html, .xlsx or .pdf)")) -> None:
    """Check an evidence file: its content hashes to the digest it states, and the file is exactly what
    that content renders to. Prints a JSON verdict; exit 0 when it holds, 1 when it does not."""
    from rulesvc.testreport.verify import verify_file

    verdict = verify_file(file)
    typer.echo(json.dumps(verdict.to_json(), ensure_ascii=False, indent=1))
    if not verdict.ok:
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    root.add_typer(app)
