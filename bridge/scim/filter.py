"""The SCIM filter language (RFC 7644 §3.4.2.2): syntax tree, tokenizer and parser.

:func:`parse_filter` turns the text of a ``filter`` query parameter (or a PATCH value
filter) into a tree of frozen dataclasses, refusing filters past the size limits below;
:func:`indexed_equalities` reads from a tree which index lookups can answer it.
Evaluating a tree against resources lives in :mod:`bridge.scim.filter_eval`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, TypeAlias

from bridge.scim.errors import InvalidFilter

CompareOp = Literal["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
"""Comparison operators of RFC 7644 §3.4.2.2 Table 3; ``pr`` is parsed separately."""

OPERATORS: dict[str, CompareOp] = {
    op: op for op in ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le")
}
"""Each comparison operator by its lower-case spelling (operators are case-insensitive)."""

MAX_FILTER_LENGTH = 8192
"""Longest filter text accepted, in characters. Entra's filters are one comparison; a
hundred comparisons on ids fit in half of this. Bounds tokenizing time and memory."""

MAX_FILTER_DEPTH = 16
"""Deepest nesting of ``(...)``, ``not (...)`` and ``[...]`` groups accepted. With the
and/or chains built balanced, it bounds the depth of every filter tree, so evaluating an
accepted filter never comes near Python's recursion limit."""

MAX_FILTER_TERMS = 100
"""Most comparisons (``attr op value``, ``attr pr``) one filter may hold: evaluation costs
this many tests per resource scanned."""

Value: TypeAlias = str | int | float | bool | None


@dataclass(frozen=True)
class AttrPath:
    """``[URI ":"] ATTRNAME ["." subAttr]`` as written in the filter."""

    urn: str | None
    attr: str
    sub_attr: str | None

    def __str__(self) -> str:
        text = f"{self.urn}:{self.attr}" if self.urn else self.attr
        return f"{text}.{self.sub_attr}" if self.sub_attr else text


@dataclass(frozen=True)
class Comparison:
    """``path op value``; ``op`` is lower-case."""

    path: AttrPath
    op: CompareOp
    value: Value


@dataclass(frozen=True)
class Present:
    """``path pr``."""

    path: AttrPath


@dataclass(frozen=True)
class And:
    """``left and right``."""

    left: Filter
    right: Filter


@dataclass(frozen=True)
class Or:
    """``left or right``."""

    left: Filter
    right: Filter


@dataclass(frozen=True)
class Not:
    """``not (inner)``."""

    inner: Filter


@dataclass(frozen=True)
class ValuePath:
    """``path[filter]``: inner paths name sub-attributes of ``path``'s elements."""

    path: AttrPath
    filter: Filter


Filter: TypeAlias = Comparison | Present | And | Or | Not | ValuePath

# --- Parsing ------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<punct>[()\[\]])
      | (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<badstring>")
      | (?P<word>[^\s()\[\]"]+)
    )""",
    re.VERBOSE | re.DOTALL,
)
_NAME = r"(?:\$ref|[A-Za-z][A-Za-z0-9_-]*)"
_PATH = re.compile(rf"^(?P<attr>{_NAME})(?:\.(?P<sub>{_NAME}))?$")
_URN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
_NUMBER = re.compile(r"^-?(?:0|[1-9][0-9]*)(?P<real>(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)$")


@dataclass(frozen=True)
class _Token:
    """One lexeme of a filter, with where it starts (for error messages)."""

    kind: str  # "punct", "string" or "word"
    text: str
    pos: int

    def is_word(self, *words: str) -> bool:
        """Whether this is a bare word equal to one of ``words`` (lower-case), any case."""
        return self.kind == "word" and self.text.lower() in words


def _tokenize(text: str) -> Iterator[_Token]:
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # only trailing whitespace is left
            return
        kind = m.lastgroup or ""
        if kind == "badstring":
            raise InvalidFilter(f"unterminated string starting at position {m.start(kind)}")
        yield _Token(kind, m.group(kind), m.start(kind))
        pos = m.end()


def parse_attr_path(text: str) -> AttrPath:
    """Parse ``attr``, ``attr.sub`` or ``urn:...:attr[.sub]`` (RFC 7644 §3.10 attrPath)."""
    urn, sep, rest = text.rpartition(":")
    m = _PATH.match(rest)
    if m is None or (sep and not _URN.match(urn)):
        raise InvalidFilter(f"invalid attribute path {text!r}")
    return AttrPath(urn or None, m["attr"], m["sub"])


def parse_filter(text: str) -> Filter:
    """Parse a filter expression (RFC 7644 §3.4.2.2 Figure 1); raise InvalidFilter.

    Filters longer than MAX_FILTER_LENGTH, nested deeper than MAX_FILTER_DEPTH or with more
    than MAX_FILTER_TERMS comparisons are refused: "the specified ... filter comparison
    combination is not supported" (RFC 7644 §3.12, invalidFilter).
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidFilter("empty filter")
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidFilter(f"the filter is longer than {MAX_FILTER_LENGTH} characters")
    return _Parser(text).parse()


def _balanced(kind: type[And] | type[Or], nodes: list[Filter]) -> Filter:
    """``a and b and c ...`` as a tree of depth log2(n); and/or are associative, and
    splitting left-heavy keeps ``a and b and c`` the left-nested ``(a and b) and c``."""
    if len(nodes) == 1:
        return nodes[0]
    mid = (len(nodes) + 1) // 2
    return kind(_balanced(kind, nodes[:mid]), _balanced(kind, nodes[mid:]))


class _Parser:
    """Recursive descent; precedence ``not`` > ``and`` > ``or`` (RFC 7644 §3.4.2.2)."""

    def __init__(self, text: str) -> None:
        self.tokens = list(_tokenize(text))
        self.i = 0
        self.end = len(text)
        self.depth = 0
        self.terms = 0

    def parse(self) -> Filter:
        """The whole filter's tree; anything left over is a syntax error."""
        node = self._or(in_brackets=False)
        if (tok := self._peek()) is not None:
            raise InvalidFilter(f"unexpected {tok.text!r} at position {tok.pos}")
        return node

    def _peek(self, ahead: int = 0) -> _Token | None:
        i = self.i + ahead
        return self.tokens[i] if i < len(self.tokens) else None

    def _next(self, expected: str) -> _Token:
        tok = self._peek()
        if tok is None:
            raise InvalidFilter(f"expected {expected} at position {self.end}, found end of filter")
        self.i += 1
        return tok

    def _expect(self, punct: str) -> None:
        tok = self._next(repr(punct))
        if tok.kind != "punct" or tok.text != punct:
            raise InvalidFilter(f"expected {punct!r} at position {tok.pos}, found {tok.text!r}")

    def _or(self, in_brackets: bool) -> Filter:
        nodes = [self._and(in_brackets)]
        while (tok := self._peek()) is not None and tok.is_word("or"):
            self.i += 1
            nodes.append(self._and(in_brackets))
        return _balanced(Or, nodes)

    def _and(self, in_brackets: bool) -> Filter:
        nodes = [self._unary(in_brackets)]
        while (tok := self._peek()) is not None and tok.is_word("and"):
            self.i += 1
            nodes.append(self._unary(in_brackets))
        return _balanced(And, nodes)

    def _enter(self, tok: _Token) -> None:
        """Open a nested group; refuse one deeper than MAX_FILTER_DEPTH."""
        self.depth += 1
        if self.depth > MAX_FILTER_DEPTH:
            raise InvalidFilter(
                f"the filter nests deeper than {MAX_FILTER_DEPTH} levels at position {tok.pos}"
            )

    def _unary(self, in_brackets: bool) -> Filter:
        tok = self._next("an attribute, 'not' or '('")
        after = self._peek()
        if tok.is_word("not") and after is not None and after.text == "(":
            return Not(self._group(in_brackets))
        if tok.kind == "punct" and tok.text == "(":
            self.i -= 1
            return self._group(in_brackets)
        if tok.kind != "word" or tok.is_word("and", "or"):
            raise InvalidFilter(f"expected an attribute at position {tok.pos}, found {tok.text!r}")
        path = self._path(tok)
        if after is not None and after.text == "[":
            if in_brackets:
                raise InvalidFilter(f"nested value filter at position {after.pos}")
            self.i += 1
            self._enter(after)
            inner = self._or(in_brackets=True)
            self._expect("]")
            self.depth -= 1
            sub = self._peek()
            if sub is not None and sub.kind == "word" and sub.text.startswith("."):
                # Entra matches on 'emails[type eq "work"].value eq "…"', which the RFC's
                # grammar lacks: an element that passes the filter and whose sub-attribute
                # passes the comparison.
                self.i += 1
                name = sub.text[1:]
                if not re.fullmatch(_NAME, name):
                    raise InvalidFilter(f"invalid sub-attribute {sub.text!r} at position {sub.pos}")
                return ValuePath(path, And(inner, self._comparison(AttrPath(None, name, None))))
            return ValuePath(path, inner)
        return self._comparison(path)

    def _group(self, in_brackets: bool) -> Filter:
        opening = self._peek()
        self._expect("(")
        assert opening is not None
        self._enter(opening)
        node = self._or(in_brackets)
        self._expect(")")
        self.depth -= 1
        return node

    def _path(self, tok: _Token) -> AttrPath:
        try:
            return parse_attr_path(tok.text)
        except InvalidFilter:
            raise InvalidFilter(
                f"invalid attribute path {tok.text!r} at position {tok.pos}"
            ) from None

    def _comparison(self, path: AttrPath) -> Filter:
        self.terms += 1
        if self.terms > MAX_FILTER_TERMS:
            raise InvalidFilter(f"the filter has more than {MAX_FILTER_TERMS} comparisons")
        tok = self._next(f"an operator after {str(path)!r}")
        if tok.kind == "word" and tok.text.lower() == "pr":
            return Present(path)
        op = OPERATORS.get(tok.text.lower()) if tok.kind == "word" else None
        if op is None:
            raise InvalidFilter(f"unknown operator {tok.text!r} at position {tok.pos}")
        value = self._value(self._next(f"a value after {tok.text!r}"))
        if value is None and op not in ("eq", "ne"):
            raise InvalidFilter(f"null can only be compared with 'eq' or 'ne', not {tok.text!r}")
        return Comparison(path, op, value)

    def _value(self, tok: _Token) -> Value:
        """compValue = false / null / true / number / string (RFC 7644 §3.4.2.2)."""
        if tok.kind == "string":
            try:
                text: str = json.loads(tok.text)  # the token is a JSON string literal
            except ValueError:
                raise InvalidFilter(f"invalid string at position {tok.pos}: {tok.text}") from None
            return text
        literal = tok.text.lower()
        if tok.kind == "word" and literal in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[literal]
        if tok.kind == "word" and (m := _NUMBER.match(tok.text)):
            return float(tok.text) if m["real"] else int(tok.text)
        raise InvalidFilter(
            f"invalid value {tok.text!r} at position {tok.pos}: "
            "expected a quoted string, number, true, false or null"
        )


# --- Analysis ----------------------------------------------------------------------------


def indexed_equalities(node: Filter) -> list[tuple[AttrPath, object]]:
    """``(path, value)`` equalities every match must satisfy, for picking index candidates.

    Only ``eq`` comparisons (with a non-null value) joined by ``and`` qualify; anything
    under ``or`` or ``not`` gives nothing.
    """
    if isinstance(node, Comparison) and node.op == "eq" and node.value is not None:
        return [(node.path, node.value)]
    if isinstance(node, And):
        return indexed_equalities(node.left) + indexed_equalities(node.right)
    if isinstance(node, ValuePath):
        # emails[type eq "work" and value eq "x"] needs emails.value eq "x"
        return [
            (AttrPath(node.path.urn, node.path.attr, inner.attr), value)
            for inner, value in indexed_equalities(node.filter)
            if inner.urn is None and inner.sub_attr is None
        ]
    return []
