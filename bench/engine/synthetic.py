"""Synthetic routing tables: the same table as a rulesvc ruleset folder, a GoRules JDM graph and plain Python.

Shape (hit: first): `region` equality + `amount` interval + a default row. Every region owns BANDS
consecutive amount bands, so a table of N rows has N / BANDS regions. Amounts at or above the last band and
regions the table does not list fall through to the default row (group "总行兜底组").
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from rulesvc.events import event_from_json
from rulesvc.model import Event

BANDS: tuple[tuple[int, int], ...] = (
    (0, 1_000),
    (1_000, 5_000),
    (5_000, 20_000),
    (20_000, 100_000),
    (100_000, 1_000_000),
)
DEFAULT_GROUP = "总行兜底组"
KIND = "route"
RULESET = "bench-routing"
TABLE = "地区金额分派"
OCCURRED_AT = "2026-09-30T17:00:00+08:00"

KIND_YAML = """\
kind: route
description: benchmark routing ticket
enums: {}
fields:
  kind: string
  id: string
  region: string
  amount: number
"""


@dataclass(frozen=True)
class RoutingRow:
    region: str
    low: int
    high: int
    group: str


@dataclass(frozen=True)
class RoutingTable:
    size: int
    rows: tuple[RoutingRow, ...]

    @property
    def regions(self) -> list[str]:
        return list(dict.fromkeys(row.region for row in self.rows))


def region_name(index: int) -> str:
    return f"地区{index:05d}"


def make_table(size: int) -> RoutingTable:
    if size % len(BANDS):
        raise ValueError(f"size must be a multiple of {len(BANDS)}")
    rows = []
    for position in range(size):
        region_index, band = divmod(position, len(BANDS))
        low, high = BANDS[band]
        rows.append(RoutingRow(region_name(region_index), low, high, f"审批组{position + 1:05d}"))
    return RoutingTable(size, tuple(rows))


# ---- rulesvc -----------------------------------------------------------------------------------------


def ruleset_yaml(table: RoutingTable) -> str:
    lines = [
        f"ruleset: {RULESET}",
        f"kind: {KIND}",
        f"description: synthetic routing table, {table.size} rows",
        "tables:",
        f"  - id: {TABLE}",
        "    on: [ticket.created]",
        "    hit: first",
        "    inputs:",
        "      地区: ticket.region",
        "      金额: ticket.amount",
        "    rows:",
    ]
    for row in table.rows:  # one flow mapping per row, ids default to 行1, 行2, ... (parses faster)
        lines.append(
            f'      - {{地区: {row.region}, 金额: "[{row.low}..{row.high})", '
            f"then: [{{assign: {{group: {row.group}}}}}]}}"
        )
    lines += [
        "    default:",
        f"      then: [{{assign: {{group: {DEFAULT_GROUP}}}}}]",
        "rules: []",
        "",
    ]
    return "\n".join(lines)


def write_folder(root: Path, table: RoutingTable) -> Path:
    """A rules folder with the routing kind and the table's ruleset (24x7 calendar is built in)."""
    (root / "kinds").mkdir(parents=True, exist_ok=True)
    (root / "kinds" / f"{KIND}.yaml").write_text(KIND_YAML, encoding="utf-8")
    (root / f"{RULESET}.yaml").write_text(ruleset_yaml(table), encoding="utf-8")
    return root


# ---- GoRules JDM -------------------------------------------------------------------------------------


def jdm(table: RoutingTable) -> dict[str, Any]:
    """The same table as a JDM graph: input → decision table (hit policy first) → output."""
    rules: list[dict[str, str]] = [
        {
            "_id": f"r{position}",
            "region": json.dumps(row.region, ensure_ascii=False),
            "amount": f"[{row.low}..{row.high})",
            "group": json.dumps(row.group, ensure_ascii=False),
        }
        for position, row in enumerate(table.rows, start=1)
    ]
    rules.append(
        {"_id": "default", "region": "", "amount": "", "group": json.dumps(DEFAULT_GROUP, ensure_ascii=False)}
    )
    return {
        "nodes": [
            {"id": "request", "type": "inputNode", "name": "request", "position": {"x": 0, "y": 0}},
            {
                "id": "table",
                "type": "decisionTableNode",
                "name": TABLE,
                "position": {"x": 200, "y": 0},
                "content": {
                    "hitPolicy": "first",
                    "inputs": [
                        {"id": "region", "name": "地区", "field": "region"},
                        {"id": "amount", "name": "金额", "field": "amount"},
                    ],
                    "outputs": [{"id": "group", "name": "group", "field": "group"}],
                    "rules": rules,
                },
            },
            {"id": "response", "type": "outputNode", "name": "response", "position": {"x": 400, "y": 0}},
        ],
        "edges": [
            {"id": "e1", "sourceId": "request", "targetId": "table", "type": "edge"},
            {"id": "e2", "sourceId": "table", "targetId": "response", "type": "edge"},
        ],
    }


# ---- plain Python ------------------------------------------------------------------------------------


def plain_index(table: RoutingTable) -> dict[str, list[tuple[int, int, str]]]:
    index: dict[str, list[tuple[int, int, str]]] = {}
    for row in table.rows:
        index.setdefault(row.region, []).append((row.low, row.high, row.group))
    return index


def plain_decide(index: dict[str, list[tuple[int, int, str]]], region: str, amount: float) -> str:
    for low, high, group in index.get(region, ()):
        if low <= amount < high:
            return group
    return DEFAULT_GROUP


# ---- inputs ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    region: str
    amount: float  # a float with an exact short repr; rulesvc sees Decimal(repr(amount))
    event: Event
    context: dict[str, Any]


def make_inputs(table: RoutingTable, count: int, seed: int = 7) -> list[Sample]:
    """Mostly listed regions with amounts in every band, boundaries included; ~10 % unknown regions and
    ~5 % amounts above the last band (both → default row)."""
    rng = random.Random(seed)
    regions = table.regions
    boundaries = sorted({b for band in BANDS for b in band} | {b - 0.01 for band in BANDS for b in band})
    samples = []
    for number in range(count):
        draw = rng.random()
        region = f"未知地区{number % 17}" if draw < 0.10 else rng.choice(regions)
        if draw > 0.95:
            amount = float(rng.randrange(1_000_000, 50_000_000))
        elif draw > 0.75:
            amount = max(0.0, rng.choice(boundaries))
        else:
            amount = round(rng.uniform(0, 999_999.99), 2)
        event = event_from_json(
            {
                "event_id": f"bench-{number}",
                "type": "ticket.created",
                "occurred_at": OCCURRED_AT,
                "ticket": {"kind": KIND, "id": f"R-{number}", "region": region, "amount": amount},
            }
        )
        samples.append(Sample(region, amount, event, {"region": region, "amount": amount}))
    return samples


def exact(amount: float) -> Decimal:
    return Decimal(repr(amount))


def groups_of(actions: Sequence[Any]) -> list[str]:
    return [str(a.params["group"]) for a in actions if a.type == "assign"]
