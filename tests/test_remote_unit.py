"""Served models without a model: options, URLs, errors, the probe and the request body,
against a fake OpenAI-shaped server (tests/remote_support.py) or none at all."""

from __future__ import annotations

import json
import warnings

import pytest
from ready_support import free_port
from remote_support import FakeOpenAIServer
from typer.testing import CliRunner

from orchestrator.agents.grammar import (
    final_answer_from_json,
    final_schema,
    step_from_json,
    step_schema,
)
from orchestrator.agents.react import create_react_agent, resolve_step_mode
from orchestrator.agents.tools.math_tool import CalculatorTool
from orchestrator.cli.app import app
from orchestrator.errors import OptionError
from orchestrator.remote import (
    API_KEY_ENV,
    BASE_URL_ENV,
    Endpoint,
    RemoteModelError,
    approx_tokens,
    normalise_base_url,
    remote_chat_model,
    resolve_endpoint,
)
from orchestrator.remote_model import PROBE_WORD, RemoteChatModel
from orchestrator.testing import ScriptedChatModel

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_endpoint_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    monkeypatch.delenv(API_KEY_ENV, raising=False)


def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there


# -- URLs, environment, options -------------------------------------------------------------


def test_base_url_is_normalised() -> None:
    assert normalise_base_url("http://gpu-box:8000") == "http://gpu-box:8000/v1"
    assert normalise_base_url("http://gpu-box:8000/v1/") == "http://gpu-box:8000/v1"
    assert normalise_base_url("https://h/api/v1") == "https://h/api/v1"
    for bad in ("gpu-box:8000", "ftp://h/v1", "http://:80", "http://h:99999999"):
        with pytest.raises(OptionError):
            normalise_base_url(bad)


def test_environment_gives_base_url_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_endpoint() == (None, None)
    monkeypatch.setenv(BASE_URL_ENV, "http://box:9000")
    monkeypatch.setenv(API_KEY_ENV, "k1")
    assert resolve_endpoint() == ("http://box:9000/v1", "k1")
    assert resolve_endpoint("http://other:1/v1", "k2") == ("http://other:1/v1", "k2")
    assert Endpoint.resolve() == Endpoint("http://box:9000/v1", "k1")


def test_api_key_without_base_url_is_an_error() -> None:
    with pytest.raises(OptionError, match="--api-key is for a served model"):
        resolve_endpoint(None, "secret")


def test_options_are_closed() -> None:
    with FakeOpenAIServer() as fake:
        with pytest.raises(OptionError, match="did you mean 'temperature'"):
            remote_chat_model(fake.base_url, temprature=0.2)
        with pytest.raises(OptionError, match="n_ctx is for local GGUF models"):
            remote_chat_model(fake.base_url, n_ctx=2048)
        assert fake.requests == []  # rejected before anything was sent


# -- the server check -------------------------------------------------------------------------


def test_unreachable_server_names_url_and_fix() -> None:
    url = closed_url()
    with pytest.raises(RemoteModelError) as caught:
        remote_chat_model(url, "m")
    assert url in caught.value.message
    assert "llama_cpp.server" in (caught.value.fix or "")


def test_unknown_model_lists_the_served_ones() -> None:
    with FakeOpenAIServer(models=["phi-3-mini", "qwen"]) as fake:
        with pytest.raises(RemoteModelError, match="does not serve 'phi-3'") as caught:
            remote_chat_model(fake.base_url, "phi-3")
        assert "'phi-3-mini', 'qwen'" in caught.value.message
        assert "did you mean 'phi-3-mini'" in (caught.value.fix or "")
        with pytest.raises(OptionError, match="which model"):
            remote_chat_model(fake.base_url)  # two served: the name is needed
    with FakeOpenAIServer(models=["only-one"]) as fake:
        assert remote_chat_model(fake.base_url).model_name == "only-one"


def test_wrong_key_is_named() -> None:
    with FakeOpenAIServer(key="sesame") as fake:
        with pytest.raises(RemoteModelError, match="refused the API key") as caught:
            remote_chat_model(fake.base_url, "served-model", "wrong")
        assert API_KEY_ENV in (caught.value.fix or "")
        model = remote_chat_model(fake.base_url, "served-model", "sesame")
        assert model.invoke("hi").content == "plain words"


async def test_async_calls_use_the_same_body_and_errors() -> None:
    with FakeOpenAIServer(honours={"grammar"}) as fake:
        model = remote_chat_model(fake.base_url, "served-model", max_tokens=5)
        reply = await model.ainvoke("hi", grammar='root ::= "yes"')
        assert reply.content == "yes"
        fake.status = 503
        with pytest.raises(RemoteModelError, match="HTTP 503"):
            await model.ainvoke("hi")
    body = fake.requests[1]  # after the probe
    assert body["max_tokens"] == 5 and body["grammar"] == 'root ::= "yes"'


def test_refused_request_is_a_remote_error() -> None:
    message = "This model's maximum context length is 2048 tokens. However, you requested 3035"
    with FakeOpenAIServer(status=400, error=message) as fake:
        model = remote_chat_model(fake.base_url, "served-model")
        with pytest.raises(RemoteModelError, match="maximum context length") as caught:
            model.invoke("hi")
        assert "--n_ctx" in (caught.value.fix or "")


# -- the request body -------------------------------------------------------------------------


def test_max_tokens_and_llama_options_travel_by_their_own_names() -> None:
    with FakeOpenAIServer() as fake:
        model = remote_chat_model(
            fake.base_url, "served-model", max_tokens=7, top_k=5, repeat_penalty=1.1
        )
        model.invoke("hi")
        model.invoke("hi", max_tokens=3)
    first, second = fake.requests
    assert first["max_tokens"] == 7 and "max_completion_tokens" not in first
    assert (first["top_k"], first["repeat_penalty"]) == (5, 1.1)
    assert second["max_tokens"] == 3


def test_llama_options_per_call_travel_in_the_body() -> None:
    """A spec's sampling bound per call (as serve's rag binds it) reaches the body; the openai
    client has no argument for these and would refuse them."""
    with FakeOpenAIServer() as fake:
        model = remote_chat_model(fake.base_url, "served-model", top_k=5)
        bound = model.bind(top_k=20, min_p=0.1, repeat_penalty=1.2, temperature=0.0)
        assert bound.invoke("hi").content == "plain words"
        model.invoke("hi", min_p=None, extra_body={"repeat_penalty": 1.3})
        model.invoke("hi", max_retries=model.max_retries)  # the model's own: accepted
        with pytest.raises(OptionError, match="max_retries"):
            model.invoke("hi", max_retries=model.max_retries + 1)
    first, second, third = fake.requests
    assert "max_retries" not in third
    assert (first["top_k"], first["min_p"], first["repeat_penalty"]) == (20, 0.1, 1.2)
    assert first["temperature"] == 0.0
    assert second["top_k"] == 5 and second["repeat_penalty"] == 1.3 and "min_p" not in second


def test_grammar_server_gets_grammars_for_schemas_too() -> None:
    with FakeOpenAIServer(honours={"grammar"}) as fake:
        model = remote_chat_model(fake.base_url, "served-model")
        assert model.structured_mode() == "grammar"
        model.invoke("x", grammar='root ::= "yes"')
        schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
        model.invoke("x", response_format={"type": "json_schema", "schema": schema})
    probe, direct, structured = fake.requests
    assert probe["max_tokens"] == 24 and probe["grammar"].endswith(f'"{PROBE_WORD}"')
    assert direct["grammar"] == 'root ::= "yes"'
    assert "root ::=" in structured["grammar"] and "response_format" not in structured


@pytest.mark.parametrize(
    ("honours", "dialect", "sent"),
    [({"openai_json"}, "openai", "json_schema"), ({"llama_json"}, "llama", "json_object")],
)
def test_schema_server_gets_its_own_dialect(honours: set[str], dialect: str, sent: str) -> None:
    with FakeOpenAIServer(honours=honours) as fake:
        model = remote_chat_model(fake.base_url, "served-model")
        assert (model.structured_mode(), model.json_dialect()) == ("json_schema", dialect)
        schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
        model.invoke("x", response_format={"type": "json_schema", "schema": schema})
        with pytest.raises(RemoteModelError, match="does not apply GBNF grammars"):
            model.invoke("x", grammar='root ::= "yes"')
    last = fake.requests[-1]
    assert last["response_format"]["type"] == sent and "grammar" not in last


def test_unconstrained_server_warns_once_and_probes_once() -> None:
    with FakeOpenAIServer(reply='{"a": 1}') as fake:
        model = remote_chat_model(fake.base_url, "served-model")
        again = remote_chat_model(fake.base_url, "served-model")
        assert model.structured_mode() == "none" and again.structured_mode() == "none"
        probes = len(fake.requests)
        schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
        with pytest.warns(UserWarning, match="constrains output neither"):
            model.invoke("x", response_format={"type": "json_schema", "schema": schema})
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model.invoke("x", response_format={"type": "json_schema", "schema": schema})
    assert probes == 3  # grammar, OpenAI schema, llama schema; the second model reused them
    assert "response_format" not in fake.requests[-1]


def test_token_counts_are_approximate_and_say_so() -> None:
    with FakeOpenAIServer() as fake:
        model = remote_chat_model(fake.base_url, "served-model")
        with pytest.warns(UserWarning, match="approximate"):
            assert model.get_num_tokens("twelve chars") == 3 == approx_tokens("twelve chars")
        with pytest.raises(RemoteModelError, match="token ids"):
            model.get_token_ids("x")
    assert isinstance(model, RemoteChatModel)


# -- agent steps ------------------------------------------------------------------------------


def test_step_modes_follow_the_server() -> None:
    tools = [CalculatorTool()]
    for honours, expected in [({"grammar"}, "grammar"), ({"openai_json"}, "json_schema")]:
        with FakeOpenAIServer(honours=honours, models=[f"m-{expected}"]) as fake:
            agent = create_react_agent(remote_chat_model(fake.base_url), tools)
            assert agent.resolved_step_mode == expected
    with FakeOpenAIServer(models=["m-plain"]) as fake:
        llm = remote_chat_model(fake.base_url)
        assert create_react_agent(llm, tools).resolved_step_mode == "parser"
        with pytest.raises(OptionError, match="does not apply GBNF grammars"):
            create_react_agent(llm, tools, step_mode="grammar").resolved_step_mode  # noqa: B018


def test_step_mode_of_other_models() -> None:
    fake = ScriptedChatModel(replies=["x"])
    assert resolve_step_mode(fake, "auto", None) == "parser"
    with pytest.raises(OptionError, match="ScriptedChatModel does not apply GBNF grammars"):
        resolve_step_mode(fake, "grammar", None)
    assert resolve_step_mode(fake, "auto", False) == "parser"


def test_json_steps_become_react_text() -> None:
    schema = step_schema(["calculator"])
    assert schema["properties"]["action"]["enum"] == ["calculator", "Final Answer"]  # type: ignore[index]
    step = json.dumps({"thought": "multiply\nit", "action": "calculator", "action_input": "2*3"})
    assert step_from_json(step) == "Thought: multiply it\nAction: calculator\nAction Input: 2*3"
    final = json.dumps({"thought": "done", "action": "Final Answer", "action_input": "6"})
    assert step_from_json(final) == "Thought: done\nFinal Answer: 6"
    assert step_from_json('{"thought": "cut') == '{"thought": "cut'
    assert final_schema()["required"] == ["answer"]
    assert final_answer_from_json('{"answer": "six"}') == " six"


# -- the command line -------------------------------------------------------------------------


def test_cli_bad_url_exits_2_with_the_url() -> None:
    url = closed_url()
    result = runner.invoke(app, ["ask", "hi", "--base-url", url])
    assert result.exit_code == 2
    assert url in result.output and "fix:" in result.output
    result = runner.invoke(app, ["ask", "hi", "--base-url", "not a url"])
    assert result.exit_code == 2 and "is not a server URL" in result.output


def test_cli_honours_orchestrator_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAIServer(models=["env-model"]) as fake:
        monkeypatch.setenv(BASE_URL_ENV, fake.base_url)
        result = runner.invoke(app, ["ask", "hi", "--chat-format", "chatml"])
        assert result.exit_code == 2
        assert "not to one served at" in result.output and fake.base_url in result.output
        result = runner.invoke(app, ["agent", "2+2?", "--mode", "completion"])
        assert result.exit_code == 2 and "needs a local GGUF" in result.output
        result = runner.invoke(app, ["rag", "q", "--index", "nowhere", "--rerank", "llm"])
        assert result.exit_code == 2 and "rerank llm" in result.output
    assert fake.requests == []  # every refusal came before a generation


def test_cli_tokens_memory_needs_a_budget_with_a_served_model() -> None:
    with FakeOpenAIServer() as fake:
        result = runner.invoke(
            app, ["chat", "--base-url", fake.base_url, "--memory", "tokens"], input="hi\n"
        )
    assert result.exit_code == 2 and "--memory-tokens" in result.output
