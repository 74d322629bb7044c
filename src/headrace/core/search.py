"""The run search language: a small, documented filter over params, metrics, tags and
attributes, parsed here into a tree the store compiles to SQL.

    metrics.auc > 0.8 AND params.model = 'lr'
    (tags.team = 'growth' OR tags.team = "ads") AND attributes.status != 'failed'
    params.optimizer IN ('adam', 'sgd') AND metrics.`val loss` <= 0.3
    tags.note LIKE '%baseline%'      attributes.name ILIKE 'Churn%'

A term is ``SCOPE.KEY OP VALUE``: scopes ``metrics`` (a run's latest value of the
metric; ``m`` for short), ``params`` (``p``), ``tags`` (``t``) and ``attributes``
(``a``: ``status``, ``name``, ``run_id``, ``experiment``, ``branch``, ``trigger``,
``parent_run_id``, ``created_at``, ``ended_at``). Operators: ``= != < <= > >=``,
``LIKE``/``ILIKE`` (``%`` and ``_`` wildcards), ``IN (...)``/``NOT IN (...)``,
``IS NULL``/``IS NOT NULL`` (the run has no such key). ``AND`` binds tighter than
``OR``; parentheses group. Keys with spaces or dots go in backquotes. Strings take
single or double quotes; numbers compare as numbers (a param holding ``0.01`` matches
``params.lr < 0.1``).

Ordering: ``metrics.auc DESC``, ``attributes.created_at`` (ascending by default);
several separated by commas. Runs without the key sort last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from headrace.errors import HeadraceError

SCOPES = {
    "metrics": "metrics",
    "metric": "metrics",
    "m": "metrics",
    "params": "params",
    "param": "params",
    "p": "params",
    "tags": "tags",
    "tag": "tags",
    "t": "tags",
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
    "a": "attributes",
}
ATTRIBUTES = (
    "status",
    "name",
    "run_id",
    "experiment",
    "branch",
    "trigger",
    "parent_run_id",
    "created_at",
    "ended_at",
)
OPERATORS = (
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "LIKE",
    "ILIKE",
    "IN",
    "NOT IN",
    "IS NULL",
    "IS NOT NULL",
)


class SearchSyntaxError(HeadraceError):
    """A filter or ordering does not parse: says where and what was expected."""


@dataclass(frozen=True)
class Term:
    scope: str  # metrics | params | tags | attributes
    key: str
    op: str
    value: Any = None  # a number, a string, a tuple of those, or None (IS [NOT] NULL)


@dataclass(frozen=True)
class All:
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class Order:
    scope: str
    key: str
    descending: bool


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.])
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.(?:`[^`]+`|[A-Za-z0-9_\-]+))*)
      | (?P<op><=|>=|!=|<>|==|=|<|>)
      | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            start = len(text) - len(text[position:].lstrip())
            raise SearchSyntaxError(
                f"cannot read {text[start : start + 20]!r} at position {start + 1} of the filter"
            )
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind), match.start(kind)))
        position = match.end()
    return out


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, str, int] | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def word(self, offset: int = 0) -> str:
        token = self.peek(offset)
        return token[1].upper() if token and token[0] == "ident" else ""

    def fail(self, expected: str) -> SearchSyntaxError:
        token = self.peek()
        where = f"{token[1]!r} at position {token[2] + 1}" if token else "the end"
        return SearchSyntaxError(f"expected {expected} but found {where} in {self.text!r}")

    def parse(self) -> Any:
        if not self.tokens:
            return None
        tree = self.any_of()
        if self.peek() is not None:
            raise self.fail("AND, OR or the end of the filter")
        return tree

    def any_of(self) -> Any:
        parts = [self.all_of()]
        while self.word() == "OR":
            self.i += 1
            parts.append(self.all_of())
        return parts[0] if len(parts) == 1 else AnyOf(tuple(parts))

    def all_of(self) -> Any:
        parts = [self.term()]
        while self.word() == "AND":
            self.i += 1
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else All(tuple(parts))

    def term(self) -> Any:
        token = self.peek()
        if token is not None and token[1] == "(":
            self.i += 1
            inner = self.any_of()
            closing = self.peek()
            if closing is None or closing[1] != ")":
                raise self.fail("')'")
            self.i += 1
            return inner
        scope, key = self.key()
        op = self.operator(scope, key)
        if op in ("IS NULL", "IS NOT NULL"):
            return Term(scope, key, op)
        if op in ("IN", "NOT IN"):
            return Term(scope, key, op, self.values())
        value = self.value()
        if op in ("LIKE", "ILIKE") and not isinstance(value, str):
            raise SearchSyntaxError(f"{op} needs a quoted pattern, in {self.text!r}")
        if scope == "metrics" and not isinstance(value, int | float):
            raise SearchSyntaxError(
                f"metrics.{key} compares with numbers; {value!r} is not one ({self.text!r})"
            )
        return Term(scope, key, op, value)

    def key(self) -> tuple[str, str]:
        token = self.peek()
        if token is None or token[0] != "ident" or "." not in token[1]:
            raise self.fail("a key such as metrics.auc, params.lr, tags.team or attributes.status")
        self.i += 1
        return parse_key(token[1])

    def operator(self, scope: str, key: str) -> str:
        token = self.peek()
        if token is not None and token[0] == "op":
            self.i += 1
            return {"==": "=", "<>": "!="}.get(token[1], token[1])
        word = self.word()
        if word in ("LIKE", "ILIKE", "IN"):
            self.i += 1
            return word
        if word == "NOT" and self.word(1) == "IN":
            self.i += 2
            return "NOT IN"
        if word == "IS":
            if self.word(1) == "NULL":
                self.i += 2
                return "IS NULL"
            if self.word(1) == "NOT" and self.word(2) == "NULL":
                self.i += 3
                return "IS NOT NULL"
        raise self.fail(f"an operator after {scope}.{key} ({', '.join(OPERATORS)})")

    def value(self) -> Any:
        token = self.peek()
        if token is None:
            raise self.fail("a value")
        kind, text, _ = token
        if kind == "number":
            self.i += 1
            number = float(text)
            return (
                int(number)
                if number.is_integer() and "." not in text and "e" not in text.lower()
                else number
            )
        if kind == "string":
            self.i += 1
            return _unquote(text)
        raise self.fail("a number or a quoted string")

    def values(self) -> tuple[Any, ...]:
        token = self.peek()
        if token is None or token[1] != "(":
            raise self.fail("'(' and a list of values")
        self.i += 1
        items = [self.value()]
        while (token := self.peek()) is not None and token[1] == ",":
            self.i += 1
            items.append(self.value())
        if token is None or token[1] != ")":
            raise self.fail("',' or ')'")
        self.i += 1
        return tuple(items)


def parse_key(text: str) -> tuple[str, str]:
    """``metrics.auc`` → ("metrics", "auc"); refuses unknown scopes and attributes."""
    head, _, key = text.partition(".")
    scope = SCOPES.get(head.lower())
    if scope is None or not key:
        raise SearchSyntaxError(
            f"{text!r} is not a key: expected metrics.NAME, params.NAME, tags.NAME or "
            "attributes.NAME"
        )
    if key.startswith("`") and key.endswith("`"):
        key = key[1:-1]
    if scope == "attributes":
        key = {
            "start_time": "created_at",
            "end_time": "ended_at",
            "id": "run_id",
            "run_name": "name",
        }.get(key, key)
        if key not in ATTRIBUTES:
            from headrace.core.graph import suggest

            raise SearchSyntaxError(
                f"unknown attribute {key!r}{suggest(key, ATTRIBUTES)}; "
                f"known: {', '.join(ATTRIBUTES)}"
            )
    return scope, key


def parse_filter(text: str | None) -> Any:
    """The filter's tree (``Term``, ``All``, ``AnyOf``), or None for no filter."""
    if text is None or not text.strip():
        return None
    return _Parser(text).parse()


def parse_order(text: str | None) -> list[Order]:
    """``"metrics.auc DESC, attributes.created_at"`` → orderings."""
    if text is None or not text.strip():
        return []
    out = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2:
            raise SearchSyntaxError(f"cannot order by {part.strip()!r}: expected KEY [ASC|DESC]")
        direction = words[1].upper() if len(words) == 2 else "ASC"
        if direction not in ("ASC", "DESC"):
            raise SearchSyntaxError(f"order direction {words[1]!r}: expected ASC or DESC")
        scope, key = parse_key(words[0])
        out.append(Order(scope, key, direction == "DESC"))
    return out
