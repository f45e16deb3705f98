"""Request and response models of the ruleset lifecycle routes (pydantic at the boundary only)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_text(value: Any) -> Any:
    """Only ISO 8601 text: pydantic would otherwise take numbers as Unix timestamps."""
    if not isinstance(value, str) or not _ISO.match(value):
        raise ValueError(
            "应为带时区的时间，如 2026-12-01T00:00:00+08:00（北京时间可写 2026-12-01 00:00+08:00）"
        )
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_text)]
Text = Annotated[str, Field(max_length=2000, pattern=r"^[^\x00]*$")]
FileName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\s/\\:*?\"<>|\x00-\x1f]+$")]
EXPENSE_RULESET = "expense-approval"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DraftIn(_In):
    """The JSON form of a draft upload (the plain form is the YAML file itself)."""

    content: str = Field(min_length=1, description="the ruleset file (YAML)")
    reason: Text = ""
    cases: dict[FileName, str] = Field(
        default_factory=dict,
        description="the ruleset's own case file (`{name: YAML}`), replacing the current one",
    )
    base_version: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="the version the file was exported from (refused unless latest)",
    )
    base_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = Field(
        default=None, description="that version's content_sha256, as exported"
    )


class ReviewIn(_In):
    comment: Text = ""
    accept_gaps: bool = Field(
        default=False,
        description="approve only: accept the gaps in the gate the author explained (required when there are any)",
    )


class SubmitIn(_In):
    gaps_reason: Text = Field(
        default="",
        description="why the draft may leave gaps in the gate (coverage under 100 %, the only case of a row or "
        "threshold removed); required when it does",
    )


class PublishIn(_In):
    effective_at: Instant | None = Field(
        default=None, description="when the version takes effect (now or later); default now"
    )


class RollbackIn(_In):
    to_version: int = Field(ge=1, le=1_000_000)
    reason: Text = ""


class ReplayIn(_In):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: Instant = Field(alias="from")
    end: Instant = Field(alias="to")
    limit: int = Field(default=10_000, ge=1, le=50_000)


class ImportIn(_In):
    rulesets: dict[FileName, str] = Field(description="ruleset name → YAML")
    cases: dict[FileName, str] = Field(default_factory=dict, description="case file stem → YAML")
    base_versions: dict[FileName, Annotated[int, Field(ge=1, le=1_000_000)]] = Field(
        default_factory=dict, description="ruleset → the version the folder was exported from (`based_on`)"
    )


# -- query strings (unknown parameters are refused, like every other route) ---------------------------------


class AsOfQuery(_In):
    as_of: Instant | None = Field(None, description="ISO 8601 时刻（带时区），默认当前")


class DraftQuery(_In):
    reason: Text = Field("", description="修改原因（YAML 请求体时）")
    base_version: int | None = Field(None, ge=1, le=1_000_000, description="文件导出时所基于的版本")


class DraftListQuery(_In):
    status: Literal["draft", "submitted", "approved", "rejected", "published"] | None = None


SheetFormat = Literal["xlsx", "csv"]
SheetName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^/\\:*?\"<>|\x00-\x1f]+$")]


class EvidenceQuery(_In):
    format: Literal["html", "xlsx", "pdf"] = Field(
        "html", description="证据文件格式：html（可打印的网页）、xlsx、pdf（内嵌中文字体）"
    )


class CasesQuery(_In):
    file: FileName | None = Field(None, description="样例文件名（不含 .yaml），默认规则集名")
    format: Literal["yaml", "xlsx", "csv"] | None = Field(
        None, description="请求体格式；默认按 Content-Type（application/yaml、text/csv 或 XLSX）"
    )
    filename: SheetName | None = Field(None, description="表格文件名（错误位置用，如 报销样例.xlsx）")


class SheetQuery(_In):
    format: SheetFormat = Field("xlsx", description="xlsx 或 csv（UTF-8 带 BOM）")
    version: int | None = Field(None, ge=1, le=1_000_000, description="版本号；默认当前生效的版本")


class DraftSheetQuery(_In):
    format: SheetFormat = Field("xlsx", description="xlsx 或 csv（UTF-8 带 BOM）")


class SheetUploadQuery(_In):
    format: SheetFormat | None = Field(
        None, description="请求体格式；默认按 Content-Type（text/csv 或 XLSX）"
    )
    filename: SheetName | None = Field(None, description="表格文件名（错误位置用，如 报销审批.xlsx）")
    reason: Text = Field("", description="修改原因（新建草稿时）")


class DiffQuery(_In):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_ref: Annotated[str, Field(max_length=64)] | None = Field(
        None, alias="from", description="版本号（3 或 v3）或草稿 id"
    )
    to_ref: Annotated[str, Field(max_length=64)] | None = Field(
        None, alias="to", description="版本号或草稿 id，默认最新版本"
    )


# -- answers (documentation; routes render the core's JSON) -----------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class PendingOut(_Out):
    version: int
    effective_at: str
    state: str


class SupersededOut(_Out):
    version: int
    effective_at: str
    state: Literal["superseded", "rolled_back"]
    state_label: str
    superseded_by: int | None
    never_in_force: bool


class RulesetOut(_Out):
    name: str
    version: int | None
    effective_at: str | None
    content_sha256: str | None
    approver: str | None
    published_at: str | None
    state: Literal["in_force"] | None
    pending: list[PendingOut] = Field(description="versions scheduled to take effect later")
    superseded: list[SupersededOut] = Field(
        description="versions that were scheduled after the one in force but will now never take effect"
    )


class RulesetListOut(_Out):
    as_of: str
    rulesets: list[RulesetOut]


class CaseFailureOut(_Out):
    name: str
    file: str
    line: int
    col: int
    problems: list[str]
    text: str


class TestReportOut(_Out):
    total: int
    passed: int
    failed: int
    coverage: float
    uncovered: list[str]
    failures: list[CaseFailureOut]
    cases_sha256: str
    scenarios: list[dict[str, Any]] = Field(
        default_factory=list, description="each combination of versions the cases ran against"
    )
    gaps: list[dict[str, Any]] = Field(
        default_factory=list,
        description="gaps in the gate: need a reason at submit and the approver's acceptance",
    )
    warnings: list[dict[str, Any]] = Field(default_factory=list)


class ChangeOut(_Out):
    where: str
    what: str
    old: Any = None
    new: Any = None


class CaseChangeOut(_Out):
    file: str
    case: str
    change: Literal["added", "removed", "expect_changed", "given_changed"]
    label: str = Field(description="新增样例 / 删除样例 / 预期结果改变 / 输入改变")
    summary: str


class DiffOut(_Out):
    ruleset: str
    added: list[str]
    removed: list[str]
    changed: list[ChangeOut]
    summary: list[str]
    text: str
    cases_text: str
    cases: list[CaseChangeOut] = Field(description="the ruleset's own case file, case by case")
    from_: str = Field(alias="from")
    to: str


class DraftOut(_Out):
    draft_id: str
    ruleset: str
    status: str
    source: str
    base_version: int | None
    rollback_of: int | None
    content_sha256: str
    case_files: list[str]
    author: str
    reason: str
    created_at: str
    submittable: bool
    tests: TestReportOut
    replay: dict[str, Any] | None


class DraftListOut(_Out):
    drafts: list[DraftOut]


class VersionOut(_Out):
    ruleset: str
    version: int
    state: Literal["in_force", "scheduled", "superseded", "rolled_back"] = Field(
        description="生效中 / 待生效 / 已被取代 / 已回滚（现在）"
    )
    state_label: str
    superseded_by: int | None
    never_in_force: bool = Field(description="superseded before it ever took effect")
    effective_at: str
    content_sha256: str
    cases_sha256: str
    source: str
    author: str
    reason: str
    approver: str | None
    approval_comment: str
    published_at: str
    published_by: str


class VersionListOut(_Out):
    ruleset: str
    versions: list[VersionOut]


class PublishOut(VersionOut):
    supersedes: list[int] = Field(description="scheduled versions that will now never take effect")


class HistoryEntryOut(_Out):
    seq: int
    at: str
    hash: str
    prev_hash: str
    step: str
    by: str


class HistoryOut(_Out):
    ruleset: str
    entries: list[HistoryEntryOut]


class ImportOut(_Out):
    imported: list[VersionOut]
    drafts: list[DraftOut]
    unchanged: list[str]


class VersionProblemOut(_Out):
    ruleset: str
    version: int
    reason: str
    message: str


class RulesetVerifyOut(_Out):
    ok: bool
    checked: int
    problems: list[VersionProblemOut]


class ExportedOut(_Out):
    version: int
    content: str
    state: str
    content_sha256: str
    cases_sha256: str
    latest_version: int
    scheduled: list[PendingOut]


class ExportOut(_Out):
    as_of: str
    based_on: dict[str, int] = Field(
        description="ruleset → the version exported (send back as base_versions)"
    )
    rulesets: dict[str, ExportedOut]
    cases: dict[str, str]
