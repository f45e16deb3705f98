"""Editing a decision table's rows in a ruleset file's text, the way a person would by hand: only the cells
that changed are rewritten (at their line and column, in their quoting style), rows are copied, moved or
removed as whole blocks of lines, and every comment and the rest of the file stay as they were. The console's
grid saves through this; the result is checked and tested as any other draft."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from rulesvc.errors import RulesvcError


class TableEditError(RulesvcError):
    """The edit cannot be applied to the file (no such table or row, a malformed request)."""

    code = "table_edit.invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class RowEdit:
    """A row as it should be: `source` is the id of the row it is (or is a copy of); `id` its id now."""

    id: str
    source: str
    cells: Mapping[str, str] = field(default_factory=dict)


_PLAIN = re.compile(r"^[^\s\"'#&*!|>%@`{}\[\],?:-][^#]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "~", ""}


def scalar(value: str, quoted: bool) -> str:
    """A cell's text as a YAML scalar: double-quoted when the original was, or when plain would not read
    back as the same text."""
    plain_ok = (
        _PLAIN.match(value) is not None
        and ": " not in value
        and not value.endswith((" ", ":"))
        and value.lower() not in _RESERVED
    )
    return value if plain_ok and not quoted else json.dumps(value, ensure_ascii=False)


def token_end(line: str, col: int) -> int:
    """Where the scalar starting at `col` ends (exclusive)."""
    quote = line[col] if col < len(line) else ""
    if quote == '"':
        i = col + 1
        while i < len(line):
            if line[i] == "\\":
                i += 2
                continue
            if line[i] == '"':
                return i + 1
            i += 1
        return len(line)
    if quote == "'":
        i = col + 1
        while i < len(line):
            if line[i] == "'":
                if i + 1 < len(line) and line[i + 1] == "'":
                    i += 2
                    continue
                return i + 1
            i += 1
        return len(line)
    comment = line.find(" #", col)
    end = comment if comment >= 0 else len(line)
    return len(line[:end].rstrip())


def _load(text: str) -> Any:
    try:
        return YAML(typ="rt").load(text)
    except YAMLError as exc:
        raise TableEditError(f"规则集文件无法解析：{exc}") from None


def _is_blank(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def edit_table(text: str, table_id: str, rows: Sequence[RowEdit]) -> str:
    """`text` with table `table_id`'s rows replaced by `rows` (in that order)."""
    data = _load(text)
    tables = data.get("tables") if isinstance(data, Mapping) else None
    index = next(
        (i for i, t in enumerate(tables or []) if isinstance(t, Mapping) and str(t.get("id")) == table_id),
        None,
    )
    if tables is None or index is None:
        raise TableEditError(f"规则集中没有决策表 {table_id}")
    table = tables[index]
    items = table.get("rows")
    if not items:
        raise TableEditError(f"决策表 {table_id} 没有可编辑的行")
    lines = text.splitlines(keepends=True)
    starts = [items.lc.item(i)[0] for i in range(len(items))]
    keys = list(table.keys())
    after_rows = keys.index("rows") + 1
    if after_rows < len(keys):
        stop = table.lc.key(keys[after_rows])[0]
    elif index + 1 < len(tables):
        stop = tables.lc.item(index + 1)[0]
    else:
        stop = len(lines)
    while stop > starts[-1] + 1 and _is_blank(lines[stop - 1]):
        stop -= 1
    blocks: dict[str, tuple[int, list[str]]] = {}
    for i, item in enumerate(items):
        end = starts[i + 1] if i + 1 < len(items) else stop
        blocks[str(item.get("id"))] = (i, lines[starts[i] : end])
    out: list[str] = []
    seen: set[str] = set()
    for row in rows:
        if row.source not in blocks:
            raise TableEditError(f"决策表 {table_id} 没有行 {row.source}")
        if not row.id.strip():
            raise TableEditError("行 id 不能为空")
        if row.id in seen:
            raise TableEditError(f"行 id {row.id} 重复")
        seen.add(row.id)
        position, block = blocks[row.source]
        out.extend(_edit_row(list(block), starts[position], items[position], row))
    if not rows:
        raise TableEditError(f"决策表 {table_id} 至少要有一行（默认行之外）")
    if out and not out[-1].endswith("\n"):
        out[-1] += "\n"
    return "".join(lines[: starts[0]] + out + lines[stop:])


def _edit_row(block: list[str], first: int, item: Any, row: RowEdit) -> list[str]:
    """One row's lines with its id and changed cells rewritten (positions relative to the block)."""
    changes: list[tuple[int, int, str]] = []  # (line, col, new token)
    missing: list[str] = []
    removed: list[int] = []
    targets: dict[str, str] = {"id": row.id, **row.cells}
    for key, new in targets.items():
        if key in ("then",):
            continue
        if key in item:
            old = item[key]
            line, col = item.lc.value(key)
            if key != "id" and not new.strip():
                removed.append(line - first)
                continue
            if str(old) == new and key != "id":
                continue
            if key == "id" and str(old) == new:
                continue
            text = block[line - first]
            quoted = text[col : col + 1] in ('"', "'")
            changes.append((line - first, col, scalar(new, quoted)))
        elif new.strip():
            missing.append(key)
    for line, col, token in changes:
        text = block[line]
        block[line] = text[:col] + token + text[token_end(text, col) :]
    id_line = item.lc.key("id")[0] - first
    indent = " " * item.lc.key("id")[1]
    for offset, key in enumerate(missing, start=1):
        block.insert(id_line + offset, f"{indent}{key}: {scalar(row.cells[key], True)}\n")
    shift = len(missing)
    for line in sorted(removed, reverse=True):
        del block[line + shift if line > id_line else line]
    return block
