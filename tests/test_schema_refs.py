"""JSON schemas with ``$defs`` / ``$ref`` (issue 18.4): what pydantic writes for a nested model,
what ``openai.pydantic_function_tool`` sends and what FastMCP lists as a tool's ``inputSchema``
become grammars on the one schema-to-grammar path, as a response format and as tool arguments
(where the schema is embedded in the tool-call schema, below its root), in process and through
``orchestrator serve``. References outside the schema are a clear error; nothing is fetched.

The unit tests build grammars only; the integration tests decode with the real embedded model
and validate the arguments with the pydantic model itself.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import httpx
import openai
import pytest
from mcp.server.fastmcp import FastMCP
from pydantic import BaseModel, Field
from server_harness import Server

from orchestrator import ChatLlamaCpp
from orchestrator.llama import structured
from orchestrator.llama.json_grammar import (
    SchemaGrammarError,
    bundle_schemas,
    schema_gbnf,
    self_contained,
)
from orchestrator.server.errors import APIError
from orchestrator.server.plans import check_schema


class Address(BaseModel):
    street: str = Field(max_length=24)
    city: str = Field(max_length=16)


class Parcel(BaseModel):
    """A parcel to ship (a nested model: pydantic puts Address under $defs)."""

    to: Address
    weight_kg: int


class Node(BaseModel):
    value: int
    children: list[Node] = []


def fastmcp_ship_schema() -> dict[str, Any]:
    """The ``inputSchema`` the real FastMCP lists for a tool taking a nested pydantic model."""
    import asyncio

    server = FastMCP("shop")

    @server.tool()
    def ship(parcel: Parcel, express: bool = False) -> str:
        """Ship a parcel."""
        return "shipped"

    (tool,) = asyncio.run(server.list_tools())
    return dict(tool.inputSchema)


def as_tool(name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": parameters}}


def rules(gbnf: str) -> dict[str, str]:
    return dict(line.split(" ::= ", 1) for line in gbnf.splitlines() if " ::= " in line)


def tool_call_gbnf(tools: list[dict[str, Any]]) -> str:
    """The grammar a forced call of ``tools`` is decoded under (the library's own schema)."""
    return schema_gbnf(structured._call_schema(tools))


# --- the schemas real producers write ------------------------------------------------------


def test_the_producers_write_refs_into_defs() -> None:
    """The premise: all three put the nested model under $defs and refer to it."""
    pydantic_schema = Parcel.model_json_schema()
    tool: Any = openai.pydantic_function_tool(Parcel, name="ship")
    mcp_schema = fastmcp_ship_schema()
    assert pydantic_schema["properties"]["to"] == {"$ref": "#/$defs/Address"}
    assert tool["function"]["parameters"]["properties"]["to"] == {"$ref": "#/$defs/Address"}
    assert mcp_schema["properties"]["parcel"] == {"$ref": "#/$defs/Parcel"}
    assert mcp_schema["$defs"]["Parcel"]["properties"]["to"] == {"$ref": "#/$defs/Address"}


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param(Parcel.model_json_schema(), id="pydantic"),
        pytest.param(
            openai.pydantic_function_tool(Parcel, name="ship")["function"]["parameters"],
            id="openai.pydantic_function_tool",
        ),
        pytest.param(fastmcp_ship_schema(), id="fastmcp"),
    ],
)
def test_response_format_and_tool_arguments_both_resolve_the_refs(schema: dict[str, Any]) -> None:
    for gbnf in (schema_gbnf(schema), tool_call_gbnf([as_tool("ship", schema)])):
        # the nested model is spelled out (its own keys), not an arbitrary object
        assert '\\"street\\"' in gbnf and '\\"city\\"' in gbnf and '\\"weight_kg\\"' in gbnf
        assert "root ::=" in gbnf


def test_the_tool_call_schema_keeps_the_definitions_at_its_root() -> None:
    tool = openai.pydantic_function_tool(Parcel, name="ship")
    call = structured._call_schema([tool])
    assert call["properties"]["arguments"]["properties"]["to"] == {"$ref": "#/$defs/Address"}
    assert "$defs" not in call["properties"]["arguments"]
    assert set(call["$defs"]) == {"Address"}


def test_two_tools_with_clashing_definition_names_keep_their_own() -> None:
    """Tool A's ``Address`` and tool B's ``Address`` differ; each call gets its own."""
    a = {"$defs": {"Address": {"type": "object", "properties": {"street": {"type": "string"}}}},
         "type": "object", "properties": {"to": {"$ref": "#/$defs/Address"}}}
    b = {"$defs": {"Address": {"type": "object", "properties": {"zip": {"type": "integer"}}}},
         "type": "object", "properties": {"to": {"$ref": "#/$defs/Address"}}}
    (ra, rb), defs = bundle_schemas([a, b], ["a", "b"])
    assert ra["properties"]["to"] != rb["properties"]["to"]
    name_b = rb["properties"]["to"]["$ref"].rsplit("/", 1)[1]
    assert defs[name_b]["properties"] == {"zip": {"type": "integer"}}
    gbnf = tool_call_gbnf([as_tool("a", a), as_tool("b", b)])
    assert '\\"street\\"' in gbnf and '\\"zip\\"' in gbnf


# --- reference forms ----------------------------------------------------------------------


def test_recursive_model_becomes_a_recursive_rule() -> None:
    schema = Node.model_json_schema()
    assert schema["$ref"] == "#/$defs/Node"  # pydantic's recursive root is a bare $ref
    for gbnf in (schema_gbnf(schema), tool_call_gbnf([as_tool("tree", schema)])):
        table = rules(gbnf)
        assert any(re.search(r"\bNode\b", rhs) for name, rhs in table.items() if name != "root"
                   and name.startswith("Node-")), gbnf


@pytest.mark.parametrize(
    "schema",
    [
        {"definitions": {"A": {"type": "object", "properties": {"street": {"type": "string"}}}},
         "type": "object", "properties": {"a": {"$ref": "#/definitions/A"}}},
        {"$defs": {"Outer": {"$defs": {"A": {"type": "object",
                                              "properties": {"street": {"type": "string"}}}}}},
         "type": "object", "properties": {"a": {"$ref": "#/$defs/Outer/$defs/A"}}},
        {"type": "object", "properties": {
            "b": {"type": "object", "properties": {"street": {"type": "string"}}},
            "a": {"$ref": "#/properties/b"}}},
        {"$defs": {"A~/B": {"type": "object", "properties": {"street": {"type": "string"}}}},
         "type": "object", "properties": {"a": {"$ref": "#/$defs/A~0~1B"}}},
        {"$defs": {"A B": {"type": "object", "properties": {"street": {"type": "string"}}}},
         "type": "object", "properties": {"a": {"$ref": "#/$defs/A%20B"}}},
    ],
    ids=["definitions", "nested-defs", "any-pointer", "escaped-pointer", "percent-encoded"],
)
def test_every_local_pointer_form_resolves(schema: dict[str, Any]) -> None:
    for gbnf in (schema_gbnf(schema), tool_call_gbnf([as_tool("t", schema)])):
        assert '\\"street\\"' in gbnf


def test_root_recursion_with_hash_ref() -> None:
    schema = {"title": "Tree", "type": "object",
              "properties": {"kids": {"type": "array", "items": {"$ref": "#"}}}}
    assert "Tree" in rules(tool_call_gbnf([as_tool("t", schema)]))
    assert "Tree" in rules(schema_gbnf(schema))


def test_a_definition_named_like_a_grammar_primitive_keeps_its_meaning() -> None:
    """llama-cpp-python's converter took a ref's last segment as the rule name and any rule of
    that name as already resolved: ``#/$defs/string`` became JSON strings, not integers."""
    schema = {"$defs": {"string": {"type": "integer"}, "root": {"type": "boolean"}},
              "type": "object", "properties": {"n": {"$ref": "#/$defs/string"},
                                                "b": {"$ref": "#/$defs/root"}},
              "required": ["n", "b"]}
    table = rules(schema_gbnf(schema))

    def body(name: str) -> str:
        while table[name] in table:  # follow one-name aliases
            name = table[name]
        return table[name]

    assert body("n") == table["integer"]
    assert body("b") == table["boolean"]
    assert table["root"].startswith('"{"')


def test_data_and_property_names_are_not_read_as_keywords() -> None:
    """``const``/``enum`` values are data, and a property may be called ``definitions``."""
    schema = {"type": "object", "required": ["definitions", "kind"], "properties": {
        "definitions": {"type": "string"},
        "kind": {"enum": [{"$ref": "not a reference"}, "plain"]}}}
    gbnf = schema_gbnf(schema)
    assert '\\"definitions\\"' in gbnf and "not a reference" in gbnf


def test_self_contained_is_idempotent_and_drops_unused_definitions() -> None:
    schema = fastmcp_ship_schema()
    schema["$defs"]["Unused"] = {"type": "string", "pattern": "^(?=x)x$"}  # never referenced
    once = self_contained(schema)
    assert self_contained(once) == once
    assert set(once["$defs"]) == {"Parcel", "Address"}
    schema_gbnf(schema)  # the unreferenced look-ahead does not matter


# --- refs that cannot be resolved: errors naming the ref and the fix ------------------------


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ("https://example.com/address.json", "refers to another document"),
        ("address.json#/$defs/Address", "refers to another document"),
        ("#address", "a named anchor"),
        ("#/$defs/Adress", "('Adress' is not there; defined: Address)"),
        ("#/$defs/Address/properties/zip", "points at nothing in the schema ('zip' is not there"),
        (5, "a reference is a string"),
    ],
)
def test_unresolvable_refs_are_errors_naming_the_ref(ref: Any, problem: str) -> None:
    schema = Parcel.model_json_schema()
    schema["properties"]["to"] = {"$ref": ref}
    for build in (
        lambda: schema_gbnf(schema),
        lambda: tool_call_gbnf([as_tool("ship", schema)]),
    ):
        with pytest.raises(SchemaGrammarError) as info:
            build()
        assert repr(ref) in info.value.message and problem in info.value.message
        assert info.value.path == "properties.to"
        assert info.value.fix and "#/$defs/" in info.value.fix


def test_a_tools_ref_error_names_the_tool() -> None:
    schema = {"type": "object", "properties": {"to": {"$ref": "#/$defs/Missing"}}}
    with pytest.raises(SchemaGrammarError, match="the arguments schema of tool 'ship'"):
        structured._call_schema([as_tool("ship", schema)])


def test_the_server_checks_schemas_on_the_same_path() -> None:
    """``serve``'s 400 check is the library's converter, not a second one."""
    check_schema(openai.pydantic_function_tool(Parcel)["function"]["parameters"], "tools[0]")
    check_schema(Node.model_json_schema(), "response_format.json_schema.schema")
    check_schema({"properties": {"code": {"type": "string", "pattern": r"^\d{3}$"}}}, "x")
    with pytest.raises(APIError) as info:
        check_schema({"properties": {"to": {"$ref": "https://x.test/a.json"}}},
                     "tools[0].function.parameters")
    assert info.value.status == 400 and info.value.param == "tools[0].function.parameters"
    assert "'https://x.test/a.json'" in info.value.message and info.value.fix


# --- the real model ------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("source", ["openai.pydantic_function_tool", "fastmcp"])
def test_bound_tool_with_nested_model_returns_valid_arguments(source: str) -> None:
    tool: Any
    if source == "fastmcp":
        tool = {"type": "function", "function": {
            "name": "ship", "description": "Ship a parcel.", "parameters": fastmcp_ship_schema()}}
    else:
        tool = openai.pydantic_function_tool(Parcel, name="ship", description="Ship a parcel.")
    chat = ChatLlamaCpp(temperature=0.0, seed=0, max_tokens=120)
    reply = chat.bind_tools([tool], tool_choice="ship").invoke(
        "Ship 3 kg to 1 Main Street, Springfield."
    )
    (call,) = reply.tool_calls
    assert call["name"] == "ship"
    parcel = call["args"]["parcel"] if source == "fastmcp" else call["args"]
    Parcel.model_validate(parcel)


@pytest.mark.integration
@pytest.mark.slow
def test_serve_answers_a_forced_nested_tool_call_with_valid_arguments(
    server: Server, model_id: str
) -> None:
    client: Any = server.client()
    tools = [
        openai.pydantic_function_tool(Parcel, name="ship", description="Ship a parcel."),
        {"type": "function", "function": {"name": "ship_express", "description": "Ship fast.",
                                          "parameters": fastmcp_ship_schema()}},
    ]
    reply = client.chat.completions.create(
        model=model_id,
        messages=[{"role": "user", "content": "Ship 3 kg to 1 Main Street, Springfield."}],
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "ship"}},
        max_tokens=120,
        temperature=0.0,
        seed=0,
    )
    (call,) = reply.choices[0].message.tool_calls
    assert call.function.name == "ship"
    Parcel.model_validate(json.loads(call.function.arguments))


@pytest.mark.integration
@pytest.mark.slow
def test_serve_refuses_a_remote_ref_with_a_400_naming_it(server: Server, model_id: str) -> None:
    schema = {"type": "object", "properties": {"to": {"$ref": "https://x.test/a.json"}}}
    body = {"model": model_id, "messages": [{"role": "user", "content": "hi"}],
            "tools": [as_tool("ship", schema)], "tool_choice": "required"}
    response = httpx.post(f"{server.v1}/chat/completions", json=body, timeout=60)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "tools[0].function.parameters"
    assert "https://x.test/a.json" in error["message"] and error["fix"]


# --- tools given as classes: LangChain's conversion must not lose a recursive reference -----


class Tree(BaseModel):
    """A tree of names."""

    name: str = Field(max_length=10)
    kids: list[Tree] = Field(default_factory=list, max_length=2)


def _mcp_plant_tool() -> Any:
    """The LangChain tool langchain-mcp-adapters makes of a FastMCP tool taking ``Tree``."""
    import asyncio

    from langchain_mcp_adapters.tools import convert_mcp_tool_to_langchain_tool

    server = FastMCP("garden")

    @server.tool()
    def plant(tree: Tree) -> str:
        """Plant a tree."""
        return "planted"

    (listed,) = asyncio.run(server.list_tools())
    never_started: Any = {"transport": "stdio", "command": sys.executable, "args": []}
    return convert_mcp_tool_to_langchain_tool(None, listed, connection=never_started)


def _plant(tree: Tree) -> str:
    """Plant a tree."""
    return "planted"


@pytest.mark.parametrize("source", ["pydantic class", "@tool function", "MCP tool"])
def test_bind_tools_keeps_a_recursive_models_reference(source: str) -> None:
    """LangChain's ``convert_to_openai_tool`` writes a recursive reference as ``{}`` (any
    JSON): a tree's children would be decoded unconstrained. bind_tools keeps the reference."""
    from langchain_core.tools import tool as make_tool

    makers: dict[str, Any] = {"pydantic class": lambda: Tree,
                              "@tool function": lambda: make_tool(_plant),
                              "MCP tool": _mcp_plant_tool}
    given = makers[source]()
    bound: Any = ChatLlamaCpp().bind_tools([given])
    (spec,) = bound.kwargs["tools"]
    table = rules(tool_call_gbnf([spec]))
    kids = next(rhs for name, rhs in table.items() if name.endswith("kids-item"))
    assert kids == "Tree", table  # each child is a Tree again, not any JSON value


def test_a_dict_tool_is_passed_through_unchanged() -> None:
    tool = openai.pydantic_function_tool(Parcel, name="ship")
    before = json.dumps(tool, sort_keys=True)
    assert structured.openai_tool(tool) == tool
    assert json.dumps(tool, sort_keys=True) == before


@pytest.mark.integration
def test_a_bound_recursive_model_returns_valid_arguments() -> None:
    chat = ChatLlamaCpp(temperature=0.0, seed=0, max_tokens=400)
    (call,) = chat.bind_tools([Tree], tool_choice="Tree").invoke("make a tree").tool_calls
    Tree.model_validate(call["args"])
