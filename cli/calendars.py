"""`rulesvc calendars ...`: the calendar lifecycle from the command line, beside `rulesvc rulesets ...`
(same options, exit codes and display zone), talking to a running service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from cli.rulesets import (
    DEFAULT_URL,
    Draft,
    Key,
    Url,
    _client,
    _effective,
    _handled,
    _history_details,
    _when,
    status_text,
)

app = typer.Typer(
    help="Calendar lifecycle: drafts, checks, four-eyes approval, publishing (re-plans open timers), history.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="calendar name, e.g. cn")]


def _path(name: str, *parts: str) -> str:
    return "/v1/calendars/" + "/".join(quote(p, safe="") for p in (name, *parts))


def _print_draft(draft: dict[str, Any]) -> None:
    base = f"v{draft['base_version']}" if draft.get("base_version") else "无（新日历）"
    typer.echo(f"草稿 {draft['draft_id']}  {draft['calendar']}  {status_text(draft['status'])}  基于 {base}")
    typer.echo(f"作者 {draft['author']}  原因：{draft.get('reason') or '-'}")
    changes = (draft.get("diff") or {}).get("summary", [])
    if changes:
        typer.echo("改动：")
        for line in changes:
            typer.echo(f"  {line}")
    tests = draft.get("tests") or {}
    typer.echo(f"样例：通过 {tests.get('passed', 0)} 个，未通过 {tests.get('failed', 0)} 个")
    for failure in tests.get("failures", []):
        typer.echo(failure.get("text", ""))
    for warning in tests.get("warnings") or []:
        typer.echo(f"  警告：{warning['message']}")


@app.command("list")
@_handled
def list_calendars(
    as_of: Annotated[str | None, typer.Option("--as-of", help="ISO 8601 time with offset")] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Each calendar's version in force now (or at --as-of), how far it is confirmed, scheduled versions."""
    body = _client(url, key).call("GET", "/v1/calendars", params={"as_of": as_of} if as_of else None)
    typer.echo(f"{_when(body['as_of'])} 生效中：")
    for entry in body["calendars"]:
        confirmed = (
            f"  官方安排确认到 {entry['confirmed_through']}（还剩 {entry['days_left']} 天）"
            if entry.get("confirmed_through")
            else ""
        )
        pending = "，".join(f"v{p['version']}（{_when(p['effective_at'])} 起）" for p in entry["pending"])
        typer.echo(
            f"  {entry['name']:<10} v{entry['version']}  {_effective(entry['effective_at'])}{confirmed}"
            + (f"；待生效：{pending}" if pending else "")
        )


@app.command()
@_handled
def push(
    file: Annotated[Path, typer.Argument(help="calendar file (YAML)", exists=True, dir_okay=False)],
    reason: Annotated[str, typer.Option("--reason", help="why (e.g. the State Council notice)")] = "",
    name: Annotated[str | None, typer.Option("--name", help="calendar name (default: the file's)")] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Upload a calendar file as a draft: checked (file:line:col errors), tested, diffed day by day."""
    text = file.read_text(encoding="utf-8")
    calendar = name or _file_name(text) or file.stem
    draft = _client(url, key).call(
        "POST",
        _path(calendar, "drafts"),
        content=text.encode("utf-8"),
        params={"reason": reason} if reason else None,
        headers={"Content-Type": "application/yaml"},
    )
    _print_draft(draft)


def _file_name(text: str) -> str | None:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="base").load(text)  # strings only: a wrong date is the server's to report
    except YAMLError:
        return None
    value = data.get("name") if isinstance(data, dict) else None
    return str(value) if value else None


@app.command()
@_handled
def show(name: Name, draft: Draft, url: Url = DEFAULT_URL, key: Key = None) -> None:
    """A draft: its changes day by day and its test results."""
    _print_draft(_client(url, key).call("GET", _path(name, "drafts", draft)))


@app.command()
@_handled
def submit(name: Name, draft: Draft, url: Url = DEFAULT_URL, key: Key = None) -> None:
    """Submit a draft for approval by another person."""
    _print_draft(_client(url, key).call("POST", _path(name, "drafts", draft, "submit")))


@app.command()
@_handled
def approve(
    name: Name,
    draft: Draft,
    comment: Annotated[str, typer.Option("--comment")] = "",
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Approve a submitted draft (never its author's own)."""
    result = _client(url, key).call(
        "POST", _path(name, "drafts", draft, "approve"), json={"comment": comment}
    )
    typer.echo(f"已批准 {name} 草稿 {result['draft_id']}（审批人 {result['reviewer']}）")


@app.command()
@_handled
def reject(
    name: Name,
    draft: Draft,
    comment: Annotated[str, typer.Option("--comment", help="why (required)")],
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Reject a submitted draft, with the reason."""
    result = _client(url, key).call("POST", _path(name, "drafts", draft, "reject"), json={"comment": comment})
    typer.echo(f"已驳回 {name} 草稿 {result['draft_id']}（审批人 {result['reviewer']}）")


@app.command()
@_handled
def publish(
    name: Name,
    draft: Draft,
    at: Annotated[str | None, typer.Option("--at", help="effective time, ISO 8601 with offset")] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Publish an approved draft as the next version, effective now or at --at; open timers are re-planned."""
    body = {"effective_at": at} if at else {}
    result = _client(url, key).call("POST", _path(name, "drafts", draft, "publish"), json=body)
    typer.echo(f"已发布 {name} v{result['version']}，{_effective(result['effective_at'])}")
    replan = result.get("replanned")
    if isinstance(replan, dict):
        typer.echo(
            f"已重排 {replan.get('tickets', 0)} 张工单的 {replan.get('moved', 0)} 个未结计时；"
            f"{replan.get('pending', 0)} 个留给 worker 继续"
        )
        for example in replan.get("examples", []):
            typer.echo(
                f"  {example['ticket_id']} {example['timer']}: {_when(example['previous_due_at'])}"
                f" → {_when(example['due_at'])}"
            )


@app.command()
@_handled
def diff(
    name: Name,
    from_ref: Annotated[str | None, typer.Option("--from", help="version (3, v3) or draft id")] = None,
    to_ref: Annotated[str | None, typer.Option("--to", help="version or draft id (default: latest)")] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """What changed between two versions (or a draft), day by day."""
    params = {k: v for k, v in (("from", from_ref), ("to", to_ref)) if v}
    result = _client(url, key).call("GET", _path(name, "diff"), params=params or None)
    typer.echo(f"{result['from']} → {result['to']}:")
    for line in result["summary"]:
        typer.echo(f"  {line}")


@app.command()
@_handled
def versions(name: Name, url: Url = DEFAULT_URL, key: Key = None) -> None:
    """Every version: state, effective time, author, approver, reason."""
    result = _client(url, key).call("GET", _path(name, "versions"))
    for v in result["versions"]:
        typer.echo(
            f"v{v['version']}  {v['state_label']}  {_effective(v['effective_at'])}  作者 {v['author']}"
            f"  审批人 {v['approver'] or '-'}  {v['source']}：{v['reason']}"
        )


@app.command()
@_handled
def history(name: Name, url: Url = DEFAULT_URL, key: Key = None) -> None:
    """Every lifecycle step of a calendar, as recorded in the audit chain."""
    result = _client(url, key).call("GET", _path(name, "history"))
    for entry in result["entries"]:
        details = "  ".join(_history_details(entry))
        typer.echo(
            f"#{entry['seq']:<4} {_when(entry['at'])}  {entry['step']:<18} 操作人 {entry['by']:<12}  {details}"
        )


def _push_text(url: str, key: str | None, name: str, text: str, reason: str) -> None:
    draft = _client(url, key).call(
        "POST",
        _path(name, "drafts"),
        content=text.encode("utf-8"),
        params={"reason": reason} if reason else None,
        headers={"Content-Type": "application/yaml"},
    )
    _print_draft(draft)
    typer.echo(f"下一步：由另一人审阅（rulesvc calendars show {name} {draft['draft_id']}），再批准并发布")


def _version_text(url: str, key: str | None, name: str, version: int | None) -> tuple[int, str]:
    client = _client(url, key)
    if version is None:
        versions = client.call("GET", _path(name, "versions"))["versions"]
        chosen = next((v for v in versions if v.get("state") == "in_force"), versions[-1])
        version = int(chosen["version"])
    body = client.call("GET", _path(name, "versions", str(version)))
    return version, str(body["content"])


@app.command("import-cn")
@_handled
def import_cn(
    year: Annotated[int, typer.Option("--year", help="the year the State Council notice is for, e.g. 2027")],
    reason: Annotated[str, typer.Option("--reason")] = "",
    out: Annotated[Path | None, typer.Option("--out", help="only write the file here; push nothing")] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """The `cn` calendar through --year from the `holidays` package, pushed as a draft (never published):
    a year the package knows the make-up days of is confirmed, a later one keeps its statutory days only."""
    from rulesvc.sla.cn_holidays import build, package_version

    text, confirmed = build(year, command=f"rulesvc calendars import-cn --year {year}")
    if year not in confirmed:
        typer.echo(
            f"警告：holidays=={package_version()} 还不知道 {year} 年的调休上班日："
            f"草稿只有法定假日，官方安排仍只确认到 {confirmed[-1]}-12-31"
            "（国务院通知发布、软件包更新后再运行一次）",
            err=True,
        )
    if out is not None:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"已写入 {out}（确认 {confirmed[0]}–{confirmed[-1]} 年）")
        return
    why = reason or f"国务院 {year} 年部分节假日安排（holidays=={package_version()}）"
    _push_text(url, key, "cn", text, why)


@app.command("export-ics")
@_handled
def export_ics(
    name: Name,
    out: Annotated[Path, typer.Option("--out", help=".ics file to write")],
    version: Annotated[int | None, typer.Option("--version", help="default: the version in force")] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Write a calendar version as iCalendar: one all-day event per holiday and per make-up working day."""
    from rulesvc.sla.calendar_exchange import to_ics
    from rulesvc.sla.calendar_file import parse_calendar_text

    number, text = _version_text(url, key, name, version)
    calendar, errors, _ = parse_calendar_text(f"{name}.yaml", text, number)
    if calendar is None:
        raise typer.BadParameter("; ".join(str(e) for e in errors))
    out.write_bytes(to_ics(calendar, number))
    typer.echo(
        f"已写入 {out}：{name} v{number}，节假日 {len(calendar.holidays)} 天，调休上班日 {len(calendar.workdays)} 天"
    )


@app.command("import-ics")
@_handled
def import_ics(
    name: Name,
    file: Annotated[Path, typer.Argument(help=".ics file", exists=True, dir_okay=False)],
    reason: Annotated[str, typer.Option("--reason")] = "",
    out: Annotated[Path | None, typer.Option("--out", help="only write the calendar file here")] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Lay an iCalendar file's all-day events over the calendar in force (holidays; 上班/补班 or
    X-RULESVC-KIND: workday are make-up days) and push the result as a draft (never published)."""
    from rulesvc.sla.calendar_exchange import merge_ics, render_calendar
    from rulesvc.sla.calendar_file import parse_calendar_text

    number, text = _version_text(url, key, name, None)
    base, errors, _ = parse_calendar_text(f"{name}.yaml", text, number)
    if base is None:
        raise typer.BadParameter("; ".join(str(e) for e in errors))
    try:
        merged = merge_ics(base, file.read_bytes())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    rendered = render_calendar(merged, [f"{name} v{number} with the days of {file.name} laid over it"])
    if out is not None:
        out.write_text(rendered, encoding="utf-8")
        typer.echo(f"wrote {out}")
        return
    _push_text(url, key, name, rendered, reason or f"导入 {file.name}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="calendars")
