"""Parsing the condition language (lark, LALR, never eval) into the AST, with syntax errors explained.

Grammar in expr.lark; semantics in the package docstring (`rulesvc.lang`). A syntax error is one positioned
`expr_syntax` RulesetError naming what the parser expected next, with hints for the usual slips: `=` for `==`,
`&&`, full-width punctuation from a Chinese input method, chained comparisons, durations without a unit.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path as FilePath
from typing import Final

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from rulesvc.errors import Location, RulesetError
from rulesvc.lang.ast import (
    KEYWORDS,
    And,
    BinOp,
    Call,
    Compare,
    Const,
    Expr,
    ExpressionError,
    ListExpr,
    Neg,
    Not,
    Or,
    Path,
    Subject,
    literal_value,
)
from rulesvc.lang.printer import to_text
from rulesvc.lang.values import duration_literal


@cache
def _lark() -> Lark:
    grammar = FilePath(__file__).with_name("expr.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="basic", start=["expression", "cell"], maybe_placeholders=False)


def parse_expression(text: str, location: Location) -> Expr:
    """Parse a condition or value expression; raises ExpressionError positioned at the offending character."""
    if not text.strip():
        raise _syntax_error("表达式为空", location, 1, 1, "请写一个条件，如 ticket.amount < 5000")
    tree = _parse(text, "expression", location)
    try:
        return _Builder(location).expr(tree)
    except RecursionError:
        raise _syntax_error("表达式嵌套太深", location, 1, 1, None) from None


def parse_cell(text: str, location: Location) -> Expr:
    """Parse a decision-table cell into an expression over `Subject()`; `-` or empty → Const(True)."""
    stripped = text.strip()
    if stripped in ("", "-"):
        return Const(True, line=1, col=1)
    cell = _CELLS.get(text)
    if cell is None:
        cell = _Builder(location).cell(_parse(text, "cell", location))
        if len(_CELLS) >= _CELLS_KEPT:
            _CELLS.clear()
        _CELLS[text] = cell
    return cell


# Cells parsed, by text: a table repeats the same few cells row after row, and a parsed cell does not depend
# on where it stands (its location only positions errors, and a cell with an error is never kept).
_CELLS: dict[str, Expr] = {}
_CELLS_KEPT: Final = 20_000


def _parse(text: str, start: str, location: Location) -> Tree[Token]:
    try:
        return _lark().parse(text, start=start)
    except UnexpectedInput as exc:
        raise _explain_syntax_error(text, start, exc, location) from None


def _syntax_error(message: str, location: Location, line: int, col: int, hint: str | None) -> ExpressionError:
    return ExpressionError([RulesetError("expr_syntax", message, location.shifted(line - 1, col), hint)])


_VALUE_TERMINALS: Final = frozenset(
    {"NUMBER", "DURATION", "STRING", "NAME", "TRUE", "FALSE", "NULL", "LSQB", "LPAR", "MINUS"}
)
_TEST_TERMINALS: Final = frozenset({"COMP_OP", "IN", "CONTAINS", "STARTSWITH", "ENDSWITH", "MATCHES"})
_ARITH_TERMINALS: Final = frozenset({"PLUS", "MINUS", "STAR", "SLASH", "PERCENT"})
_OPERATOR_TERMINALS: Final = _TEST_TERMINALS | _ARITH_TERMINALS | {"AND", "OR", "NOT", "COMMA", "DOTDOT"}
_FULL_WIDTH: Final = {
    "“": '"',
    "”": '"',
    "‘": "'",
    "’": "'",
    "、": ",",
    "。": ".",
    "　": " ",
    "【": "[",
    "】": "]",
}


def _describe_expected(expected: set[str]) -> str:
    words: list[str] = []
    rest = set(expected)
    if {"NUMBER", "STRING"} <= rest:
        words.append('一个值（数字、"文本"、字段名、[列表] 或 (...)）')
        rest -= _VALUE_TERMINALS
    elif "NAME" in rest and rest <= {"NAME"}:
        words.append("字段名")
        rest.discard("NAME")
    if "COMP_OP" in rest:
        words.append("比较运算（== != < <= > >= in contains ...）")
        rest -= _TEST_TERMINALS | {"NOT"}
    if {"PLUS", "STAR"} <= rest:
        words.append("算术运算符（+ - * / %）")
        rest -= _ARITH_TERMINALS
    named = {
        "AND": "'and'",
        "OR": "'or'",
        "NOT": "'not'",
        "IN": "'in'",
        "RPAR": "')'",
        "RSQB": "']'",
        "LPAR": "'('",
        "LSQB": "'['",
        "COMMA": "','",
        "DOT": "'.'",
        "DOTDOT": "'..'",
        "NAME": "字段名",
        "NUMBER": "数字",
        "STRING": '"文本"',
        "DURATION": "时长（90m、2h、1d）",
        "MINUS": "'-'",
        "$END": "表达式结束",
    }
    order = list(named)
    for name in sorted(rest, key=lambda n: order.index(n) if n in order else len(order)):
        words.append(named.get(name, name.lower()))
    if not words:
        return "不再有内容"
    if len(words) == 1:
        return words[0]
    return "、".join(words[:-1]) + " 或 " + words[-1]


def _end_position(text: str) -> tuple[int, int]:
    """Line/col just after the last non-blank character."""
    body = text.rstrip()
    line = body.count("\n") + 1
    col = len(body) - (body.rfind("\n") + 1) + 1
    return line, col


def _accepted(text: str, start: str, upto: int) -> tuple[set[str], Token | None]:
    """Terminals the parser accepts after text[:upto], and the last token before that point."""
    try:
        parser = _lark().parse_interactive(text[:upto], start=start)
        last: Token | None = None
        for token in parser.iter_parse():
            last = token
        return set(parser.accepts()), last  # type: ignore[no-untyped-call]
    except UnexpectedInput:
        return set(), None


def _explain_syntax_error(text: str, start: str, exc: UnexpectedInput, location: Location) -> ExpressionError:
    if isinstance(exc, UnexpectedCharacters):
        line, col, index = exc.line, exc.column, exc.pos_in_stream
        char = text[index] if index is not None and index < len(text) else ""
        expected, prev = _accepted(text, start, index if index is not None else len(text))
        hint = "此处应为" + _describe_expected(expected) if expected else None
        if char in "\"'":
            return _syntax_error("字符串没有结束", location, line, col, f"请在同一行用 {char} 结束它")
        if char == "=":
            return _syntax_error("多余的 '='", location, line, col, "比较请用 '=='")
        if char in "&|":
            return _syntax_error(f"多余的 '{char}'", location, line, col, "请用 and / or")
        if char == "!":
            return _syntax_error("多余的 '!'", location, line, col, "请用 not 或 !=")
        ascii_char = _FULL_WIDTH.get(char) or (
            chr(ord(char) - 0xFEE0) if "\uff01" <= char <= "\uff5e" else None
        )
        if ascii_char:
            return _syntax_error(
                f"出现了全角字符 '{char}'",
                location,
                line,
                col,
                f"请改用半角的 '{ascii_char}'（把输入法切换到半角）",
            )
        if prev is not None and prev.type in _OPERATOR_TERMINALS and expected & _VALUE_TERMINALS:
            return _syntax_error(f"'{prev}' 后面应有一个值", location, line, col, hint)
        return _syntax_error(f"多余的字符 '{char}'", location, line, col, hint)
    assert isinstance(exc, UnexpectedToken)
    token = exc.token
    at_end = token.type == "$END"
    if at_end:
        line, col = _end_position(text)
        upto = len(text)
    else:
        line, col = token.line or 1, token.column or 1
        upto = token.start_pos if token.start_pos is not None else len(text)
    expected, prev = _accepted(text, start, upto)
    if not expected:
        expected = set(exc.expected)
    hint = "此处应为" + _describe_expected(expected)
    if (
        prev is not None
        and prev.type in _OPERATOR_TERMINALS | {"LPAR", "LSQB"}
        and expected & _VALUE_TERMINALS
        and token.type not in _VALUE_TERMINALS
    ):
        if token.type in KEYWORD_TERMINALS:
            return _syntax_error(f"'{token}' 是保留字，不是值", location, line, col, "如果指文本，请加引号")
        return _syntax_error(f"'{prev}' 后面应有一个值", location, line, col, hint)
    if prev is not None and prev.type == "DOT":
        if token.type in KEYWORD_TERMINALS:
            return _syntax_error(f"'{token}' 是保留字", location, line, col, "字段名不能是关键字")
        return _syntax_error("'.' 后面应是字段名", location, line, col, None)
    if at_end:
        if {"RPAR", "RSQB"} <= expected and "$END" not in expected:
            return _syntax_error("缺少 ']' 或 ')'", location, line, col, hint)
        if "RPAR" in expected and "$END" not in expected:
            return _syntax_error("缺少 ')'", location, line, col, hint)
        if "RSQB" in expected and "$END" not in expected:
            return _syntax_error("缺少 ']'", location, line, col, hint)
        return _syntax_error("表达式意外结束", location, line, col, hint)
    if token.type in _TEST_TERMINALS and "COMP_OP" not in expected and prev is not None:
        hint = "比较不能连写；请用 and 连接"
    elif (
        token.type == "NAME"
        and prev is not None
        and prev.type == "NUMBER"
        and prev.end_pos == token.start_pos
    ):
        hint = "时长的单位是 d、h、m、s（如 90m、1.5h、1d）"
    return _syntax_error(f"多余的 '{token}'", location, line, col, hint)


KEYWORD_TERMINALS: Final = frozenset(k.upper() for k in KEYWORDS)

_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}
_ESCAPE_RE: Final = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)


def _unescape(body: str) -> str:
    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if len(code) == 5:
            return chr(int(code[1:], 16))
        return _ESCAPES.get(code, "\\" + code)

    return _ESCAPE_RE.sub(replace, body)


class _Builder:
    """Lark tree → AST with positions; rejects what the grammar cannot (oversized durations, empty intervals)."""

    def __init__(self, location: Location) -> None:
        self.location = location

    def fail(self, message: str, token: Token, hint: str | None = None) -> ExpressionError:
        return _syntax_error(message, self.location, token.line or 1, token.column or 1, hint)

    def expr(self, node: Tree[Token] | Token) -> Expr:
        if isinstance(node, Token):  # pragma: no cover - every atom is wrapped in a rule
            raise self.fail(f"多余的 '{node}'", node)
        kind = str(node.data)
        kids = node.children
        if kind in ("or_test", "and_test"):
            items: list[Expr] = []
            cls: type[And] | type[Or] = Or if kind == "or_test" else And
            for kid in kids:
                if isinstance(kid, Token):
                    continue
                sub = self.expr(kid)
                items.extend(sub.items if isinstance(sub, cls) else (sub,))
            return cls(tuple(items), line=items[0].line, col=items[0].col)
        if kind == "not_":
            op = _tok(kids[0])
            return Not(self.expr(kids[1]), line=op.line or 1, col=op.column or 1)
        if kind == "compare":
            left, right = self.expr(kids[0]), self.expr(kids[-1])
            ops = kids[1:-1]
            if len(ops) == 2:  # NOT IN
                first = _tok(ops[0])
                return Compare("not in", left, right, line=first.line or 1, col=first.column or 1)
            op_node = ops[0]
            first = _tok(op_node.children[0]) if isinstance(op_node, Tree) else op_node
            return Compare(str(first), left, right, line=first.line or 1, col=first.column or 1)
        if kind == "binop":
            op = _tok(kids[1])
            return BinOp(
                str(op), self.expr(kids[0]), self.expr(kids[2]), line=op.line or 1, col=op.column or 1
            )
        if kind == "neg":
            op = _tok(kids[0])
            return Neg(self.expr(kids[1]), line=op.line or 1, col=op.column or 1)
        if kind == "group":
            return self.expr(kids[1])
        if kind == "literal":
            return self.literal(_tok(kids[0]))
        if kind == "path":
            names = [_tok(k) for k in kids if isinstance(k, Token) and k.type == "NAME"]
            first = names[0]
            return Path(tuple(str(n) for n in names), line=first.line or 1, col=first.column or 1)
        if kind == "call":
            name = _tok(kids[0])
            return Call(str(name), self.args(kids), line=name.line or 1, col=name.column or 1)
        if kind == "list":
            bracket = _tok(kids[0])
            return ListExpr(self.args(kids), line=bracket.line or 1, col=bracket.column or 1)
        raise AssertionError(f"unknown tree {kind}")  # pragma: no cover

    def args(self, kids: list[Tree[Token] | Token]) -> tuple[Expr, ...]:
        for kid in kids:
            if isinstance(kid, Tree) and kid.data == "args":
                return tuple(self.expr(a) for a in kid.children if isinstance(a, Tree))
        return ()

    def literal(self, token: Token) -> Const:
        text = str(token)
        line, col = token.line or 1, token.column or 1
        if token.type == "NUMBER":
            return Const(Decimal(text.replace("_", "")), line=line, col=col)
        if token.type == "DURATION":
            value = duration_literal(text)
            if value is None:
                raise self.fail(f"时长 {text} 太大", token)
            return Const(value, line=line, col=col)
        if token.type == "STRING":
            return Const(_unescape(text[1:-1]), line=line, col=col)
        if token.type == "TRUE":
            return Const(True, line=line, col=col)
        if token.type == "FALSE":
            return Const(False, line=line, col=col)
        return Const(None, line=line, col=col)

    # cells ------------------------------------------------------------------------------------------

    def cell(self, tree: Tree[Token]) -> Expr:
        alternatives: list[Expr] = []
        for conj in tree.children:
            if not isinstance(conj, Tree):
                continue
            tests: list[Expr] = []
            for test in conj.children:
                if isinstance(test, Tree):
                    sub = self.cell_test(test)
                    tests.extend(sub.items if isinstance(sub, And) else (sub,))
            alternatives.append(
                tests[0] if len(tests) == 1 else And(tuple(tests), line=tests[0].line, col=tests[0].col)
            )
        flat: list[Expr] = []
        for alt in alternatives:
            flat.extend(alt.items if isinstance(alt, Or) else (alt,))
        return flat[0] if len(flat) == 1 else Or(tuple(flat), line=flat[0].line, col=flat[0].col)

    def cell_test(self, test: Tree[Token]) -> Expr:
        kind = str(test.data)
        kids = test.children
        first = _first_token(test)
        subject = Subject(line=first.line or 1, col=first.column or 1)
        at = {"line": first.line or 1, "col": first.column or 1}
        if kind == "cell_eq":
            return Compare("==", subject, self.cell_value(kids[0]), **at)
        if kind == "cell_cmp":
            op_node = kids[0]
            op = _tok(op_node.children[0]) if isinstance(op_node, Tree) else _tok(op_node)
            return Compare(str(op), subject, self.cell_value(kids[1]), **at)
        if kind == "cell_in":
            negated = len(kids) == 3
            items = tuple(self.cell_value(v) for v in kids[-1].children if isinstance(v, Tree))  # type: ignore[union-attr]
            return Compare("not in" if negated else "in", subject, ListExpr(items, **at), **at)
        if kind == "cell_interval":
            opening, low_node, _, high_node, closing = kids
            low_op = ">=" if _tok(opening).type == "LSQB" else ">"
            high_op = "<=" if _tok(closing).type == "RSQB" else "<"
            close_tok = _tok(closing)
            low, high = self.cell_value(low_node), self.cell_value(high_node)
            (_, low_value), (_, high_value) = literal_value(low), literal_value(high)
            comparable = (isinstance(low_value, Decimal) and isinstance(high_value, Decimal)) or (
                isinstance(low_value, timedelta) and isinstance(high_value, timedelta)
            )
            if comparable and (
                low_value > high_value or (low_value == high_value and (low_op, high_op) != (">=", "<="))
            ):
                raise _syntax_error(
                    f"空区间：{to_text(low)} 与 {to_text(high)} 之间没有任何值",
                    self.location,
                    at["line"],
                    at["col"],
                    "下限写在前面，如 [1000..5000)",
                )
            return And(
                (
                    Compare(low_op, subject, low, **at),
                    Compare(high_op, subject, high, line=close_tok.line or 1, col=close_tok.column or 1),
                ),
                **at,
            )
        raise AssertionError(f"unknown cell tree {kind}")  # pragma: no cover

    def cell_value(self, node: Tree[Token] | Token) -> Expr:
        assert isinstance(node, Tree)
        kind = str(node.data)
        if kind == "cell_value":
            return self.cell_value(node.children[0])
        if kind == "literal":
            return self.literal(_tok(node.children[0]))
        if kind == "cell_negative":  # folded: a cell `-5` is the constant -5 (table analysis needs constants)
            minus = _tok(node.children[0])
            value = self.literal(_tok(node.children[1])).value
            assert isinstance(value, Decimal | timedelta)
            return Const(-value, line=minus.line or 1, col=minus.column or 1)
        word = _tok(node.children[0])  # cell_word: a bare word is a string
        return Const(str(word), line=word.line or 1, col=word.column or 1)


def _tok(node: Tree[Token] | Token) -> Token:
    assert isinstance(node, Token)
    return node


def _first_token(tree: Tree[Token]) -> Token:
    for kid in tree.children:
        if isinstance(kid, Token):
            return kid
        return _first_token(kid)
    raise AssertionError("empty tree")  # pragma: no cover
