"""The action catalogue: which actions exist and their parameters."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ActionKind:
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    emits: bool = True  # False for `assert`, which only adds a derived fact


CATALOGUE: dict[str, ActionKind] = {
    "assign": ActionKind(("group",)),
    "set_approval_level": ActionKind(("level",)),
    "request_review": ActionKind(("reviewer",)),
    "auto_approve": ActionKind(),
    "trigger_payment": ActionKind(("amount",)),
    "notify": ActionKind(("to", "channels"), ("message",)),
    "escalate": ActionKind(("to",), ("message",)),
    "start_timer": ActionKind(("timer", "duration"), ("calendar", "warnings")),
    "cancel_timer": ActionKind(("timer",)),
    "pause_timer": ActionKind(("timer",)),
    "resume_timer": ActionKind(("timer",)),
    "assert": ActionKind(("fact",), ("with",), emits=False),
}

TIMER_ACTIONS = frozenset({"start_timer", "cancel_timer", "pause_timer", "resume_timer"})
CHANNELS = ("sms", "email", "in_app")
DEFAULT_CALENDAR = "24x7"
