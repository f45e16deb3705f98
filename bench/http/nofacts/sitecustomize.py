"""Loaded at start-up by every Python process whose PYTHONPATH holds this folder (`python -m bench.http
--facts`): `rulesvc serve` and the worker processes uvicorn spawns then store each decision without its
`decision_facts` row. The bench's "facts off" side; nothing of the product reads this file."""

from __future__ import annotations

from typing import Any

import rulesvc.storage.decision_writes as _writes


def _no_facts(*_args: Any) -> None:
    """`observe` finding nothing: no facts are folded, no latest row is read, no row is written."""
    return None


_writes.observe = _no_facts  # type: ignore[assignment]
