"""Why a lifecycle step was refused. Each error has a stable `code`; the HTTP layer picks the status.

Messages are for risk staff (Chinese); `details` carries what a client needs to act (the positioned
authoring errors, the failing cases, the version a draft should be rebased on).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rulesvc.errors import RulesetError, RulesvcError


class LifecycleError(RulesvcError):
    code = "lifecycle_error"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFoundError(LifecycleError):
    code = "not_found"


class InvalidDraftError(LifecycleError):
    """The ruleset or case file has authoring errors (the same positioned errors as `rulesvc check`)."""

    code = "invalid_ruleset"

    def __init__(self, errors: Sequence[RulesetError], message: str = "规则集有错误") -> None:
        self.errors = sorted(errors, key=RulesetError.sort_key)
        super().__init__(
            f"{message}（{len(self.errors)} 处）：" + "；".join(str(e) for e in self.errors[:3]),
            [e.to_json() for e in self.errors],
        )


class CasesFailedError(LifecycleError):
    """Compliance cases fail on the draft: it cannot be submitted."""

    code = "cases_failed"

    def __init__(self, tests: Mapping[str, Any]) -> None:
        failed = list(tests.get("failures", []))
        names = "、".join(str(f.get("name")) for f in failed[:5])
        super().__init__(f"{len(failed)} 个合规样例未通过，草稿不能提交审批：{names}", dict(tests))


class GapsUnexplainedError(LifecycleError):
    """The draft leaves gaps in the gate (coverage under 100 %, the only case of a row or threshold removed):
    it can be submitted only with a reason, which the approver then accepts explicitly."""

    code = "gate.gaps_unexplained"


class GapsNotAcceptedError(LifecycleError):
    """The approver did not accept the gaps the draft's author explained."""

    code = "gate.gaps_not_accepted"


class FourEyesError(LifecycleError):
    """The draft's author may not approve or reject it, whatever roles the key holds."""

    code = "four_eyes"


class ForbiddenError(LifecycleError):
    """The caller may not take this step on this draft (e.g. change someone else's draft)."""

    code = "forbidden"


class ForeignCaseFileError(ForbiddenError):
    """A draft may change only its own ruleset's case file (`cases/<name>.yaml`): another ruleset's cases
    are changed by a draft of that ruleset, tested, reviewed and approved as such."""

    code = "cases.foreign_file"


class StateError(LifecycleError):
    """The draft is not in the state this step needs (e.g. publishing a draft that is not approved)."""

    code = "invalid_state"


class EvidenceFrozenError(StateError):
    """The evidence the approver sees (tests, coverage, replay) is frozen at submit: replaying a submitted
    draft again needs the author to withdraw it to editing first (and submit it again)."""

    code = "draft.evidence_frozen"


class StaleDraftError(LifecycleError):
    """A newer version was published after the draft was made; publishing it would undo that version."""

    code = "stale_draft"


class StaleBaseError(StaleDraftError):
    """A file based on an older (or a different) version than the latest: pushing it would silently undo
    what was published since, e.g. a scheduled version. The difference is in `details`."""

    code = "draft.stale_base"


class NoChangeError(LifecycleError):
    code = "no_change"


class BadRequestError(LifecycleError):
    """A request value is out of range (an effective time in the past, an empty reason, ...)."""

    code = "invalid_request"


class InvalidSheetError(InvalidDraftError):
    """An uploaded XLSX/CSV sheet (a decision table or cases) has errors: each in `details`, positioned by
    cell (`file.xlsx!Sheet!C7`) with its stable `sheet.*` code."""

    code = "sheet.invalid"
