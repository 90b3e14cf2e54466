"""JSON Schema to a llama.cpp grammar, with the regular-expression ``pattern`` support that
llama-cpp-python's converter lacks, and errors that name the part of the schema at fault.

llama-cpp-python's ``SchemaConverter`` (a port of llama.cpp's ``json_schema_to_grammar.py``)
turns schemas into GBNF well, but its ``pattern`` handling copies escapes such as ``\\d`` or
``\\.`` into the grammar verbatim (llama.cpp then refuses the grammar), rejects non-capturing
groups and unanchored patterns with bare ``AssertionError`` s, and lets ``.`` produce a raw
``"``, which ends the JSON string early. So the converter is used for everything but patterns,
and each pattern is parsed with Python's own regular-expression parser (the one ``re`` uses)
and translated here; constructs a grammar cannot express (look-around, backreferences, ...)
are a :class:`SchemaGrammarError` naming the schema path, the construct and a fix.

A translated pattern generates a *subset* of the strings the pattern matches, never more:
an unanchored pattern is generated as a whole-string match, and characters JSON would have
to escape are left out of wide classes (``.``, ``[^x]``, ``\\W``). ``\\d``, ``\\w`` and
``\\s`` mean their ASCII sets, as in JSON Schema's ECMA-262 dialect.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from orchestrator.errors import OptionError, OrchestratorError
from orchestrator.llama.regex_gbnf import PatternError, gbnf_literal, pattern_to_gbnf

if TYPE_CHECKING:
    from orchestrator.llama.engine import Engine

#: Keywords whose value is a schema, and keywords whose value maps/lists schemas.
_SCHEMA_KEYS = ("items", "additionalProperties", "not", "if", "then", "else", "contains")
_SCHEMA_MAPS = ("$defs", "definitions", "properties", "patternProperties")
_SCHEMA_LISTS = ("prefixItems", "anyOf", "oneOf", "allOf", "items")
_CONVERTER_FAILURES = (
    AssertionError,
    AttributeError,
    IndexError,
    KeyError,
    RecursionError,
    TypeError,
    ValueError,
)
_FIX = (
    "simplify that part of the schema, or drop the constraint from the schema and check the "
    "value after generation (for instance with a pydantic field_validator)"
)


class SchemaGrammarError(OrchestratorError, ValueError):
    """A JSON schema (``response_format``, ``with_structured_output``, a tool's arguments) that
    cannot be turned into a llama.cpp grammar; the message names the schema path."""

    def __init__(self, message: str, *, path: str, fix: str | None = None) -> None:
        self.path = path
        super().__init__(message, fix=fix or _FIX)


def schema_gbnf(schema: Mapping[str, Any], *, label: str = "JSON schema") -> str:
    """GBNF text (with a ``root`` rule) admitting only JSON documents that match ``schema``.
    ``label`` says in errors whose schema it is (``the arguments of tool 'add'``)."""
    patterns = _translate_patterns(schema, label)
    try:
        return _convert(schema, patterns)
    except _CONVERTER_FAILURES as exc:
        path = _locate(schema, lambda sub: _convert(sub, patterns))
        raise SchemaGrammarError(
            f"{label} could not be turned into a grammar at {_shown(path)}: "
            f"{type(exc).__name__}: {exc}",
            path=path,
        ) from None


def json_schema_grammar(engine: Engine, schema: Mapping[str, Any]) -> Any:
    """A checked llama.cpp grammar for ``schema`` (see :func:`schema_gbnf`)."""
    return checked_grammar(engine, schema, schema_gbnf(schema))


def checked_grammar(engine: Engine, schema: Mapping[str, Any], gbnf: str) -> Any:
    """``gbnf`` (built from ``schema``) as a llama.cpp grammar; if llama.cpp refuses it, the
    error names the deepest part of the schema whose own grammar is refused."""
    from orchestrator.llama.engine import make_grammar

    try:
        return make_grammar(engine, gbnf)
    except OptionError:
        patterns = _translate_patterns(schema, "JSON schema")
        path = _locate(schema, lambda sub: make_grammar(engine, _convert(sub, patterns)))
        raise SchemaGrammarError(
            f"the grammar built from the JSON schema did not parse in llama.cpp "
            f"(first refused at {_shown(path)})",
            path=path,
        ) from None


def _convert(schema: Mapping[str, Any], patterns: Mapping[str, str]) -> str:
    converter = _converter_class()(patterns)
    plain = _true_as_empty(copy.deepcopy(dict(schema)))
    resolved = converter.resolve_refs(plain, "stdin")
    converter.visit(resolved, "")
    return str(converter.format_grammar())


def _true_as_empty(node: Any) -> Any:
    """Sub-schemas written ``true`` (anything goes) as ``{}``, which the converter reads;
    in place. ``additionalProperties: true/false`` the converter reads as it is, and ``items``
    that allows anything is dropped (the converter fails on ``items: {}``, pydantic's
    ``list[Any]``; without it, any array is allowed)."""
    if not isinstance(node, dict):
        return node
    if node.get("items") in (True, {}):
        del node["items"]
    for key in _SCHEMA_MAPS:
        if isinstance(node.get(key), dict):
            node[key] = {k: _true_as_empty({} if v is True else v) for k, v in node[key].items()}
    for key in (*_SCHEMA_LISTS, *_SCHEMA_KEYS):
        value = node.get(key)
        if isinstance(value, list):
            node[key] = [_true_as_empty({} if v is True else v) for v in value]
        elif value is True and key != "additionalProperties":
            node[key] = {}
        else:
            _true_as_empty(value)
    return node


@functools.cache
def _converter_class() -> type[Any]:
    """llama-cpp-python's ``SchemaConverter`` with two methods replaced: ``_visit_pattern``
    takes patterns from a table translated by :mod:`regex_gbnf`, and ``_format_literal``
    escapes backslashes (the original does not, so a ``const``/``enum`` value or property
    name holding ``\\`` either breaks the grammar or generates a different JSON value)."""
    from llama_cpp.llama_grammar import SchemaConverter

    class Converter(SchemaConverter):  # type: ignore[misc]
        def __init__(self, patterns: Mapping[str, str]) -> None:
            super().__init__(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
            self._translated = patterns

        def _visit_pattern(self, pattern: str, name: str) -> str:
            body = self._translated[pattern]
            return str(self._add_rule(name, f'"\\"" {body} "\\"" space'))

        def _format_literal(self, literal: str) -> str:
            return gbnf_literal(literal)

    return Converter


def _translate_patterns(schema: Mapping[str, Any], label: str) -> dict[str, str]:
    """Every ``pattern`` in the schema, translated to a GBNF expression (errors name the path)."""
    out: dict[str, str] = {}
    for path, sub in _walk(schema, ""):
        pattern = sub.get("pattern")
        if not isinstance(pattern, str) or pattern in out:
            continue
        where = f"{path}.pattern" if path else "pattern"
        try:
            out[pattern] = pattern_to_gbnf(pattern)
        except PatternError as exc:
            problem = (
                f"is not a regular expression Python's parser can read: {exc.construct}"
                if exc.syntax
                else f"uses {exc.construct}, which a llama.cpp grammar cannot express"
            )
            raise SchemaGrammarError(
                f"{label} {where} = {pattern!r} {problem}", path=where, fix=exc.fix
            ) from None
    return out


def _walk(schema: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield path, schema
    for child_path, child in _children(schema, path):
        if isinstance(child, Mapping):
            yield from _walk(child, child_path)


def _children(schema: Mapping[str, Any], path: str) -> Iterator[tuple[str, Any]]:
    """The direct sub-schemas of ``schema`` with their dotted paths (also values that should
    be schemas but are not, such as ``true`` or a number); definitions first, so a failure
    inside a referenced definition is found there rather than at the reference."""
    prefix = f"{path}." if path else ""
    for key in _SCHEMA_MAPS:
        members = schema.get(key)
        if isinstance(members, Mapping):
            for name, child in members.items():
                yield f"{prefix}{key}.{name}", child
    for key in _SCHEMA_LISTS:
        members = schema.get(key)
        if isinstance(members, list):
            for index, child in enumerate(members):
                yield f"{prefix}{key}.{index}", child
    for key in _SCHEMA_KEYS:
        value = schema.get(key)
        boolean_ok = key == "additionalProperties" and isinstance(value, bool)
        if key in schema and not isinstance(value, list) and not boolean_ok:
            yield f"{prefix}{key}", value


def _locate(schema: Mapping[str, Any], build: Callable[[Mapping[str, Any]], Any]) -> str:
    """The deepest path under ``schema`` whose sub-schema alone still fails ``build``."""
    defs = {k: schema[k] for k in ("$defs", "definitions") if k in schema}

    def fails(sub: Any) -> bool:
        if not isinstance(sub, Mapping):
            return sub is not True  # `true` (anything) is converted; `false` or a number is not
        try:
            build({**defs, **sub})
        except (*_CONVERTER_FAILURES, OrchestratorError):
            return True
        return False

    path, node = "", schema
    while isinstance(node, Mapping):
        for child_path, child in _children(node, path):
            if fails(child):
                path, node = child_path, child
                break
        else:
            break
    return path


def _shown(path: str) -> str:
    return path or "the schema root"


__all__ = ["SchemaGrammarError", "checked_grammar", "json_schema_grammar", "schema_gbnf"]
