"""JSON Schema ``pattern`` to grammar: supported constructs are generated and matched, the
rest are errors naming the schema path (issue 10.3). Pure translation tests need no model;
the generation tests use the real embedded model."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from orchestrator import ChatLlamaCpp
from orchestrator.errors import OrchestratorError
from orchestrator.llama.json_grammar import SchemaGrammarError, json_schema_grammar, schema_gbnf
from orchestrator.llama.regex_gbnf import PatternError, pattern_to_gbnf


class CountryCode(BaseModel):
    """A two-letter country code followed by two digits."""

    code: str = Field(pattern=r"^[A-Z]{2}\d{2}$")


class Password(BaseModel):
    model_config = ConfigDict(regex_engine="python-re")  # pydantic's default refuses look-ahead

    password: str = Field(pattern=r"^(?=.*[0-9]).{8,}$")


@pytest.fixture
def chat(chat_llm: ChatLlamaCpp) -> ChatLlamaCpp:
    """The real embedded model, greedy with a fixed seed (the session's shared object)."""
    return chat_llm


# --- generation with the real model --------------------------------------------------------


@pytest.mark.integration
def test_digit_pattern_from_pydantic_is_generated_and_matches(chat: ChatLlamaCpp) -> None:
    result = chat.with_structured_output(CountryCode).invoke("Give a code like DE42.")
    assert isinstance(result, CountryCode)
    assert re.fullmatch(r"[A-Z]{2}\d{2}", result.code)


SUPPORTED = [
    r"^[A-Z]{2}\d{2}$",
    r"^\w{1,8}@\w{1,8}\.(com|org)$",
    r"^(?:ab|cd){2,3}x?$",
    r"^\d{3}-\d{4}$",
    r"^[^\W_]{4,6}$",
    r"^(?P<year>\d{4})-(0[1-9]|1[0-2])$",
    r"^v\d{1,3}(\.\d{1,3}){2}$",
    r"^[a-c]\s[x-z]$",
    r"^.{3}$",
    r"[0-9]{2}",  # unanchored: generated as a whole-string match
    r'^["\\]{2}$',  # characters JSON escapes, listed explicitly
]
#: Unbounded repeats: checked to parse only (sampling at temperature 1 may not end them).
UNBOUNDED = [r"^\w+@\w+\.(com|org)$", r"^v\d+(\.\d+)*$", r"^a*b?c+$"]


@pytest.mark.integration
@pytest.mark.parametrize("pattern", SUPPORTED)
def test_supported_pattern_output_matches(chat: ChatLlamaCpp, pattern: str) -> None:
    schema = {
        "type": "object",
        "properties": {"value": {"type": "string", "pattern": pattern}},
        "required": ["value"],
    }
    text = chat.invoke(
        "Reply with a JSON object.",
        response_format={"type": "json_schema", "schema": schema},
        temperature=1.0,
        seed=7,
    ).content
    value = json.loads(str(text))["value"]
    assert re.search(pattern, value), (pattern, value)
    assert re.fullmatch(pattern.strip("^$"), value), (pattern, value)


@pytest.mark.integration
def test_tool_argument_patterns_are_translated_too(chat: ChatLlamaCpp) -> None:
    message = chat.bind_tools([CountryCode], tool_choice="any").invoke("Code for Germany?")
    (call,) = message.tool_calls
    assert re.fullmatch(r"[A-Z]{2}\d{2}", call["args"]["code"])


# --- unsupported constructs are errors naming path, construct and fix ----------------------


@pytest.mark.integration
def test_look_ahead_is_a_clear_error_naming_the_path(chat: ChatLlamaCpp) -> None:
    with pytest.raises(SchemaGrammarError) as info:
        chat.with_structured_output(Password).invoke("a password")
    error = info.value
    assert isinstance(error, OrchestratorError)
    assert error.path == "properties.password.pattern"
    assert "look-ahead (?=...)" in error.message
    assert error.fix and "field_validator" in error.fix


@pytest.mark.integration
def test_tool_schema_error_names_the_tool(chat: ChatLlamaCpp) -> None:
    with pytest.raises(SchemaGrammarError, match="tool 'Password'") as info:
        chat.bind_tools([Password], tool_choice="any").invoke("a password")
    assert info.value.path == "properties.password.pattern"


@pytest.mark.parametrize(
    ("pattern", "construct"),
    [
        (r"^(?!0).*$", "negative look-ahead"),
        (r"^.*(?<=x)$", "look-behind (?<=...)"),
        (r"^(?<!a)b$", "negative look-behind"),
        (r"^(a)\1$", "backreference"),
        (r"^(?<q>a)\k<q>$", "named backreference"),
        (r"\bword\b", "word boundary"),
        (r"^(?i)abc$", "inline flags"),
        (r"^(?i:a)$", "inline flags"),
        (r"^(?>ab)$", "atomic group"),
        (r"^a*+$", "possessive quantifier"),
        (r"^a$b", "anchor"),
        (r"^\p{L}+$", "Unicode property escape"),
        (r"^(a$", "missing ), unterminated subpattern"),
        (r"^[^\s\S]$", "matches no character"),
    ],
)
def test_unsupported_constructs_are_named(pattern: str, construct: str) -> None:
    schema = {"properties": {"code": {"type": "string", "pattern": pattern}}}
    with pytest.raises(SchemaGrammarError) as info:
        schema_gbnf(schema)
    assert info.value.path == "properties.code.pattern"
    assert construct in info.value.message
    assert info.value.fix


def test_nested_definition_error_names_the_definition() -> None:
    class Inner(BaseModel):
        model_config = ConfigDict(regex_engine="python-re")
        tag: str = Field(pattern=r"^(?=x)x$")

    class Outer(BaseModel):
        inner: Inner

    with pytest.raises(SchemaGrammarError) as info:
        schema_gbnf(Outer.model_json_schema())
    assert info.value.path == "$defs.Inner.properties.tag.pattern"


@pytest.mark.parametrize(
    ("schema", "path"),
    [
        ({"properties": {"a": {"type": "date"}}}, "properties.a"),
        ({"properties": {"a": {"$ref": "#/$defs/Missing"}}}, "properties.a"),
        ({"type": "array", "items": {"properties": {"b": {"type": "wat"}}}}, "items.properties.b"),
        ({"type": "frob"}, ""),
        ({"properties": {"a": 5}}, "properties.a"),
        ({"type": "array", "items": False}, "items"),
    ],
)
def test_any_converter_failure_is_a_schema_error(schema: dict[str, Any], path: str) -> None:
    with pytest.raises(SchemaGrammarError) as info:
        schema_gbnf(schema)
    assert not isinstance(info.value, AssertionError)
    assert info.value.path == path
    assert "needs a 'root' rule" not in str(info.value)


def test_list_of_any_and_true_schemas_convert() -> None:
    class Loose(BaseModel):
        xs: list[Any]
        d: dict[str, Any]

    assert "root ::=" in schema_gbnf(Loose.model_json_schema())
    assert "root ::=" in schema_gbnf({"type": "array", "items": True})


def test_const_and_enum_literals_escape_backslash_and_quote() -> None:
    gbnf = schema_gbnf({"enum": ["a\\b", 'q"'], "type": "string"})
    # GBNF "\"a\\\\b\"" produces the JSON text "a\\b" (the value a\b)
    assert '"\\"a\\\\\\\\b\\""' in gbnf
    assert '"\\"q\\\\\\"\\""' in gbnf


@pytest.mark.integration
@pytest.mark.parametrize("value", ["a\\b", 'say "hi"', "line\nbreak"])
def test_const_values_are_generated_exactly(chat: ChatLlamaCpp, value: str) -> None:
    schema = {"type": "object", "properties": {"v": {"const": value}}, "required": ["v"]}
    fmt = {"type": "json_schema", "schema": schema}
    text = chat.invoke("Reply with a JSON object.", response_format=fmt).content
    assert json.loads(str(text)) == {"v": value}


# --- translation properties (no model) -----------------------------------------------------


def test_digit_escape_becomes_a_class() -> None:
    assert pattern_to_gbnf(r"^[A-Z]{2}\d{2}$") == "([A-Z]){2} ([0-9]){2}"


def test_dot_and_negated_classes_never_produce_raw_quote_or_backslash() -> None:
    for pattern in (".", "[^a]", r"\W", r"[^\w]", "[^x-y]"):
        gbnf = pattern_to_gbnf(pattern)
        assert _gbnf_class_admits(gbnf, "!")
        assert [_gbnf_class_admits(gbnf, c) for c in ('"', "\\", "\n", "\x00")] == [False] * 4


def test_explicit_quote_is_emitted_json_escaped() -> None:
    assert pattern_to_gbnf('^"$') == '"\\\\\\""'  # GBNF "\\\"" produces the two chars \"


@pytest.mark.integration
def test_all_grammars_parse_in_llama_cpp(chat: ChatLlamaCpp) -> None:
    for pattern in SUPPORTED + UNBOUNDED:
        schema = {"type": "string", "pattern": pattern}
        assert json_schema_grammar(chat.engine, schema) is not None


_ITEMS = st.sampled_from(["a", "z", "0", "_", "+", " ", "é", r"\d", r"\w", r"\s", "a-f", "A-Z"])


@settings(max_examples=200, deadline=None)
@given(
    items=st.lists(_ITEMS, min_size=1, max_size=4),
    negated=st.booleans(),
    char=st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters='"\\'),
)
def test_class_translation_admits_only_matching_characters(
    items: list[str], negated: bool, char: str
) -> None:
    """A character the translated class admits is one the regex class matches (soundness)."""
    pattern = "[" + ("^" if negated else "") + "".join(items) + "]"
    try:
        gbnf = pattern_to_gbnf(pattern)
    except PatternError:
        return
    admitted = _gbnf_class_admits(gbnf, char)
    if admitted:
        assert re.fullmatch(pattern, char), (pattern, gbnf, char)
    elif char.isascii():  # complete on ASCII (\d, \w, \s are their ASCII sets)
        assert not re.fullmatch(pattern, char), (pattern, gbnf, char)


def _gbnf_class_admits(gbnf: str, char: str) -> bool:
    """Whether the ``[...]`` class in a translation (members hex-escaped, so no raw ``]``)
    admits ``char``; a translation of JSON escapes only (``"\\t"``) admits no plain char."""
    single = re.fullmatch(r'"(.)"', gbnf)  # the parser reads a one-character class as a literal
    if single:
        return single.group(1) == char
    body = re.search(r"\[([^\]]*)\]", gbnf)
    if body is None:
        return False
    members = re.findall(
        r"(\\x[0-9A-F]{2}|\\u[0-9A-F]{4}|\\U[0-9A-F]{8}|[0-9A-Za-z])"
        r"(?:-(\\x[0-9A-F]{2}|\\u[0-9A-F]{4}|\\U[0-9A-F]{8}|[0-9A-Za-z]))?",
        body.group(1),
    )

    def code(token: str) -> int:
        return int(token[2:], 16) if token.startswith("\\") else ord(token)

    return any(code(lo) <= ord(char) <= code(hi or lo) for lo, hi in members)
