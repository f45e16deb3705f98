"""The rule language: the condition language (this docstring), rulesets, kinds and tables read from positioned YAML.

The condition language is split by job: `ast` (nodes), `parse` (lark, never eval; syntax errors explained),
`check` (types, authoring errors), `printer` (canonical text), `values` (exact decimals, datetimes,
durations). Evaluation is the engine's: `rulesvc.engine.closures` compiles an expression to closures and
explains a firing. This package never imports the engine.

Syntax (grammar in expr.lark, precedence loosest first: or < and < not < comparison < + - < * / % < unary -)::

    ticket.amount < 5000 and ticket.region == "上海浦东"
    ticket.applicant_rank >= "部门经理" and not 大额贷款
    ticket.kind in ["loan", "expense"] and event.occurred_at - ticket.created_at > 1.5h
    lower(ticket.email) endswith "@bank.cn" or len(ticket.tags) == 0

Literals: numbers (`5000`, `4999.99`, `1_000_000` → Decimal, never float), strings ("..." or '...', escapes
\\n \\t \\r \\\\ \\" \\' \\uXXXX; any other backslash is kept, so regexes like "\\d+" need no doubling),
`true` / `false` / `null`, durations (`30s`, `90m`, `1.5h`, `1d`, `1h30m`, `2小时` → timedelta), lists.
Names are Unicode (`大额贷款.金额`); keywords (and or not in contains startswith endswith matches true false
null) are reserved. A bare one-segment name declared as a derived fact is true iff the fact exists.
Comparisons are non-associative (`a < b < c` is a syntax error). Functions: len lower upper abs round.

Decision-table cells (`parse_cell`) are unary tests on an implicit subject bound later (`bind_subject`):
`-` or empty (always true), `上海浦东` / `A` / `5000` (equality; bare words are strings), `< 5000`, `!= x`,
`in [a, b]`, `not in [a, b]`, `contains x`, `[1000..5000)` / `(0..1000]` (intervals), `>= 1000 and < 5000`,
and `,` for "either": `上海浦东, 北京海淀`.

Evaluation (`rulesvc.engine.closures.compile_expr`), deliberately simple and never raising on data:

* Numbers are Decimal. Incoming int/float/numeric-string values on number fields are converted exactly
  (`Decimal(repr(float))`), so 4999.99 < 5000 and 0.1 + 0.2 == 0.3 hold. NaN/inf/bools are not numbers.
* Two-valued logic with "missing is false": every atomic test (comparison, in, contains, ...) whose operand
  is missing (absent root, absent field, null, wrong runtime type, failed arithmetic such as division by
  zero) is **False** — including `!=` and `not in`. `and` / `or` / `not` are then ordinary boolean logic,
  so `not (ticket.x == 5)` is True when x is missing while `ticket.x != 5` is False.
  The one exception: `x == null` is True iff x is missing, `x != null` iff present (the existence test);
  likewise `x in [null, "a"]` is True for a missing x.
* Arithmetic on a missing value or failing (÷0, type clash) yields missing, hence the comparison is False.
* Enum-typed fields compare by rank in the enum's declared order (low → high); a runtime value that is not
  a member makes every comparison on it False.
* Strings compare by equality only; ordering plain strings is a type error (declare an ordered enum).
* Datetime fields accept aware datetimes or ISO-8601 strings; naive values (and date-only literals such as
  "2026-10-01") are taken as Asia/Shanghai (UTC+8). datetime - datetime → duration; durations compare with
  durations; duration fields also accept seconds (number) or "90m"-style text.
* Arithmetic uses a private decimal context (34 significant digits), never the caller's.
* `matches` is `re.search` (anchor with ^...$ for a full match); `round(x, n)` rounds half up (四舍五入).
* In `and`/`or`/`not`, only the value True counts as true (a missing bool field is false).

`check()` reports every authoring error with stable codes: expr_syntax (parse only), unknown_field,
unknown_enum_value, type_mismatch, unknown_function, bad_call, bad_regex.
"""

from rulesvc.lang.ast import (
    FUNCTIONS,
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
    bind_subject,
    paths,
    walk,
)
from rulesvc.lang.check import FieldType, TypeEnv, check, infer_type
from rulesvc.lang.parse import parse_cell, parse_expression
from rulesvc.lang.printer import to_text

__all__ = [
    "FUNCTIONS",
    "KEYWORDS",
    "And",
    "BinOp",
    "Call",
    "Compare",
    "Const",
    "Expr",
    "ExpressionError",
    "FieldType",
    "ListExpr",
    "Neg",
    "Not",
    "Or",
    "Path",
    "Subject",
    "TypeEnv",
    "bind_subject",
    "check",
    "infer_type",
    "parse_cell",
    "parse_expression",
    "paths",
    "to_text",
    "walk",
]
