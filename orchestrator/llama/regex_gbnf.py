"""A JSON Schema ``pattern`` (a regular expression) as a GBNF expression for llama.cpp.

The pattern is parsed by Python's own regular-expression parser (``re._parser``, the one
``re.compile`` uses, also relied on by hypothesis' ``from_regex``), so escapes, classes,
groups and quantifiers are read exactly as ``re`` reads them; only the tree is translated here.
The expression generates the *contents* of a JSON string (between the quotes), JSON-escaped,
and only strings the pattern matches:

- ``^``/``$`` (``\\A``/``\\Z``) at the edges are dropped: the whole string is the match.
  An unanchored pattern is generated as a whole-string match too (a subset of what it allows).
- ``\\d``, ``\\w``, ``\\s`` are their ASCII sets, as in JSON Schema's ECMA-262 dialect; a
  negated class that involves them (``\\W``, ``[^\\w]``) stays within ASCII, so the value also
  matches under Python's Unicode reading of the same pattern.
- Wide classes (``.``, ``[^a]``) leave out ``"``, ``\\`` and control characters, which JSON
  would have to escape; a class that lists one explicitly (``["]``) emits its JSON escape.

What a grammar cannot express (look-around, backreferences, word boundaries, conditionals,
atomic groups, possessive quantifiers, inline flags, anchors mid-pattern) is a
:class:`PatternError` naming the construct.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, NoReturn

from orchestrator.llama.gbnf import gbnf_literal

if TYPE_CHECKING:
    import sre_parse as _parser
else:
    from re import _parser

Ranges = list[tuple[int, int]]

_MAX_CODEPOINT = 0x10FFFF
_ASCII: Ranges = [(0, 0x7F)]
_UNSAFE: Ranges = [(0, 0x1F), (ord('"'), ord('"')), (ord("\\"), ord("\\"))]
_DIGIT: Ranges = [(0x30, 0x39)]
_WORD: Ranges = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_SPACE: Ranges = [(0x09, 0x0D), (0x20, 0x20)]
_CATEGORIES: dict[str, tuple[Ranges, bool]] = {
    "CATEGORY_DIGIT": (_DIGIT, False),
    "CATEGORY_NOT_DIGIT": (_DIGIT, True),
    "CATEGORY_WORD": (_WORD, False),
    "CATEGORY_NOT_WORD": (_WORD, True),
    "CATEGORY_SPACE": (_SPACE, False),
    "CATEGORY_NOT_SPACE": (_SPACE, True),
}
_REWRITE_FIX = (
    "rewrite the pattern with classes, groups, alternation and quantifiers only, or drop "
    "`pattern` from the schema and check the value after generation (e.g. a pydantic "
    "field_validator)"
)
_UNSUPPORTED = {
    "GROUPREF": "a backreference (\\1, (?P=name))",
    "GROUPREF_EXISTS": "a conditional group (?(1)...|...)",
    "ATOMIC_GROUP": "an atomic group (?>...)",
    "POSSESSIVE_REPEAT": "a possessive quantifier (*+, ++, ?+)",
    "AT_BOUNDARY": "a word boundary \\b",
    "AT_NON_BOUNDARY": "a non-boundary \\B",
}
_EDGE_START = ("AT_BEGINNING", "AT_BEGINNING_STRING")
_EDGE_END = ("AT_END", "AT_END_STRING")
_SYNTAX_FIX = (
    "write the pattern in the common regular-expression syntax (JSON Schema uses ECMA-262): "
    "\\p{...} property escapes and \\k<name> references cannot be used"
)
#: ECMA-262 spells a named group ``(?<name>...)``; Python's parser wants ``(?P<name>...)``.
_ECMA_NAMED_GROUP = re.compile(r"(?<!\\)\(\?<(?![=!])")


class PatternError(ValueError):
    """A pattern construct a grammar cannot express (``construct`` names it)."""

    def __init__(self, construct: str, fix: str = _REWRITE_FIX, *, syntax: bool = False) -> None:
        self.construct, self.fix, self.syntax = construct, fix, syntax
        super().__init__(construct)


def pattern_to_gbnf(pattern: str) -> str:
    """A GBNF expression generating JSON-string contents that ``pattern`` matches."""
    try:
        tree = _parser.parse(_ECMA_NAMED_GROUP.sub("(?P<", pattern))
    except re.error as exc:
        construct, syntax = _read_error(exc)
        raise PatternError(construct, fix=_SYNTAX_FIX, syntax=syntax) from None
    extra_flags = tree.state.flags & ~re.UNICODE
    if extra_flags:
        names = re.RegexFlag(extra_flags).name or str(extra_flags)
        raise PatternError(
            f"inline flags ({names}, e.g. (?i) or (?s))",
            fix="spell the alternatives out instead of a flag (e.g. [Aa] for (?i)a)",
        )
    items = _strip_anchors(list(tree.data))
    return _sequence(items) or '""'


def _read_error(exc: re.error) -> tuple[str, bool]:
    """What the parser refused, and whether it is a syntax error (not an unsupported feature)."""
    where = f" at position {exc.pos}" if exc.pos is not None else ""
    if exc.msg.startswith(("bad escape \\p", "bad escape \\P")):
        return f"a Unicode property escape (\\p{{...}}){where}", False
    if exc.msg.startswith("bad escape \\k"):
        return f"a named backreference (\\k<name>){where}", False
    if exc.msg.startswith("global flags not at the start"):
        return f"inline flags (such as (?i)) after the start{where}", False
    return f"{exc.msg}{where}", True


def _strip_anchors(items: list[Any]) -> list[Any]:
    """Drop ``^``/``$`` at the edges of the pattern (or of each top-level alternative)."""
    while items and str(items[0][0]) == "AT" and str(items[0][1]) in _EDGE_START:
        items = items[1:]
    while items and str(items[-1][0]) == "AT" and str(items[-1][1]) in _EDGE_END:
        items = items[:-1]
    if len(items) == 1 and str(items[0][0]) == "BRANCH":
        branches = [_strip_anchors(list(b)) for b in items[0][1][1]]
        return [(items[0][0], (None, branches))]
    return items


def _sequence(items: Any) -> str:
    """A GBNF sequence for parsed items; adjacent literals share one quoted string."""
    parts: list[str] = []
    literal = ""
    for op, arg in items:
        if str(op) == "LITERAL":
            literal += _json_text(chr(arg))
            continue
        if literal:
            parts.append(gbnf_literal(literal))
            literal = ""
        parts.append(_item(str(op), arg))
    if literal:
        parts.append(gbnf_literal(literal))
    return " ".join(p for p in parts if p)


def _item(op: str, arg: Any) -> str:
    if op in ("MAX_REPEAT", "MIN_REPEAT"):  # lazy or greedy: the same set of full matches
        low, high, sub = arg
        return f"({_sequence(sub) or chr(34) * 2}){_quantifier(low, high)}"
    if op == "SUBPATTERN":
        _group, add_flags, del_flags, sub = arg
        if add_flags or del_flags:
            raise PatternError("a group with inline flags (?i:...)")
        return f"({_sequence(sub) or chr(34) * 2})"
    if op == "BRANCH":
        return "(" + " | ".join(_sequence(b) or '""' for b in arg[1]) + ")"
    if op == "ANY":
        return _class_expr(_minus(_full(), _UNSAFE), [])
    if op == "NOT_LITERAL":
        return _class_expr(_minus(_complement([(arg, arg)], _full()), _UNSAFE), [])
    if op == "IN":
        return _charset(arg)
    if op in ("ASSERT", "ASSERT_NOT"):
        direction, _sub = arg
        kind = ("look-ahead " if direction > 0 else "look-behind ") + {
            ("ASSERT", 1): "(?=...)",
            ("ASSERT_NOT", 1): "(?!...)",
            ("ASSERT", -1): "(?<=...)",
            ("ASSERT_NOT", -1): "(?<!...)",
        }[(op, 1 if direction > 0 else -1)]
        return _raise(f"a {'negative ' if op == 'ASSERT_NOT' else ''}{kind}")
    if op == "AT":
        return _raise(_UNSUPPORTED.get(str(arg), "an anchor (^, $) inside the pattern"))
    return _raise(_UNSUPPORTED.get(op, f"the regular-expression construct {op}"))


def _raise(construct: str) -> NoReturn:
    raise PatternError(construct)


def _quantifier(low: int, high: int) -> str:
    if high == _parser.MAXREPEAT:
        return {0: "*", 1: "+"}.get(low, f"{{{low},}}")
    if (low, high) == (0, 1):
        return "?"
    return f"{{{low}}}" if low == high else f"{{{low},{high}}}"


def _charset(items: Any) -> str:
    """A class ``[...]``: ranges and categories, negated or not."""
    negated = bool(items) and str(items[0][0]) == "NEGATE"
    members: Ranges = []
    has_category = False
    for op, arg in items[1:] if negated else items:
        kind = str(op)
        if kind == "LITERAL":
            members.append((arg, arg))
        elif kind == "RANGE":
            members.append((arg[0], arg[1]))
        elif kind == "CATEGORY":
            has_category = True
            ranges, negate = _CATEGORIES[str(arg)]
            members.extend(_complement(ranges, _ASCII) if negate else ranges)
        else:
            raise PatternError(f"the class item {kind}")
    members = _normalize(members)
    if negated:  # a negated class stays within ASCII when categories take part in it
        members = _complement(members, _ASCII if has_category else _full())
        return _class_expr(_minus(members, _UNSAFE), [])
    escapes = [chr(c) for lo, hi in _intersect(members, _UNSAFE) for c in range(lo, hi + 1)]
    return _class_expr(_minus(members, _UNSAFE), escapes)


def _class_expr(ranges: Ranges, escapes: list[str]) -> str:
    options = [gbnf_literal(_json_text(c)) for c in escapes]
    if ranges:
        body = "".join(
            _class_char(lo) if lo == hi else f"{_class_char(lo)}-{_class_char(hi)}"
            for lo, hi in ranges
        )
        options.insert(0, f"[{body}]")
    if not options:
        raise PatternError(
            "a character class that matches no character JSON can hold",
            fix="check the class: it excludes every character (or only allows control ones)",
        )
    return options[0] if len(options) == 1 else "(" + " | ".join(options) + ")"


def _class_char(code: int) -> str:
    char = chr(code)
    if char.isascii() and char.isalnum():
        return char
    if code < 0x100:
        return f"\\x{code:02X}"
    return f"\\u{code:04X}" if code < 0x10000 else f"\\U{code:08X}"


def _json_text(text: str) -> str:
    """``text`` as it is written inside a JSON string."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _full() -> Ranges:
    return [(0, _MAX_CODEPOINT)]


def _normalize(ranges: Ranges) -> Ranges:
    merged: Ranges = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _complement(ranges: Ranges, universe: Ranges) -> Ranges:
    return _minus(universe, ranges)


def _minus(ranges: Ranges, removed: Ranges) -> Ranges:
    out: Ranges = []
    for lo, hi in _normalize(ranges):
        for rlo, rhi in _normalize(removed):
            if rhi < lo or rlo > hi:
                continue
            if rlo > lo:
                out.append((lo, rlo - 1))
            lo = rhi + 1
            if lo > hi:
                break
        if lo <= hi:
            out.append((lo, hi))
    return out


def _intersect(ranges: Ranges, other: Ranges) -> Ranges:
    return _minus(ranges, _minus(ranges, other))
