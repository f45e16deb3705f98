"""YAML loading that keeps positions, so every authoring error can say `file:line:col`."""

from __future__ import annotations

import difflib
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache, cached_property
from typing import Any, TypeVar

import yaml as libyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, LineCol
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import Node, ScalarNode
from ruamel.yaml.resolver import implicit_resolvers
from ruamel.yaml.scalarint import ScalarInt
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

from rulesvc.errors import Location, RulesetError

# libyaml's parser (PyYAML without libyaml has none: then every file is read by ruamel, slower, same result)
try:
    from yaml._yaml import CParser as _CParser
except ImportError:
    _CParser = None  # type: ignore[assignment,misc]

T = TypeVar("T")


@dataclass(frozen=True)
class Source:
    """A YAML document with its file name and raw lines (for locating text inside block scalars)."""

    file: str
    text: str
    data: Any

    @cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def key_loc(self, mapping: Any, key: Any) -> Location:
        if isinstance(mapping, CommentedMap):
            try:
                line, col = mapping.lc.key(key)
                return Location(self.file, line + 1, col + 1)
            except (KeyError, TypeError):
                pass
        return self.node_loc(mapping)

    def value_loc(self, mapping: Any, key: Any) -> Location:
        """Where the value's text starts (inside quotes; first content line of a block scalar)."""
        if isinstance(mapping, CommentedMap):
            try:
                line, col = mapping.lc.value(key)
            except (KeyError, TypeError):
                return self.key_loc(mapping, key)
            return self._content_loc(line, col, mapping.get(key))
        return self.node_loc(mapping)

    def item_loc(self, seq: Any, index: int) -> Location:
        if isinstance(seq, CommentedSeq):
            try:
                line, col = seq.lc.item(index)
                return self._content_loc(line, col, seq[index])
            except (KeyError, TypeError, IndexError):
                pass
        return self.node_loc(seq)

    def block_text(self, mapping: Any, key: Any) -> str | None:
        """The raw lines of a `|` or `>` block scalar value, de-indented, newlines kept.

        Expressions treat newlines as spaces, so parsing the raw block instead of YAML's folded text keeps
        every error position on the line and column the author sees.
        """
        value = mapping.get(key) if isinstance(mapping, CommentedMap) else None
        if not isinstance(value, FoldedScalarString | LiteralScalarString):
            return None
        start = self.value_loc(mapping, key)
        indent = start.col - 1
        block: list[str] = []
        for raw in self.lines[start.line - 1 :]:
            if raw.strip() and len(raw) - len(raw.lstrip()) < indent:
                break
            block.append(raw[indent:])
        return "\n".join(block).rstrip()

    def node_loc(self, node: Any) -> Location:
        if isinstance(node, CommentedMap | CommentedSeq):
            return Location(self.file, node.lc.line + 1, node.lc.col + 1)
        return Location(self.file, 1, 1)

    def _content_loc(self, line: int, col: int, value: Any) -> Location:
        lines = self.lines
        if isinstance(value, FoldedScalarString | LiteralScalarString):
            for number in range(line + 1, len(lines)):
                stripped = lines[number].lstrip()
                if stripped:
                    return Location(self.file, number + 1, len(lines[number]) - len(stripped) + 1)
        if isinstance(value, str) and line < len(lines):
            raw = lines[line]
            if col < len(raw) and raw[col] in "\"'":
                col += 1
        return Location(self.file, line + 1, col + 1)


class _ExactConstructor(RoundTripConstructor):
    """YAML numbers with a fraction or exponent become Decimals from their own text (`4999.999999999999999`
    is not `5000.0`), as JSON numbers do in `rulesvc.exactjson`; `.inf`/`.nan` stay floats."""

    def construct_yaml_float(self, node: Any) -> Any:
        text = str(self.construct_scalar(node)).replace("_", "")
        try:
            number = Decimal(text)
        except InvalidOperation:
            return super().construct_yaml_float(node)
        return number if number.is_finite() else super().construct_yaml_float(node)


_ExactConstructor.add_constructor("tag:yaml.org,2002:float", _ExactConstructor.construct_yaml_float)


def _syntax_error(file: str, exc: MarkedYAMLError) -> RulesetError:
    """A YAML parser error as one positioned `yaml.syntax` / `yaml.duplicate_key` error in Chinese."""
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or exc.context or "invalid YAML"
    duplicate = "duplicate key" in problem
    code = "yaml.duplicate_key" if duplicate else "yaml.syntax"
    summary = "同一层级的键重复" if duplicate else "YAML 语法错误"
    hint = (
        "删除或改名重复的键"
        if duplicate
        else '以 >、|、*、&、!、%、@ 开头或含有「: 」的值要加引号，如 金额: "< 5000"'
    )
    # the parser's own English words stay after the Chinese summary, for whoever reads logs
    return RulesetError(code, f"{summary}（{problem}）", Location(file, line, col), hint)


def _parse(file: str, parse: Callable[[], T]) -> tuple[T | None, list[RulesetError]]:
    """What `parse` reads, or one positioned `yaml.syntax` / `yaml.duplicate_key` error in Chinese."""
    try:
        return parse(), []
    except MarkedYAMLError as exc:
        return None, [_syntax_error(file, exc)]
    except Exception as exc:  # ruamel raises a few unmarked errors
        return None, [RulesetError("yaml.syntax", f"YAML 无法读取（{exc}）", Location(file, 1, 1))]


def load_yaml(file: str, text: str) -> tuple[Source | None, list[RulesetError]]:
    """Parse YAML keeping positions; a syntax error becomes one positioned RulesetError.

    The common case goes through libyaml's C parser (`_fast_load`; ruamel's pure-Python parser was nearly all
    the time of loading a large table, see bench/loading.py) and builds the very containers ruamel's round-trip loader builds, positions included.
    Anything it does not handle exactly like ruamel — a syntax error, a repeated key, anchors and aliases,
    tags, merge keys, directives, integers other than plain decimals — is read again by ruamel, so errors,
    their messages and positions are ruamel's, as before.
    """
    data = _fast_load(text)
    if data is not _SLOW:
        return Source(file, text, data), []
    return _slow_load(file, text)


def _slow_load(file: str, text: str) -> tuple[Source | None, list[RulesetError]]:
    """The round-trip reader itself (the reference `_fast_load` must agree with)."""
    yaml = YAML(typ="rt")
    yaml.Constructor = _ExactConstructor
    data, errors = _parse(file, lambda: yaml.load(text))
    return (None, errors) if errors else (Source(file, text, data), [])


class _Slow(Exception):
    """Raised inside `_fast_load` for anything left to ruamel."""


_SLOW: Any = object()
_TAG = "tag:yaml.org,2002:"
# ruamel's YAML 1.2 implicit resolvers (rulesvc's files are read as YAML 1.2: `on`, `yes`, `no` are text)
_RESOLVERS_12: dict[str, list[tuple[str, Any]]] = {}
for _versions, _tag, _regexp, _first in implicit_resolvers:
    if (1, 2) in _versions:
        for _char in _first:
            _RESOLVERS_12.setdefault(_char, []).append((str(_tag), _regexp))
_PLAIN_INT = re.compile(r"[-+]?[1-9][0-9]*\Z")
_BOOLS = {"true": True, "false": False}


class _Resolver12(libyaml.resolver.BaseResolver):
    pass


_Resolver12.yaml_implicit_resolvers = _RESOLVERS_12


@cache
def _composer_class() -> Any:
    """libyaml's parser and composer, resolving plain scalars as YAML 1.2 like ruamel (None without libyaml)."""
    if _CParser is None:
        return None

    class FastComposer(_CParser, _Resolver12):
        def __init__(self, text: str) -> None:
            _CParser.__init__(self, text)
            _Resolver12.__init__(self)

    return FastComposer


_SCALARS = _ExactConstructor(loader=None)


def _fast_load(text: str) -> Any:
    """The document as ruamel's round-trip loader builds it (CommentedMap/CommentedSeq with line and column
    of every key, value and item), read by libyaml; `_SLOW` for anything left to ruamel."""
    composer_class = _composer_class()
    if composer_class is None or text.lstrip().startswith("%"):
        return _SLOW
    composer = composer_class(text)
    try:
        node = composer.get_single_node()
    except Exception:
        return _SLOW
    finally:
        composer.dispose()
    if node is None:
        return None
    try:
        # an alias needs an anchor (`&`): without one, no node can be met twice
        return _build(node, set() if "&" in text else None)
    except _Slow:
        return _SLOW


def _build(node: Any, seen: set[int] | None) -> Any:
    if seen is not None:
        if id(node) in seen:  # an alias
            raise _Slow
        seen.add(id(node))
    tag = node.tag
    if isinstance(node, libyaml.ScalarNode):
        value: str = node.value
        if tag == _TAG + "str":
            if node.style == "|":
                return LiteralScalarString(value)
            if node.style == ">":
                return FoldedScalarString(value)
            return value
        if tag == _TAG + "int":
            if _PLAIN_INT.match(value):
                return int(value)
            if value.lstrip("+-") == "0":  # ruamel keeps a leading zero's width
                return ScalarInt(0, width=1, underscore=None)
            raise _Slow
        if tag == _TAG + "null":
            if not value:  # ruamel places an empty value at the next token, libyaml does not
                raise _Slow
            return None
        if tag == _TAG + "bool" and value.lower() in _BOOLS:
            return _BOOLS[value.lower()]
        if tag == _TAG + "float":
            return _SCALARS.construct_yaml_float(ScalarNode(tag, value))
        if tag == _TAG + "timestamp":
            return _SCALARS.construct_yaml_timestamp(ScalarNode(tag, value))
        raise _Slow
    mark = node.start_mark
    if isinstance(node, libyaml.SequenceNode):
        if tag != _TAG + "seq":
            raise _Slow
        seq = CommentedSeq()
        items: dict[Any, Any] = {}
        for index, child in enumerate(node.value):
            seq.append(_build(child, seen))
            child_mark = child.start_mark
            items[index] = [child_mark.line, child_mark.column]
        setattr(seq, LineCol.attrib, _line_col(mark, items))
        return seq
    if tag != _TAG + "map":
        raise _Slow
    mapping = CommentedMap()
    keys: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, libyaml.ScalarNode):
            raise _Slow
        key = _build(key_node, seen)
        if key in keys:  # ruamel's duplicate-key error
            raise _Slow
        key_mark, value_mark = key_node.start_mark, value_node.start_mark
        keys[key] = [key_mark.line, key_mark.column, value_mark.line, value_mark.column]
        mapping[key] = _build(value_node, seen)
    setattr(mapping, LineCol.attrib, _line_col(mark, keys))
    return mapping


def _line_col(mark: Any, data: dict[Any, Any]) -> LineCol:
    """What ruamel's `lc` holds: the container's own line and column, and those of its keys, values, items."""
    line_col = LineCol()
    line_col.line, line_col.col = mark.line, mark.column
    line_col.data = data or None
    return line_col


def compose(file: str, text: str) -> tuple[Node | None, list[RulesetError]]:
    """The YAML node tree (every node marked with its position; repeated keys kept, for readers that
    report them themselves), or one positioned syntax error."""
    return _parse(file, lambda: YAML(typ="rt").compose(io.StringIO(text)))


def node_location(file: str, node: Node) -> Location:
    """Where a composed node starts, 1-based."""
    mark = node.start_mark
    return Location(file, mark.line + 1, mark.column + 1)


def plain(value: Any) -> Any:
    """ruamel containers → plain dicts/lists/str (for values handed to the runtime)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def closest(word: str, choices: Iterable[str], cutoff: float = 0.5) -> str | None:
    """The choice a misspelt `word` most likely meant, or None (every "did you mean" asks this)."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return match[0] if match else None


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """'did you mean X?' for a misspelt name, or None."""
    match = closest(word, choices)
    return f"是不是 {match!r}？" if match is not None else None


def unknown_name(
    code: str, message: str, where: Location, name: object, choices: Iterable[str], otherwise: str | None
) -> RulesetError:
    """An unknown name: the hint is "did you mean" the closest of `choices`, else `otherwise`."""
    return RulesetError(code, message, where, suggest(str(name), choices) or otherwise)


def unknown_keys(
    src: Source, node: Mapping[str, Any], allowed: Sequence[str], what: str
) -> list[RulesetError]:
    """One positioned error per key of `node` that is not in `allowed`, with a suggestion."""
    return [
        RulesetError(
            "unknown_key",
            f"{what}中有未知的键 {key!r}",
            src.key_loc(node, key),
            suggest(str(key), allowed),
        )
        for key in node
        if key not in allowed
    ]
