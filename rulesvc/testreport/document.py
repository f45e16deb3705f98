"""The evidence file's content: which ruleset versions were tested (content hashes, place in the audit chain,
author and approver), every compliance case with its result and, for a failure, expected against actual,
rule coverage, the date, and a digest of it all.

The content is one JSON value (`Evidence.content`). Its digest is SHA-256 over its canonical text (keys
sorted, UTF-8, no whitespace: `rulesvc.audit.chain.canonical`). Every file format (HTML, XLSX, PDF) renders
the same content, states the digest, and carries the content itself, so `rulesvc report verify FILE` can
recompute the digest and render the file again to compare (`rulesvc.testreport.verify`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rulesvc.audit.chain import canonical, sha256_hex
from rulesvc.cases.runner import CaseResult, Report
from rulesvc.model import to_jsonable

FORMAT = "rulesvc-evidence/1"
"""The content's format tag, first thing a reader checks."""
SHANGHAI = ZoneInfo("Asia/Shanghai")
UNPUBLISHED = "未发布/工作副本"
"""What the audit chain column says of a draft or a working copy."""
TITLE = "合规测试证据报告"
DIGEST_METHOD = (
    "SHA-256，对报告内嵌内容（JSON：键按字母排序、UTF-8、无多余空白）计算；"
    "用 rulesvc report verify 文件 重新计算并逐项比对"
)


def local_time(value: datetime | str | None) -> str:
    """A time as people read it here: `YYYY-MM-DD HH:MM:SS` in Asia/Shanghai (empty for none)."""
    if value is None or value == "":
        return ""
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    return instant.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class TestedRuleset:
    """One ruleset the cases ran on. `chain_seq`/`chain_hash`: the audit chain entry that published (or
    imported) this content; None for a draft or a working copy."""

    name: str
    version: str
    content_sha256: str
    chain_seq: int | None = None
    chain_hash: str | None = None
    author: str | None = None
    approver: str | None = None
    approved_at: datetime | None = None
    effective: str = ""
    """When it takes effect, as people read it (`2026-11-02 10:00:00`, `导入即生效（…）`)."""
    state: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "content_sha256": self.content_sha256,
            "chain": (
                {"seq": self.chain_seq, "hash": self.chain_hash} if self.chain_seq is not None else None
            ),
            "author": self.author or "",
            "approver": self.approver or "",
            "approved_at": local_time(self.approved_at),
            "effective_at": self.effective,
            "state": self.state,
        }


@dataclass(frozen=True)
class Evidence:
    """The report's content (JSON) and its digest."""

    content: Mapping[str, Any]
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", digest_of(self.content))

    @property
    def passed(self) -> bool:
        return not int(self.content["summary"]["failed"])


def digest_of(content: Mapping[str, Any]) -> str:
    return sha256_hex(canonical(content))


def _spec(expected: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {to_jsonable(v)}" for k, v in expected.items()) + "}"


def _case(result: CaseResult) -> dict[str, Any]:
    case = result.case
    entry: dict[str, Any] = {
        "file": case.location.file,
        "line": case.location.line,
        "name": case.name,
        "passed": result.passed,
    }
    if not result.passed:
        entry["expected"] = [_spec(e) for e in case.expect]
        entry["forbidden"] = [_spec(e) for e in case.expect_not]
        entry["actual"] = [obs.describe() for obs in result.observed]
        entry["problems"] = [*result.failures, *([f"错误：{result.error}"] if result.error else [])]
    return entry


def _coverage(report: Report) -> list[dict[str, Any]]:
    covered = report.covered
    by_ruleset: dict[str, list[str]] = {}
    for ref in report.all_refs:
        by_ruleset.setdefault(ref.split("/", 1)[0], []).append(ref)
    result = []
    for name in sorted(by_ruleset):
        refs = by_ruleset[name]
        hit = [ref for ref in refs if ref in covered]
        result.append(
            {
                "ruleset": name,
                "rules": len(refs),
                "covered": len(hit),
                "ratio": round(len(hit) / len(refs), 4) if refs else 1.0,
                "uncovered": [ref.split("/", 1)[1] for ref in refs if ref not in covered],
            }
        )
    return result


def build_evidence(
    subject: str,
    rulesets: Sequence[TestedRuleset],
    report: Report,
    generated_at: datetime,
    cases_sha256: str = "",
) -> Evidence:
    """The evidence of one run of the cases (`report`) on `rulesets`; `subject` says what is attested (in
    Chinese: 规则集 X 草稿 …, 规则集 X v3, 规则文件夹 …)."""
    covered = len(report.all_refs) - len(report.uncovered)
    content = {
        "format": FORMAT,
        "title": TITLE,
        "subject": subject,
        "generated_at": generated_at.astimezone(SHANGHAI).isoformat(timespec="seconds"),
        "timezone": "Asia/Shanghai",
        "rulesets": [r.to_json() for r in sorted(rulesets, key=lambda r: r.name)],
        "cases_sha256": cases_sha256,
        "summary": {
            "total": len(report.results),
            "passed": len(report.results) - len(report.failed),
            "failed": len(report.failed),
            "rules": len(report.all_refs),
            "covered": covered,
            "coverage": round(report.coverage, 4),
        },
        "cases": [_case(r) for r in report.results],
        "coverage": _coverage(report),
    }
    return Evidence(content)


def percent(ratio: float) -> str:
    return f"{ratio * 100:.1f}%"
