"""`rulesvc rulesets ...`: the ruleset lifecycle from the command line, talking to a running service.

Every command takes `--url` (env `RULESVC_URL`, default http://127.0.0.1:8000) and `--key` (env
`RULESVC_KEY`). Times are shown in Beijing time (Asia/Shanghai), or in the zone named by `RULESVC_TZ`
(whatever the machine's own zone); times typed on the command line need an offset. Exit codes: 0 done; 1 refused by the server (authoring errors, failing cases, four-eyes,
wrong state, ...), with its message on stderr; 2 the server could not be reached or a local file is wrong.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

import typer

from cli.rulesets_client import (
    RefusedError,
    RulesetsClient,
    UnreachableError,
    read_folder,
    read_manifest,
    write_folder,
    write_manifest,
)

app = typer.Typer(
    help="Ruleset lifecycle: drafts, tests, four-eyes approval, publishing, rollback, history.",
    no_args_is_help=True,
)

Url = Annotated[str, typer.Option("--url", envvar="RULESVC_URL", help="service URL")]
Key = Annotated[str | None, typer.Option("--key", envvar="RULESVC_KEY", help="API key")]
Name = Annotated[str, typer.Argument(help="ruleset name, e.g. expense-approval")]
Draft = Annotated[str, typer.Argument(help="draft id (printed by push)")]
DEFAULT_URL = "http://127.0.0.1:8000"

P = ParamSpec("P")
R = TypeVar("R")


def _handled(command: Callable[P, R]) -> Callable[P, R]:
    """Server refusals → their message (and details) on stderr, exit 1; unreachable server → exit 2."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except UnreachableError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from exc
        except RefusedError as exc:
            _print_refusal(exc, local_file=_local_file(kwargs))
            raise typer.Exit(1) from exc

    return wrapper


def _local_file(kwargs: Mapping[str, Any]) -> Path | None:
    value = kwargs.get("file")
    return value if isinstance(value, Path) else None


def _print_refusal(exc: RefusedError, local_file: Path | None = None) -> None:
    details = exc.details
    if exc.code in ("invalid_ruleset",) and isinstance(details, list):
        for error in details:
            text = str(error.get("text", error))
            if local_file is not None and "file" in error and text.startswith(str(error["file"])):
                text = str(local_file) + text[len(str(error["file"])) :]
            typer.echo(text, err=True)
        typer.echo(f"共 {len(details)} 处错误", err=True)
        return
    typer.echo(f"被拒绝（{exc.status} {exc.code}）：{exc.message}", err=True)
    if exc.code not in _DETAILED:
        for line in _detail_lines(details):
            typer.echo(f"  {line}", err=True)
    if exc.code == "cases_failed" and isinstance(details, dict):
        for failure in details.get("failures", []):
            typer.echo(failure.get("text", ""), err=True)
    if exc.code == "draft.stale_base" and isinstance(details, dict):
        difference = details.get("difference") or {}
        if difference:
            typer.echo(f"v{details['base_version']} → v{details['latest_version']}:", err=True)
        for line in difference.get("summary", []):
            typer.echo(f"  {line}", err=True)
        for line in difference.get("added", []):
            typer.echo(f"  + {line}", err=True)
        for line in difference.get("removed", []):
            typer.echo(f"  - {line}", err=True)
        for change in difference.get("cases", []):
            typer.echo(f"  {change['summary']}", err=True)


def _effective(value: Any) -> str:
    """`2026-12-01T00:00:00+08:00 起生效`, or `一直生效` for a version in force since the beginning."""
    when = _when(value)
    return "一直生效" if when == "always" else f"{when} 起生效"


_DETAILED = ("cases_failed", "draft.stale_base")
"""Refusals whose details are printed in their own way by `_print_refusal`."""


def _detail_lines(details: Any) -> list[str]:
    """The details of a refusal, one line each: `path: message` for field problems, `key: value` else."""
    if details is None or details == {} or details == []:
        return []
    if isinstance(details, list):
        lines = []
        for item in details:
            if isinstance(item, dict) and "message" in item:
                path = item.get("path") or item.get("loc") or ""
                code = item.get("code") or item.get("type") or ""
                prefix = f"{path}: " if path else ""
                lines.append(f"{prefix}{item['message']}" + (f" ({code})" if code else ""))
            else:
                lines.append(json.dumps(item, ensure_ascii=False))
        return lines
    if isinstance(details, dict):
        return [
            f"{key}: {value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
            for key, value in details.items()
        ]
    return [str(details)]


def _case_file(value: str | None) -> str | None:
    """`--file` as the API names case files (`loan-sla`), also when given as a path (`cases/loan-sla.yaml`),
    the form the rules folder and the README use."""
    if value is None:
        return None
    name = Path(value).name
    for suffix in (".yaml", ".yml"):
        name = name.removesuffix(suffix)
    return name


def _when(value: Any) -> str:
    """A server time (ISO 8601) in the display zone, to the second."""
    if not value:
        return "-"
    from datetime import datetime

    instant = datetime.fromisoformat(str(value))
    if instant.timestamp() == 0:
        return "always"  # versions imported at first start are in force since the beginning
    zone = ZoneInfo(os.environ.get("RULESVC_TZ") or "Asia/Shanghai")
    return instant.astimezone(zone).isoformat(timespec="seconds")


def _client(url: str, key: str | None) -> RulesetsClient:
    return RulesetsClient(url, key)


def _tests_line(tests: Mapping[str, Any]) -> str:
    return (
        f"样例：通过 {tests.get('passed', 0)} 个，未通过 {tests.get('failed', 0)} 个；"
        f"覆盖 {float(tests.get('coverage', 0)):.0%}"
    )


def _print_draft(draft: Mapping[str, Any]) -> None:
    base = f"v{draft['base_version']}" if draft.get("base_version") else "无（新规则集）"
    typer.echo(f"草稿 {draft['draft_id']}  {draft['ruleset']}  {status_text(draft['status'])}  基于 {base}")
    typer.echo(f"作者 {draft['author']}  原因：{draft.get('reason') or '-'}")
    if draft.get("reviewer"):
        typer.echo(f"审批人 {draft['reviewer']}：{draft.get('review_comment') or '-'}")
    changes = (draft.get("diff") or {}).get("summary", [])
    added = (draft.get("diff") or {}).get("added", [])
    removed = (draft.get("diff") or {}).get("removed", [])
    if changes or added or removed:
        typer.echo("改动：")
        for line in changes:
            typer.echo(f"  {line}")
        for line in added:
            typer.echo(f"  + {line}")
        for line in removed:
            typer.echo(f"  - {line}")
    case_lines = [c["summary"] for c in (draft.get("diff") or {}).get("cases", [])]
    if case_lines:
        typer.echo("样例改动：")
        for line in case_lines:
            typer.echo(f"  {line}")
        typer.echo(f"  （全文：rulesvc rulesets diff {draft['ruleset']} --to {draft['draft_id']}）")
    tests = draft.get("tests") or {}
    if draft.get("submitted_at") and draft.get("status") != "draft":
        typer.echo(f"提交时冻结的证据（{_when(draft['submitted_at'])}）：")
    typer.echo(_tests_line(tests))
    for failure in tests.get("failures", []):
        typer.echo(failure.get("text", ""))
    _print_findings(tests)
    replay = draft.get("replay")
    if replay:
        _print_replay(replay)
    elif draft.get("status") != "draft":
        typer.echo("回放：提交前没有运行")


def _print_findings(tests: Mapping[str, Any]) -> None:
    scenarios = tests.get("scenarios") or []
    if len(scenarios) > 1:
        typer.echo("  运行于：" + "；".join(s["label"] for s in scenarios))
    gaps = tests.get("gaps") or []
    if gaps:
        typer.echo(f"门禁缺口 {len(gaps)} 处（须审批人接受）：")
        for gap in gaps:
            typer.echo(f"  ! {gap['message']}")
        if tests.get("gaps_reason"):
            typer.echo(f"  原因：{tests['gaps_reason']}")
    for warning in tests.get("warnings") or []:
        typer.echo(f"  警告：{warning['message']}")


def _print_replay(report: Mapping[str, Any]) -> None:
    by = "发生" if report.get("selected_by") == "occurred_at" else "记录"
    typer.echo(
        f"回放{by}于 {_when(report['from'])} .. {_when(report['to'])} 的事件：{report['kind']} 类决策"
        f" {report['decisions']} 条，因本草稿改变 {report['changed']} 条"
    )
    if report.get("changed_by_later_versions"):
        typer.echo(f"  另有 {report['changed_by_later_versions']} 条的结果因之后发布的版本已不同（不计入）")
    for action, counts in report.get("by_action", {}).items():
        typer.echo(f"  {action}: +{counts['added']} -{counts['removed']}")
    totals = report.get("totals", {})
    for field, values in report.get("by_value", {}).items():
        for value, counts in values.items() if field not in totals else ():
            typer.echo(f"  {field} = {value}: +{counts['added']} -{counts['removed']}")
    for field, total in totals.items():
        typer.echo(f"  {field} 合计：+{total['added']} -{total['removed']}（净 {total['net']}）")
    timers = report.get("timer_firings", report.get("skipped", {}).get("timer", 0))
    typer.echo(f"  区间内的计时触发：{timers} 条（不重新判定：结果取决于计时状态）")
    if report.get("truncated"):
        typer.echo("  （已达条数上限：区间内还有更多决策）")
    for example in report.get("examples", [])[:3]:
        before = ", ".join(a["type"] for a in example["before"]) or "无动作"
        after = ", ".join(a["type"] for a in example["after"]) or "无动作"
        typer.echo(f"  例：{example['event_id']}：{before} → {after}")


@app.command("list")
@_handled
def list_rulesets(
    as_of: Annotated[str | None, typer.Option("--as-of", help="ISO 8601 time with offset")] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Each ruleset's version in force now (or at --as-of) and versions scheduled after it."""
    body = _client(url, key).call("GET", "/v1/rulesets", params={"as_of": as_of} if as_of else None)
    typer.echo(f"{_when(body['as_of'])} 生效中：")
    for entry in body["rulesets"]:
        if entry["version"] is None:
            line = f"  {entry['name']:<18} -   尚未生效"
        else:
            approved = f"审批人 {entry['approver']}" if entry["approver"] else "首次启动时导入"
            line = (
                f"  {entry['name']:<18} v{entry['version']}  {_effective(entry['effective_at'])}  {approved}"
            )
        pending = "，".join(f"v{p['version']}（{_when(p['effective_at'])} 起）" for p in entry["pending"])
        gone = ", ".join(
            f"v{p['version']} ({p['state_label']} → v{p['superseded_by']})"
            for p in entry.get("superseded", [])
        )
        typer.echo(
            line + (f"；待生效：{pending}" if pending else "") + (f"；不会生效：{gone}" if gone else "")
        )


@app.command()
@_handled
def push(
    file: Annotated[Path, typer.Argument(help="the ruleset file (YAML)", exists=True, dir_okay=False)],
    name: Annotated[str | None, typer.Option("--name", help="default: the file's `ruleset:`")] = None,
    reason: Annotated[str, typer.Option("--reason", help="why the change")] = "",
    cases: Annotated[
        list[Path] | None,
        typer.Option("--cases", help="case file replacing the one of the same name; repeatable", exists=True),
    ] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Upload a draft; prints the changes and the result of every compliance case."""
    from cli.rulesets_client import ruleset_name

    text = file.read_text(encoding="utf-8")
    target = name or ruleset_name(text) or file.stem
    body: dict[str, Any] = {
        "content": text,
        "reason": reason,
        "cases": {path.stem: path.read_text(encoding="utf-8") for path in cases or []},
    }
    base = ((read_manifest(file) or {}).get("rulesets") or {}).get(target)
    if base:  # exported by `rulesvc rulesets export`: refused unless still based on the latest version
        body["base_version"], body["base_sha256"] = base["version"], base["content_sha256"]
    draft = _client(url, key).call("POST", RulesetsClient.path(target, "drafts"), json=body)
    _print_draft(draft)
    if not draft.get("submittable"):
        typer.echo("还不能提交：先修正规则集，或用 `rulesvc rulesets cases` 上传更新后的样例")
        raise typer.Exit(1)
    typer.echo(f"下一步：rulesvc rulesets submit {target} {draft['draft_id']}")


@app.command("cases")
@_handled
def upload_cases(
    name: Name,
    draft: Draft,
    file: Annotated[Path, typer.Argument(help="case file (YAML)", exists=True, dir_okay=False)],
    target: Annotated[
        str | None,
        typer.Option("--file", help="case file to replace: loan-sla or cases/loan-sla.yaml (default: NAME)"),
    ] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Replace a case file for a draft (default `cases/NAME.yaml`) and re-run the cases."""
    result = _client(url, key).call(
        "PUT",
        RulesetsClient.path(name, "drafts", draft, "cases"),
        params={"file": _case_file(target)} if target else None,
        content=file.read_text(encoding="utf-8").encode("utf-8"),
        headers={"Content-Type": "application/yaml"},
    )
    _print_draft(result)
    if not result.get("submittable"):
        raise typer.Exit(1)


@app.command()
@_handled
def show(name: Name, draft: Draft, url: Url = DEFAULT_URL, key: Key = None) -> None:
    """A draft as the approver sees it: changes, test results, backtest."""
    _print_draft(_client(url, key).call("GET", RulesetsClient.path(name, "drafts", draft)))


@app.command()
@_handled
def diff(
    name: Name,
    from_ref: Annotated[str | None, typer.Option("--from", help="version or draft id")] = None,
    to_ref: Annotated[str | None, typer.Option("--to", help="version or draft id (default: latest)")] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Differences between two versions or drafts: structured, then as text."""
    params = {k: v for k, v in (("from", from_ref), ("to", to_ref)) if v}
    result = _client(url, key).call("GET", RulesetsClient.path(name, "diff"), params=params)
    typer.echo(f"{name}: {result['from']} → {result['to']}")
    for line in result["summary"]:
        typer.echo(f"  {line}")
    for line in result["added"]:
        typer.echo(f"  + {line}")
    for line in result["removed"]:
        typer.echo(f"  - {line}")
    for change in result.get("cases", []):
        typer.echo(f"  {change['summary']}")
    typer.echo("")
    typer.echo(result["text"] + result.get("cases_text", ""), nl=False)


@app.command()
@_handled
def submit(
    name: Name,
    draft: Draft,
    gaps_reason: Annotated[
        str, typer.Option("--gaps-reason", help="why gaps in the gate (coverage < 100 %, ...) are acceptable")
    ] = "",
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Submit for approval (every compliance case is re-run and must pass); freezes the evidence."""
    body = {"gaps_reason": gaps_reason} if gaps_reason else {}
    result = _client(url, key).call("POST", RulesetsClient.path(name, "drafts", draft, "submit"), json=body)
    typer.echo(f"已提交 {name} 草稿 {draft}；{_tests_line(result['tests'])}")
    _print_findings(result["tests"])


@app.command()
@_handled
def withdraw(name: Name, draft: Draft, url: Url = DEFAULT_URL, key: Key = None) -> None:
    """Take your submitted draft back to editing (to replay again or change cases); submit it again after."""
    _client(url, key).call("POST", RulesetsClient.path(name, "drafts", draft, "withdraw"))
    typer.echo(f"已撤回 {name} 草稿 {draft}：回到编辑")


@app.command()
@_handled
def approve(
    name: Name,
    draft: Draft,
    comment: Annotated[str, typer.Option("--comment", help="why you approve")] = "",
    accept_gaps: Annotated[
        bool, typer.Option("--accept-gaps", help="accept the gaps in the gate the author explained")
    ] = False,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Approve a submitted draft (not your own)."""
    body = {"comment": comment, **({"accept_gaps": True} if accept_gaps else {})}
    _client(url, key).call("POST", RulesetsClient.path(name, "drafts", draft, "approve"), json=body)
    typer.echo(f"已批准 {name} 草稿 {draft}")


@app.command()
@_handled
def reject(
    name: Name,
    draft: Draft,
    comment: Annotated[str, typer.Option("--comment", help="why you reject (required)")],
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Reject a submitted draft (not your own), with a reason."""
    _client(url, key).call(
        "POST", RulesetsClient.path(name, "drafts", draft, "reject"), json={"comment": comment}
    )
    typer.echo(f"已驳回 {name} 草稿 {draft}")


@app.command()
@_handled
def publish(
    name: Name,
    draft: Draft,
    at: Annotated[str | None, typer.Option("--at", help="effective time, ISO 8601 with offset")] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Publish an approved draft as the next version, effective now or at --at."""
    body = {"effective_at": at} if at else {}
    result = _client(url, key).call("POST", RulesetsClient.path(name, "drafts", draft, "publish"), json=body)
    typer.echo(f"已发布 {name} v{result['version']}，{_effective(result['effective_at'])}")
    if result.get("supersedes"):
        typer.echo("待生效、现在不会再生效的版本：" + "，".join(map(str, result["supersedes"])))


@app.command()
@_handled
def rollback(
    name: Name,
    to: Annotated[int, typer.Option("--to", help="the version whose content comes back", min=1)],
    reason: Annotated[str, typer.Option("--reason", help="why")] = "",
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Draft version --to's content (and cases) again; it is then approved and published as usual."""
    draft = _client(url, key).call(
        "POST", RulesetsClient.path(name, "rollback"), json={"to_version": to, "reason": reason}
    )
    _print_draft(draft)
    if draft["status"] == "submitted":
        typer.echo(f"下一步（由另一人）：rulesvc rulesets approve {name} {draft['draft_id']}")


@app.command()
@_handled
def replay(
    name: Name,
    draft: Draft,
    start: Annotated[str, typer.Option("--from", help="period start, ISO 8601 with offset")],
    end: Annotated[str, typer.Option("--to", help="period end, ISO 8601 with offset")],
    limit: Annotated[int, typer.Option("--limit", min=1)] = 10_000,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Re-decide the logged decisions of a period with the draft; counts of changed outcomes."""
    result = _client(url, key).call(
        "POST",
        RulesetsClient.path(name, "drafts", draft, "replay"),
        json={"from": start, "to": end, "limit": limit},
    )
    _print_replay(result["replay"])


@app.command()
@_handled
def versions(name: Name, url: Url = DEFAULT_URL, key: Key = None) -> None:
    """Every version: effective time, author, approver, reason."""
    result = _client(url, key).call("GET", RulesetsClient.path(name, "versions"))
    for v in result["versions"]:
        replaced = f" → v{v['superseded_by']}" if v.get("superseded_by") else ""
        typer.echo(
            f"v{v['version']}  {v['state_label']}{replaced}  {_effective(v['effective_at'])}  作者 {v['author']}"
            f"  审批人 {v['approver'] or '-'}  {v['source']}：{v['reason']}"
        )


@app.command()
@_handled
def history(name: Name, url: Url = DEFAULT_URL, key: Key = None) -> None:
    """Every lifecycle step of a ruleset, as recorded in the audit chain."""
    result = _client(url, key).call("GET", RulesetsClient.path(name, "history"))
    for entry in result["entries"]:
        details = "  ".join(_history_details(entry))
        typer.echo(
            f"#{entry['seq']:<4} {_when(entry['at'])}  {entry['step']:<18} 操作人 {entry['by']:<12}  {details}"
        )


def status_text(status: str) -> str:
    """A draft's state as people read it, with the state's code: `状态 待审批（submitted）`."""
    from rulesvc.lifecycle.ports import STATUS_LABELS

    return f"状态 {STATUS_LABELS.get(status, status)}（{status}）"


_HISTORY_WORDS = {"reason": "原因", "comment": "意见"}


def _history_details(entry: Mapping[str, Any]) -> list[str]:
    parts = []
    if entry.get("draft_id"):
        parts.append(f"草稿 {str(entry['draft_id'])[:8]}")
    if entry.get("version"):
        parts.append(f"v{entry['version']}")
    if entry.get("base_version"):
        parts.append(f"基于 v{entry['base_version']}")
    if entry.get("rollback_to"):
        parts.append(f"回到 v{entry['rollback_to']}")
    if entry.get("effective_at"):
        parts.append(f"{_effective(entry['effective_at'])}")
    if entry.get("approver"):
        parts.append(f"作者 {entry.get('author')} 审批人 {entry['approver']}")
    if entry.get("supersedes"):
        parts.append("取代 " + "，".join(f"v{v}" for v in entry["supersedes"]))
    if entry.get("file"):
        parts.append(f"cases/{entry['file']}.yaml")
    tests = entry.get("tests")
    if isinstance(tests, dict) and tests:
        parts.append(f"样例通过 {tests.get('passed', 0)} 个未通过 {tests.get('failed', 0)} 个")
    if entry.get("changed") is not None and entry.get("decisions") is not None:
        parts.append(f"回放 {entry['decisions']} 条决策，改变 {entry['changed']} 条")
    if entry.get("content_sha256"):
        parts.append(f"sha256 {str(entry['content_sha256'])[:12]}")
    for field in ("reason", "comment"):
        if entry.get(field):
            parts.append(f"{_HISTORY_WORDS[field]}「{entry[field]}」")
    return parts


@app.command("import")
@_handled
def import_folder(
    folder: Annotated[Path, typer.Argument(help="rules folder", exists=True, file_okay=False)],
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Import a rules folder: version 1 into an empty database (admin), else a draft per changed ruleset."""
    rulesets, cases = read_folder(folder)
    body: dict[str, Any] = {"rulesets": rulesets, "cases": cases}
    manifest = read_manifest(folder)
    if manifest:
        body["base_versions"] = {n: e["version"] for n, e in (manifest.get("rulesets") or {}).items()}
    result = _client(url, key).call("POST", "/v1/rulesets/import", json=body)
    for version in result["imported"]:
        typer.echo(f"已导入 {version['ruleset']} v{version['version']}")
    for draft in result["drafts"]:
        typer.echo(f"草稿 {draft['draft_id']}（{draft['ruleset']}）：{_tests_line(draft['tests'])}")
    for name in result["unchanged"]:
        typer.echo(f"未改变 {name}")


@app.command()
@_handled
def export(
    folder: Annotated[Path, typer.Argument(help="rules folder to write", file_okay=False)],
    as_of: Annotated[str | None, typer.Option("--as-of", help="ISO 8601 time with offset")] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Write the versions in force now (or at --as-of: scheduled ones) and their case files to a rules folder,
    with a manifest naming the version each file is based on (push and import send it back)."""
    result = _client(url, key).call("GET", "/v1/rulesets/export", params={"as_of": as_of} if as_of else None)
    rulesets = {name: entry["content"] for name, entry in result["rulesets"].items()}
    written = write_folder(folder, rulesets, result["cases"])
    write_manifest(folder, result)
    versions = ", ".join(f"{n} v{e['version']}" for n, e in result["rulesets"].items())
    typer.echo(f"已写入 {len(written)} 个文件到 {folder}（{_when(result['as_of'])} 生效中：{versions}）")
    for name, entry in result["rulesets"].items():
        for pending in entry.get("scheduled", []):
            typer.echo(
                f"注意：{name} v{pending['version']} 将于 {_when(pending['effective_at'])} 起生效；基于"
                f" v{entry['version']} 的文件推送时会被拒绝（要修改 v{pending['version']}：export"
                f" --as-of {pending['effective_at']}）"
            )


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="rulesets")
