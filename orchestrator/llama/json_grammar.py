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
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

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
    schema = self_contained(schema, label=label)
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
        schema = self_contained(schema)
        patterns = _translate_patterns(schema, "JSON schema")
        path = _locate(schema, lambda sub: make_grammar(engine, _convert(sub, patterns)))
        raise SchemaGrammarError(
            f"the grammar built from the JSON schema did not parse in llama.cpp "
            f"(first refused at {_shown(path)})",
            path=path,
        ) from None


def self_contained(schema: Mapping[str, Any], *, label: str = "JSON schema") -> dict[str, Any]:
    """``schema`` with every ``$ref`` pointing into its own root ``$defs``, which holds the
    referenced definitions (under their own names unless two clash). Idempotent."""
    (root,), defs = bundle_schemas([schema], [label])
    return {**root, "$defs": defs} if defs else root


def bundle_schemas(
    schemas: Sequence[Mapping[str, Any]], labels: Sequence[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Schemas to embed in one document (the arguments of several tools): each with its local
    ``$ref`` s rewritten to ``#/$defs/<name>``, and the one ``$defs`` table they all share,
    which the caller puts at the root of the document it builds."""
    bundler = _Bundler()
    roots = [bundler.add(schema, label) for schema, label in zip(schemas, labels, strict=True)]
    return roots, bundler.defs


#: Keywords whose value is data (never searched for references) or maps names to schemas.
_DATA_KEYS = frozenset(("const", "enum", "default", "examples", "example"))
_NAME_MAPS = frozenset(("properties", "patternProperties", "dependentSchemas"))
_DEF_KEYS = frozenset(("$defs", "definitions"))


class _Bundler:
    """Rewrites schemas so that every reference is ``#/$defs/<name>`` into one table."""

    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}
        self._docs: list[Mapping[str, Any]] = []
        self._names: dict[tuple[int, tuple[str, ...]], str] = {}

    def add(self, schema: Mapping[str, Any], label: str) -> dict[str, Any]:
        self._docs.append(schema)
        rewritten: dict[str, Any] = self._rewrite(schema, len(self._docs) - 1, label, "")
        return rewritten

    def _rewrite(self, node: Any, doc: int, label: str, path: str) -> Any:
        if isinstance(node, list):
            return [self._rewrite(v, doc, label, _join(path, str(i))) for i, v in enumerate(node)]
        if not isinstance(node, Mapping):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            where = _join(path, key)
            if key in _DEF_KEYS:
                continue  # the definitions that are referenced move to the root table
            if key == "$ref":
                out[key] = f"#/$defs/{self._name(_ref_text(value, label, path), doc, label, path)}"
            elif key in _DATA_KEYS:
                out[key] = copy.deepcopy(value)
            elif key in _NAME_MAPS and isinstance(value, Mapping):
                out[key] = {
                    name: self._rewrite(sub, doc, label, _join(where, name))
                    for name, sub in value.items()
                }
            else:
                out[key] = self._rewrite(value, doc, label, where)
        return out

    def _name(self, ref: str, doc: int, label: str, path: str) -> str:
        """The table name of what ``ref`` points at (added to the table on first use)."""
        pointer = _pointer(ref, label, path)
        name = self._names.get((doc, pointer))
        if name is None:
            target = self._target(pointer, doc, ref, label, path)
            base = pointer[-1] if pointer else str(self._docs[doc].get("title") or "Root")
            base = re.sub(r"[^A-Za-z0-9_.-]+", "_", base) or "Def"
            name, n = base, 1
            while name in self.defs:
                n += 1
                name = f"{base}_{n}"
            self._names[(doc, pointer)] = name
            self.defs[name] = {}  # reserved first: a recursive reference finds the name
            self.defs[name] = self._rewrite(target, doc, label, ".".join(pointer))
        return name

    def _target(self, pointer: tuple[str, ...], doc: int, ref: str, label: str, path: str) -> Any:
        node: Any = self._docs[doc]
        for part in pointer:
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                defined = self._docs[doc].get(pointer[0]) if pointer else None
                known = f"; defined: {', '.join(defined)}" if isinstance(defined, Mapping) else ""
                raise SchemaGrammarError(
                    f'{label} has "$ref": {ref!r} at {_shown(path)}, which points at nothing '
                    f"in the schema ({part!r} is not there{known})",
                    path=path,
                    fix='define the referenced schema under "$defs" at the root of the same '
                    'schema and refer to it as "#/$defs/<Name>" (a schema embedded in another '
                    'keeps its "$defs" with it), or correct the reference',
                )
        return node


def _ref_text(ref: Any, label: str, path: str) -> str:
    if isinstance(ref, str):
        return ref
    raise SchemaGrammarError(
        f'{label} has "$ref": {json.dumps(ref)} at {_shown(path)}; a reference is a string',
        path=path,
        fix='write it as "#/$defs/<Name>"',
    )


def _pointer(ref: str, label: str, path: str) -> tuple[str, ...]:
    """The JSON pointer of a local reference as its unescaped parts (``#`` is ``()``)."""
    if not ref.startswith("#"):
        raise SchemaGrammarError(
            f'{label} has "$ref": {ref!r} at {_shown(path)}, which refers to another document; '
            "a grammar is built from references inside the schema only (nothing is fetched)",
            path=path,
            fix='copy the referenced schema into this schema\'s "$defs" and refer to it as '
            '"#/$defs/<Name>"',
        )
    fragment = unquote(ref[1:])
    if fragment and not fragment.startswith("/"):
        raise SchemaGrammarError(
            f'{label} has "$ref": {ref!r} at {_shown(path)}, a named anchor; only JSON-pointer '
            "references are resolved",
            path=path,
            fix='refer to the definition by its place in the schema, "#/$defs/<Name>"',
        )
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in fragment.split("/")[1:])


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _convert(schema: Mapping[str, Any], patterns: Mapping[str, str]) -> str:
    """``schema``'s references are already ``#/$defs/<name>`` (:func:`self_contained`), so the
    converter gets its reference table from ``$defs`` instead of its ``resolve_refs``, which
    skips the siblings of a ``$ref`` (a recursive pydantic model's root ``$defs``)."""
    converter = _converter_class()(patterns)
    plain = _true_as_empty(copy.deepcopy(dict(schema)))
    defs = plain.get("$defs")
    if isinstance(defs, dict):
        converter._refs.update({f"#/$defs/{name}": sub for name, sub in defs.items()})
    converter.visit(plain, "")
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
    from llama_cpp.llama_grammar import INVALID_RULE_CHARS_RE, RESERVED_NAMES, SchemaConverter

    class Converter(SchemaConverter):  # type: ignore[misc]
        def __init__(self, patterns: Mapping[str, str]) -> None:
            super().__init__(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
            self._translated = patterns
            self._ref_rules: dict[str, str] = {}

        def _resolve_ref(self, ref: str) -> str:
            """The rule of ``ref``, named once per reference. The original names it after the
            ref's last part and takes any rule of that name as the resolved one, so a
            definition called ``string`` became the primitive and ``root`` the document."""
            name = self._ref_rules.get(ref)
            if name is None:
                base = INVALID_RULE_CHARS_RE.sub("-", ref.split("/")[-1]) or "ref"
                name, n = base, 0
                taken = {*self._rules, *self._ref_rules.values(), *RESERVED_NAMES, "root"}
                while name in taken:
                    n += 1
                    name = f"{base}-ref{n}"
                self._ref_rules[ref] = name
                built = self.visit(self._refs[ref], name)
                if built != name:  # visit renamed it: keep the reserved name pointing there
                    assert name not in self._rules, f"rule {name!r} was taken while built"
                    self._rules[name] = built
            return str(name)

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


__all__ = [
    "SchemaGrammarError",
    "bundle_schemas",
    "checked_grammar",
    "json_schema_grammar",
    "schema_gbnf",
    "self_contained",
]
