"""The model layer (orchestrator.models): capabilities through bindings, the constraint
arguments per model kind, one set of sampling bounds, ModelSpec, and the local/served choice.

Unit tests use the shipped fakes and a fake OpenAI-compatible server; the last tests use the
real embedded model (session fixtures), with a few tokens each.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.language_models import FakeListChatModel
from pydantic import BaseModel, ValidationError
from remote_support import FakeOpenAIServer

from orchestrator.agents.react import resolve_step_mode
from orchestrator.errors import OptionError
from orchestrator.llama import ChatLlamaCpp, LlamaCpp, gbnf_literal
from orchestrator.llama.base import CallOptions
from orchestrator.models import (
    DEFAULT_SAMPLING,
    ModelSpec,
    SamplingOptions,
    capabilities,
    chat_model,
    completion_model,
    language_model,
    model_label,
)
from orchestrator.prompts.templates import PromptTemplate, model_in, model_of
from orchestrator.remote import BASE_URL_ENV, RemoteOptions
from orchestrator.remote_model import RemoteChatModel
from orchestrator.server.responses_api import ResponseRequest
from orchestrator.server.schemas import ChatCompletionRequest
from orchestrator.settings import embedded_model_path
from orchestrator.testing import ScriptedChatModel, ScriptedLLM

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
GBNF = 'root ::= "yes"'


class Answer(BaseModel):
    a: int


@pytest.fixture(autouse=True)
def _no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    monkeypatch.delenv("ORCHESTRATOR_API_KEY", raising=False)


# -- capabilities through bindings -----------------------------------------------------------

WRAPPERS: dict[str, Callable[[Any], Any]] = {
    "bind": lambda m: m.bind(stop=["\n"]),
    "with_config": lambda m: m.with_config(tags=["t"]),
    "bind_tools": lambda m: m.bind_tools([]),
    "nested": lambda m: m.bind(max_tokens=5).with_config(tags=["t"]).bind(stop=["x"]),
}


@pytest.mark.parametrize("wrap", list(WRAPPERS), ids=list(WRAPPERS))
def test_capabilities_are_answered_through_any_binding(wrap: str) -> None:
    local, fake = ChatLlamaCpp(max_tokens=5), ScriptedChatModel(replies=[])
    for model in (local, fake):
        caps = capabilities(WRAPPERS[wrap](model))
        assert caps.model is model and caps == capabilities(model)
    assert capabilities(WRAPPERS[wrap](local)).label == model_label(local) == local.model_path


def test_structured_output_binding_is_unwrapped_too() -> None:
    local = ChatLlamaCpp(max_tokens=5)
    binding = local.with_structured_output(Answer).steps[0]  # type: ignore[attr-defined]
    caps = capabilities(binding)
    assert caps.model is local and (caps.chat, caps.local, caps.native_tools) == (True,) * 3


def test_prompts_find_the_model_through_bindings_without_importing_it() -> None:
    local = ChatLlamaCpp(max_tokens=5)
    bound = local.bind(stop=["x"]).with_config(tags=["t"])
    assert model_of(bound) is local and model_of(ScriptedChatModel(replies=[]).bind(a=1)) is None
    chain = (PromptTemplate.from_template("{q}") | bound).with_config(tags=["outer"])
    assert model_in(chain) is local


# -- the constraint arguments per model kind -------------------------------------------------


def _kinds() -> dict[str, Any]:
    return {
        "ChatLlamaCpp": ChatLlamaCpp(max_tokens=5),
        "LlamaCpp": LlamaCpp(max_tokens=5),
        "fake chat": ScriptedChatModel(replies=[]),
        "fake chat, json": ScriptedChatModel(replies=[], constraint="json_schema"),
        "fake completion, grammar": ScriptedLLM(replies=[], constraint="grammar"),
        "other LangChain chat model": FakeListChatModel(responses=["x"]),
    }


#: kind -> (chat, local, constraint, keys of constrain(schema), of constrain(gbnf), of both)
EXPECTED = {
    "ChatLlamaCpp": (True, True, "grammar", "response_format", "grammar", "grammar"),
    "LlamaCpp": (False, True, "grammar", "grammar", "grammar", "grammar"),
    "fake chat": (True, False, "none", None, None, None),
    "fake chat, json": (True, False, "json_schema", "response_format", None, "response_format"),
    "fake completion, grammar": (False, False, "grammar", "grammar", "grammar", "grammar"),
    "other LangChain chat model": (True, False, "none", None, None, None),
}


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_each_model_kind_gets_its_own_constraint_arguments(kind: str) -> None:
    caps = capabilities(_kinds()[kind].bind(stop=["x"]))
    chat, local, constraint, *keys = EXPECTED[kind]
    assert (caps.chat, caps.local, caps.constraint) == (chat, local, constraint)
    calls = [caps.constrain(schema=SCHEMA), caps.constrain(gbnf=GBNF)]
    calls.append(caps.constrain(schema=SCHEMA, gbnf=GBNF))
    assert [next(iter(c), None) for c in calls] == keys
    if keys[0] == "response_format":
        assert calls[0]["response_format"] == {"type": "json_schema", "schema": SCHEMA}
    if keys[0] == "grammar":  # a schema becomes its grammar for a grammar-only model
        assert "root ::=" in calls[0]["grammar"]
    assert caps.constrain() == {}


@pytest.mark.parametrize(
    ("honours", "ways"),
    [({"grammar"}, ("grammar", "json_schema")), ({"openai_json"}, ("json_schema",)), (set(), ())],
)
def test_a_served_model_declares_what_its_server_honours(
    honours: set[str], ways: tuple[str, ...]
) -> None:
    with FakeOpenAIServer(honours=honours) as fake:
        model = chat_model(base_url=fake.base_url, model="served-model")
        caps = capabilities(model.bind(stop=["x"]))
        assert isinstance(model, RemoteChatModel) and caps.ways == ways
        assert (caps.chat, caps.local, caps.context_window) == (True, False, None)
        assert caps.label == model_label(model) == f"served-model at {fake.base_url}"
        schema_kwargs = caps.constrain(schema=SCHEMA)
        assert list(schema_kwargs) == (["response_format"] if ways else [])
        assert list(caps.constrain(gbnf=GBNF)) == (["grammar"] if "grammar" in ways else [])
        with pytest.warns(UserWarning, match="approximate"):
            assert caps.count_tokens("twelve chars") == 3


def test_react_step_modes_come_from_the_declared_capabilities() -> None:
    assert resolve_step_mode(LlamaCpp(), "auto", None) == "grammar"
    assert resolve_step_mode(ChatLlamaCpp(), "json_schema", None) == "json_schema"
    assert resolve_step_mode(ScriptedChatModel(replies=[]), "auto", None) == "parser"
    fake_json = ScriptedChatModel(replies=[], constraint="json_schema")
    assert resolve_step_mode(fake_json.bind(a=1), "auto", None) == "json_schema"
    with pytest.raises(OptionError, match="does not apply JSON schemas"):
        resolve_step_mode(LlamaCpp(), "json_schema", None)


# -- one set of sampling bounds --------------------------------------------------------------


def _local(field: str, value: Any) -> None:
    ChatLlamaCpp(**{field: value})


def _local_call(field: str, value: Any) -> None:
    CallOptions(**{field: value})


def _remote(field: str, value: Any) -> None:
    RemoteOptions(**{field: value})


def _server(field: str, value: Any) -> None:
    ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "hi"}], **{field: value})


def _responses(field: str, value: Any) -> None:
    name = "max_output_tokens" if field == "max_tokens" else field
    ResponseRequest(model="m", input="hi", **{name: value})


SIDES = {
    "local": _local,
    "local per call": _local_call,
    "remote": _remote,
    "server": _server,
    "server responses": _responses,
}
OUT_OF_RANGE = [
    ("max_tokens", 0),
    ("temperature", -0.1),
    ("temperature", 2.01),
    ("top_p", 0.0),
    ("top_p", 1.5),
    ("top_k", -1),
    ("min_p", -0.1),
    ("min_p", 1.5),
    ("repeat_penalty", 0.0),
]


@pytest.mark.parametrize(("field", "value"), OUT_OF_RANGE)
def test_local_remote_and_server_refuse_the_same_values(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        SamplingOptions(**{field: value})
    for side, build in SIDES.items():
        with pytest.raises((ValidationError, OptionError)):
            build(field, value)
            pytest.fail(f"{side} accepted {field}={value!r}")


@pytest.mark.parametrize(("field", "value"), [("temperature", 2.0), ("top_p", 1.0), ("top_k", 0)])
def test_and_accept_the_same_edge_values(field: str, value: Any) -> None:
    for build in SIDES.values():
        build(field, value)


def test_one_documented_set_of_defaults() -> None:
    local = ChatLlamaCpp()
    for name in ("max_tokens", "temperature", "top_p", "top_k", "min_p", "repeat_penalty"):
        assert (
            getattr(local, name)
            == getattr(DEFAULT_SAMPLING, name)
            == CallOptions.model_fields[name].default
        )
    assert local.max_retries == RemoteOptions().max_retries == DEFAULT_SAMPLING.max_retries == 2
    for name in ("timeout", "max_retries"):  # only where a call or a client has one
        with pytest.raises((ValidationError, OptionError)):
            _local(name, -1)
        with pytest.raises(ValidationError):
            _remote(name, -1)


# -- ModelSpec and the factory ---------------------------------------------------------------


def test_model_spec_round_trips_without_its_key() -> None:
    spec = ModelSpec(model="m", base_url="http://h:1/v1", api_key="sesame", temperature=0.0)
    data = spec.to_dict()
    assert "api_key" not in data and "sesame" not in json.dumps(data) + repr(spec)
    assert data == {"model": "m", "base_url": "http://h:1/v1", "kind": "chat", "temperature": 0.0}
    assert ModelSpec.from_dict(data) == spec.model_copy(update={"api_key": None})
    assert ModelSpec.from_dict({"kind": "completion", "stop": ["x"]}).to_dict() == {
        "kind": "completion",
        "stop": ["x"],
    }
    with pytest.raises(ValidationError, match="temprature"):
        ModelSpec.from_dict({"temprature": 0.5})
    with pytest.raises(ValidationError):
        ModelSpec(temperature=3.0)
    with pytest.raises(ValidationError):
        spec.model = "other"  # type: ignore[misc]


def test_chat_model_is_local_without_a_base_url_and_served_with_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local = chat_model(ModelSpec(temperature=0.0, seed=3), max_tokens=7, n_ctx=512)
    assert isinstance(local, ChatLlamaCpp) and local.model_path == str(embedded_model_path())
    assert (local.temperature, local.seed, local.max_tokens, local.n_ctx) == (0.0, 3, 7, 512)
    assert isinstance(language_model(kind="completion", max_tokens=5), LlamaCpp)
    assert isinstance(completion_model(), LlamaCpp)
    with FakeOpenAIServer() as fake:
        served = chat_model(base_url=fake.base_url, model="served-model", seed=-1)
        assert isinstance(served, RemoteChatModel) and served.seed is None  # random: server's
        monkeypatch.setenv(BASE_URL_ENV, fake.base_url)
        assert isinstance(language_model(ModelSpec(temperature=0.0)), RemoteChatModel)


@pytest.mark.parametrize(("option", "value"), [("n_ctx", 512), ("chat_format", "chatml")])
def test_a_served_model_refuses_local_only_options_saying_where_to_set_them(
    option: str, value: Any
) -> None:
    with pytest.raises(OptionError, match=f"{option}.*applies to a local GGUF") as info:
        chat_model(base_url="http://127.0.0.1:9/v1", **{option: value})
    assert "server" in (info.value.fix or "")
    with pytest.raises(OptionError, match="needs a local GGUF") as info:
        completion_model(base_url="http://127.0.0.1:9/v1")
    assert "chat model" in (info.value.fix or "")


# -- the real model --------------------------------------------------------------------------


def test_real_model_capabilities_and_one_gbnf_escaper(chat_llm: Any, completion_llm: Any) -> None:
    caps = capabilities(chat_llm.bind(max_tokens=24))
    assert caps.context_window == chat_llm.engine_key().n_ctx
    assert caps.count_tokens("Paris is a city.") == chat_llm.get_num_tokens("Paris is a city.")
    reply = chat_llm.invoke("Give a.", max_tokens=24, **caps.constrain(schema=SCHEMA))
    assert isinstance(json.loads(str(reply.content))["a"], int)
    text = 'say "hi"\\ \t\nend'
    escaped = gbnf_literal(text)
    assert escaped == '"say \\"hi\\"\\\\ \\t\\nend"'
    grammar = capabilities(completion_llm).constrain(gbnf=f"root ::= {escaped}")
    assert completion_llm.invoke("Say it:", max_tokens=24, **grammar) == text
