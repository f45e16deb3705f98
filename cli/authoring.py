"""Authoring commands for risk and compliance staff: check, test, simulate."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from rulesvc.errors import InvalidEventError, InvalidRulesetError, Location, RulesetError

DEFAULT_PATHS = [Path("rulesets")]


def _print_errors(errors: list[RulesetError]) -> None:
    for error in errors:
        typer.echo(str(error), err=False)
    typer.echo(f"共 {len(errors)} 处错误", err=True)


def check(
    paths: list[Path] = typer.Argument(None, help="rules folders or files (default: rulesets/)"),
    today: str | None = typer.Option(
        None,
        "--today",
        help="date for calendar coverage warnings, YYYY-MM-DD (default: today, Asia/Shanghai)",
    ),
) -> None:
    """Validate rulesets, kinds, calendars and case files; every error as file:line:col: message.

    Calendars whose confirmed schedule ends within 60 days, and rules whose `assert` can enable them again,
    get a positioned warning on stderr (not fatal)."""
    from datetime import date

    from rulesvc.cases.model import load_case_files
    from rulesvc.lang.chaining import chaining_warnings
    from rulesvc.lang.loader import load_folder
    from rulesvc.sla.coverage import coverage_warnings, today_in

    folder, errors = load_folder(paths or DEFAULT_PATHS)
    cases, case_errors = load_case_files(folder.case_files, folder.kinds)
    errors = sorted(errors + case_errors, key=RulesetError.sort_key)
    if errors:
        _print_errors(errors)
        raise typer.Exit(1)
    try:
        day = date.fromisoformat(today) if today else today_in()
    except ValueError:
        typer.echo(f"--today: 日期 {today!r} 无效，写成 YYYY-MM-DD", err=True)
        raise typer.Exit(2) from None
    for warning in [
        *coverage_warnings(folder.calendars, day),
        *chaining_warnings(folder.rulesets[name] for name in sorted(folder.rulesets)),
    ]:
        typer.echo(str(warning), err=True)
    rules = sum(len(r.rules) for r in folder.rulesets.values())
    rows = sum(len(t.rows) + 1 for r in folder.rulesets.values() for t in r.tables)
    typer.echo(
        f"检查通过：{len(folder.rulesets)} 个规则集（{rules} 条规则，{rows} 行决策表），"
        f"{len(folder.kinds)} 种工单类型，{len(folder.calendars)} 个日历，{len(cases)} 个样例"
    )


def test(
    paths: list[Path] = typer.Argument(None, help="rules folders (default: rulesets/)"),
    junit: Path | None = typer.Option(None, "--junit", help="write a JUnit XML report to FILE"),
    min_coverage: float = typer.Option(0.0, "--min-coverage", help="fail below this rule coverage (percent)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show the actions of passing cases too"),
    reports: list[Path] = typer.Option(
        [],
        "--report",
        help="write an evidence file: FILE.html, FILE.xlsx or FILE.pdf (repeatable)",
    ),
    database: str | None = typer.Option(
        None,
        "--database",
        help="database whose published versions the evidence file names (default: RULESVC_DATABASE_URL if set)",
    ),
) -> None:
    """Run compliance cases; expected/actual diff on failure; coverage of rules and table rows.

    `--report` writes the run as an evidence file compliance can file (versions, content hashes, every case,
    coverage, date, and a digest `rulesvc report verify FILE` checks)."""
    from cli.evidence import check_report_paths, write_reports
    from rulesvc.cases.model import load_case_files
    from rulesvc.cases.runner import format_failure, junit_xml, run_cases
    from rulesvc.rulebook import RuleBook

    check_report_paths(reports)
    try:
        book = RuleBook.load(paths or DEFAULT_PATHS)
    except InvalidRulesetError as exc:
        _print_errors(exc.errors)
        raise typer.Exit(1) from exc
    cases, errors = load_case_files(book.folder.case_files, book.kinds)
    if errors:
        _print_errors(errors)
        raise typer.Exit(1)
    report = run_cases(book, cases, book.all_refs())
    for result in report.results:
        if result.passed:
            # PASS/FAIL lead each case line: the stable token scripts match; the words are for people
            typer.echo(f"PASS 通过 {result.case.name}")
            if verbose:
                for obs in result.observed:
                    typer.echo(f"    {obs.describe()}")
        else:
            typer.echo(format_failure(result))
    covered = len(report.all_refs) - len(report.uncovered)
    typer.echo(
        f"\n通过 {len(report.results) - len(report.failed)} 个，未通过 {len(report.failed)} 个；"
        f"覆盖 {covered}/{len(report.all_refs)} 条规则与决策表行（{report.coverage:.0%}）"
    )
    if report.uncovered:
        typer.echo("没有样例触发的规则与决策表行：")
        for ref in report.uncovered:
            typer.echo(f"  - {ref}")
    if junit is not None:
        junit.write_text(junit_xml(report), encoding="utf-8")
    if reports:
        write_reports(reports, paths or DEFAULT_PATHS, book, report, database)
    if report.failed or report.coverage * 100 < min_coverage - 1e-9:
        raise typer.Exit(1)


def simulate(
    events_file: Path = typer.Argument(..., help="JSON or YAML list of events"),
    until: str = typer.Option(..., "--until", help="virtual clock end, ISO 8601 with offset"),
    rulesets: Path = typer.Option(Path("rulesets"), "--rulesets", help="rules folder"),
) -> None:
    """Run events and every timer due up to --until on a virtual clock; print {"timeline": [...]}.

    A rule error (unique-table conflict, loop limit, arithmetic) stops the run: the timeline up to it is
    printed with an "error" entry, the positioned error goes to stderr, exit status 1."""
    from datetime import UTC, datetime

    from rulesvc import exactjson
    from rulesvc.errors import Problem
    from rulesvc.events import parse_time
    from rulesvc.model import Event
    from rulesvc.rulebook import RuleBook
    from rulesvc.sla.simulation import simulate as run
    from rulesvc.validation import read_event
    from rulesvc.yamlpos import load_yaml, plain

    try:
        book = RuleBook.load([rulesets])
    except InvalidRulesetError as exc:
        _print_errors(exc.errors)
        raise typer.Exit(1) from exc
    text = events_file.read_text(encoding="utf-8")
    try:
        raw = exactjson.loads(text)  # numbers keep their digits; a repeated key is refused
    except ValueError as exc:
        src, errors = load_yaml(str(events_file), text)
        if src is None:
            if text.lstrip().startswith(("[", "{")):
                errors = [RulesetError("json_syntax", f"JSON: {exc}", Location(str(events_file), 1, 1))]
            _print_errors(errors)
            raise typer.Exit(2) from None
        raw = plain(src.data)
    if isinstance(raw, dict) and "events" in raw:
        raw = raw["events"]
    try:
        end = parse_time(until, "--until")
    except InvalidEventError as exc:
        typer.echo(f"--until: {exc}", err=True)
        raise typer.Exit(2) from exc
    # Validated as ingest does: every problem of every event at once; a ticket breaking its kind's schema is
    # refused, or routed by the kind's `invalid:` policy.
    events: list[Event] = []
    problems: list[Problem] = []
    for index, item in enumerate(raw if isinstance(raw, list) else [raw]):
        try:
            events.append(read_event(item, book.kinds, now=datetime.now(UTC), default_id=True).event)
        except InvalidEventError as exc:
            problems.extend(
                Problem(f"events.{index}.{p.path}".rstrip("."), p.code, p.message) for p in exc.problems
            )
    if problems:
        for problem in problems:
            typer.echo(f"{events_file}: {problem} [{problem.code}]", err=True)
        typer.echo(f"{len(problems)} 处问题，未运行模拟", err=True)
        raise typer.Exit(2)
    timeline = run(book, events, end)
    sys.stdout.write(exactjson.dumps_indented(timeline.to_json()) + "\n")
    if timeline.error is not None:  # the timeline up to the failing trigger is printed above
        failed = timeline.error
        typer.echo(
            f"{failed.error} [{failed.error.code}]（{failed.trigger}，{failed.at.isoformat()}）", err=True
        )
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(check)
    app.command()(test)
    app.command()(simulate)
