"""One error tree for the core.

Authoring errors (a ruleset or case file is wrong) carry a stable code, a message readable by risk staff,
a `file:line:col` location and an optional hint; they are collected, never raised one at a time.
Runtime errors (the engine failed while deciding) are a separate branch so callers can tell
"your rule is wrong" from "the service is broken".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Location:
    file: str
    line: int = 0  # 1-based; 0 = unknown
    col: int = 0  # 1-based; 0 = unknown

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def shifted(self, line_offset: int, col: int) -> Location:
        """Location inside an embedded text (an expression in a YAML scalar) starting at this location.

        Later lines of a block scalar are indented like its first line, so columns keep this offset."""
        return Location(self.file, self.line + line_offset, self.col + col - 1)


@dataclass(frozen=True)
class RulesetError:
    """A positioned authoring error. `code` is stable and machine-readable."""

    code: str
    message: str
    location: Location
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}"
        if self.hint:
            text += f"（提示：{self.hint}）"
        return text

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.location.file, self.location.line, self.location.col, self.code)

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "file": self.location.file,
            "line": self.location.line,
            "col": self.location.col,
            "hint": self.hint,
            "text": str(self),
        }


class RulesvcError(Exception):
    """Base of every exception raised by the core."""

    code = "rulesvc_error"


class InvalidRulesetError(RulesvcError):
    """Raised when loading files that have authoring errors; carries all of them, sorted by location."""

    code = "invalid_ruleset"

    def __init__(self, errors: list[RulesetError]) -> None:
        self.errors = sorted(errors, key=RulesetError.sort_key)
        super().__init__("\n".join(str(e) for e in self.errors))


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input value: dotted `path` (`ticket.amount`), stable `code`, Chinese message."""

    path: str
    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "code": self.code, "message": self.message}

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidEventError(RulesvcError):
    """An event that cannot be evaluated; `problems` lists every problem found (each with its path)."""

    code = "event.invalid"

    def __init__(self, message: str, path: str = "", problems: tuple[Problem, ...] = ()) -> None:
        self.path = path
        self.problems = problems or (Problem(path, "validation.invalid", message),)
        super().__init__(message)

    @classmethod
    def of(cls, problems: list[Problem] | tuple[Problem, ...]) -> InvalidEventError:
        items = tuple(problems)
        summary = "；".join(str(p) for p in items[:3]) + ("；……" if len(items) > 3 else "")
        return cls(f"事件不合法（{len(items)} 处问题）：{summary}", items[0].path if items else "", items)


class EngineError(RulesvcError):
    """The rule engine failed while deciding (not the author's fault)."""

    code = "engine_error"


class ActionFailedError(EngineError):
    """A rule's action raised inside the engine; durable_rules would have swallowed it."""

    code = "action_failed"


class RuleRuntimeError(EngineError):
    """A ruleset failed while deciding an event (the author's rule, not the service, is at fault): a unique
    table with two matching rows (`rule.unique_conflict`), a chain of rules deriving new facts without end
    (`rule.loop_limit`), arithmetic that has no result in an action (`rule.arithmetic`).

    Positioned at the rule, row or action in the ruleset file, naming the ruleset, its version, the rule or
    `table#row` reference and the values involved (JSON-ready). Nothing is decided for the event: it can be
    sent again once the ruleset is fixed."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        ruleset: str,
        version: int,
        rule: str,
        location: Location,
        values: dict[str, object],
    ) -> None:
        self.code = code
        self.message = message
        self.ruleset = ruleset
        self.version = version
        self.rule = rule
        self.location = location
        self.values = values
        self.timeline: list[object] | None = None  # a simulation's entries before the failing trigger
        super().__init__(f"{location}: {message}")

    def to_json(self) -> dict[str, object]:
        found: dict[str, object] = {
            "ruleset": self.ruleset,
            "version": self.version,
            "rule": self.rule,
            "file": self.location.file,
            "line": self.location.line,
            "col": self.location.col,
            "values": self.values,
        }
        if self.timeline is not None:
            found["timeline"] = self.timeline
        return found
