"""The libyaml path of `load_yaml` builds exactly what ruamel's round-trip reader builds (values, types,
positions), and leaves to ruamel whatever it does not handle the same way (errors stay ruamel's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rulesvc.yamlpos import _SLOW, _fast_load, _slow_load, load_yaml

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(
    p
    for p in [*ROOT.glob("rulesets/**/*.yaml"), *ROOT.glob("tests/**/*.yaml"), *ROOT.glob("bench/**/*.yaml")]
)

SNIPPETS = [
    "",
    "# only a comment\n",
    "a: 1\n",
    "on: [ticket.created]\nyes: no\noff: On\n",
    "t: true\nf: False\nn: ~\nn2: null\nempty:\n",
    "x: 1.5\ny: 4999.999999999999999\nz: 1e3\ninf: .inf\nnan: .nan\nneg: -0.5\n",
    "i: 0\nj: -12\nk: +7\n",
    "d: 2026-09-30\ndt: 2026-09-30T17:00:00+08:00\ndt2: 2026-09-30 17:00:00\n",
    'q: "< 5000"\ns: \'单引号\'\n地区: 上海浦东\n金额: "[1000..5000)"\n',
    'when: |\n  ticket.amount > 5000\n  and ticket.region == "上海"\nnext: 1\n',
    "when: >\n  ticket.amount > 5000\n  and true\n",
    'rows:\n  - {地区: 上海, 金额: "< 100", then: [{assign: {group: 一组}}]}\n  - id: 行2\n    then: []\n',
    "- a\n- - b\n  - c\n- {x: [1, 2]}\n",
    "1: one\ntrue: yes\n",
    "octal: 010\nhex: 0x1F\nunder: 1_000\n",  # left to ruamel
    "a: &x {b: 1}\nc: *x\n",  # aliases: left to ruamel
    "base: &b {x: 1}\nderived:\n  <<: *b\n  y: 2\n",  # merge keys: left to ruamel
    "a: !custom 1\n",  # tags: left to ruamel
    "%YAML 1.1\n---\non: yes\n",  # directives: left to ruamel
    "a: 1\na: 2\n",  # duplicate key: ruamel's error
    "a: [1, 2\n",  # syntax error: ruamel's error
    "a: b: c\n",
    "金额: > 5000\n",
    "\tkey: value\n",
    "a: 1\n---\nb: 2\n",
    "? [1, 2]\n: x\n",
    "a: 'unterminated\n",
]


def _same(fast: Any, slow: Any, where: str) -> None:
    assert type(fast) is type(slow), where
    assert repr(fast) == repr(slow), where  # repr: nan is not equal to itself, tagged scalars have no ==
    if isinstance(slow, dict | list):
        assert (fast.lc.line, fast.lc.col) == (slow.lc.line, slow.lc.col), where
        assert (fast.lc.data or None) == (slow.lc.data or None), where
        pairs = (
            zip(fast.values(), slow.values(), strict=True)
            if isinstance(slow, dict)
            else zip(fast, slow, strict=True)
        )
        for index, (f, s) in enumerate(pairs):
            _same(f, s, f"{where}/{index}")


def _check(file: str, text: str) -> None:
    fast_src, fast_errors = load_yaml(file, text)
    slow_src, slow_errors = _slow_load(file, text)
    assert fast_errors == slow_errors
    if slow_src is not None:
        assert fast_src is not None
        _same(fast_src.data, slow_src.data, file)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_files_read_alike(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert _fast_load(text) is not _SLOW  # the shipped files all take the fast path
    _check(str(path), text)


@pytest.mark.parametrize("text", SNIPPETS)
def test_snippets_read_alike(text: str) -> None:
    _check("snippet.yaml", text)


def test_what_ruamel_reads_is_left_to_it() -> None:
    for text in ("a: 1\na: 2\n", "a: [1, 2\n", "a: &x 1\nb: *x\n", "o: 010\n", "a: !t 1\n"):
        assert _fast_load(text) is _SLOW


def test_a_large_table_takes_the_fast_path() -> None:
    rows = [
        f'  - {{地区: 地区{i:05d}, 金额: "[0..1000)", then: [{{assign: {{group: g{i}}}}}]}}'
        for i in range(300)
    ]
    text = "\n".join(["rows:", *rows, ""])
    assert _fast_load(text) is not _SLOW
    _check("big.yaml", text)
