"""From a validated request to the generator that answers it.

Everything a request can get wrong is checked here, before any generation starts, and is a
400 naming the field: an option this server cannot honour, ``max_tokens`` over the limit, a
JSON schema that cannot become a grammar, a session request carrying a whole history.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from orchestrator.errors import OptionError
from orchestrator.server import generation, pipelines
from orchestrator.server.backends import Backends
from orchestrator.server.config import ServerConfig
from orchestrator.server.errors import APIError
from orchestrator.server.generation import Piece, SessionLocks, Tally
from orchestrator.server.schemas import (
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
    Sampling,
    decode_arguments,
)

Make = Callable[[], Iterator[Piece]]
#: The request fields that become the model's sampling options (``max_tokens`` apart).
SAMPLING = ("temperature", "top_p", "seed", "top_k", "min_p", "repeat_penalty")


def bad(message: str, param: str | None, fix: str, code: str = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code, fix=fix)


def overrides(body: Sampling, max_tokens: int | None) -> dict[str, Any]:
    """The request's sampling options as call options of the server's model: every model
    takes them all by name (a served model sends llama.cpp's ``top_k``, ``min_p`` and
    ``repeat_penalty`` in the request body itself: ``orchestrator.remote.BODY_SAMPLING``)."""
    found = {name: getattr(body, name) for name in SAMPLING if getattr(body, name) is not None}
    if max_tokens is not None:
        found["max_tokens"] = max_tokens
    return found


def check_supported(body: Any) -> None:
    """Refuse a standard option set away from its default when this server cannot honour it
    (``body.unsupported()`` names the first such field of any request schema)."""
    unsupported = body.unsupported()
    if unsupported is not None:
        name, value = unsupported
        raise bad(
            f"{name}={value!r} is not supported by this server",
            name,
            f"leave {name} out (or at its default); see docs/architecture.md (serve)",
            code="unsupported_parameter",
        )


def check_request(body: Sampling, config: ServerConfig, wanted: int | None) -> int:
    """Refuse options set to values this server cannot honour; the ``max_tokens`` to use."""
    check_supported(body)
    if wanted is not None and wanted > config.max_tokens_limit:
        raise bad(
            f"max_tokens={wanted} is over this server's limit of {config.max_tokens_limit}",
            "max_tokens",
            f"ask for at most {config.max_tokens_limit} tokens (the server's --max-tokens-limit)",
        )
    return wanted if wanted is not None else config.default_max_tokens


def to_messages(messages: list[ChatMessage]) -> list[BaseMessage]:
    """OpenAI messages as LangChain messages (``developer`` is a system message)."""
    out: list[BaseMessage] = []
    for i, m in enumerate(messages):
        if m.role in ("system", "developer"):
            out.append(SystemMessage(content=m.text()))
        elif m.role == "user":
            out.append(HumanMessage(content=m.text()))
        elif m.role == "assistant":
            out.append(AIMessage(content=m.text(), tool_calls=_calls(m, i)))
        else:
            if not m.tool_call_id:
                raise bad(
                    "a tool message needs tool_call_id",
                    f"messages[{i}].tool_call_id",
                    "set it to the id of the assistant's tool call it answers",
                )
            out.append(ToolMessage(content=m.text(), tool_call_id=m.tool_call_id))
    return out


def _calls(message: ChatMessage, i: int) -> list[dict[str, Any]]:
    calls = []
    for j, call in enumerate(message.tool_calls or ()):
        try:
            args = decode_arguments(call.function.arguments)
        except ValueError as exc:
            raise bad(
                f"the tool call's arguments are not a JSON object: {exc}",
                f"messages[{i}].tool_calls[{j}].function.arguments",
                "send the arguments as a JSON object in a string, as the server returned them",
            ) from None
        calls.append({"name": call.function.name, "args": args, "id": call.id})
    return calls


def check_schema(schema: dict[str, Any], param: str) -> None:
    """A JSON schema must become a llama.cpp grammar, or the output would not be held to it;
    checked by the library's one schema-to-grammar path, before any generation starts."""
    from orchestrator.llama.json_grammar import SchemaGrammarError, schema_gbnf

    try:
        schema_gbnf(schema, label=param)
    except SchemaGrammarError as exc:
        raise bad(exc.message, param, exc.fix or "simplify the schema") from None


def chat_call(body: ChatCompletionRequest, sampling: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``ChatLlamaCpp.stream`` for this request."""
    call = dict(sampling)
    if body.stop:
        call["stop"] = body.stop_list()
    if body.tool_choice is not None and not body.tools:
        raise bad("tool_choice is set but no tools are", "tool_choice", "send tools, or drop it")
    if body.tools:
        for i, tool in enumerate(body.tools):
            schema = tool.function.parameters or {"type": "object"}
            check_schema(schema, f"tools[{i}].function.parameters")
        call["tools"] = [t.model_dump(exclude_none=True) for t in body.tools]
        names = [t.function.name for t in body.tools]
        choice = body.tool_choice
        if choice is not None and not isinstance(choice, str) and choice.function.name not in names:
            raise bad(
                f"tool_choice names the function {choice.function.name!r}, which is not in tools",
                "tool_choice",
                f"name one of {names}, or use 'auto', 'required' or 'none'",
            )
        if choice is not None:
            call["tool_choice"] = body.tool_choice_value()
    fmt = body.response_format_value()
    if fmt is not None:
        check_schema(fmt.get("schema") or {"type": "object"}, "response_format.json_schema.schema")
        call["response_format"] = fmt
    if body.tools and fmt is not None:
        raise bad(
            "tools and response_format constrain the output in different ways",
            "response_format",
            "send one of them per request",
        )
    return call


def last_user_text(body: ChatCompletionRequest) -> str:
    last = body.messages[-1]
    if last.role != "user" or not last.text().strip():
        raise bad(
            "the last message must be a user message with text",
            f"messages[{len(body.messages) - 1}]",
            "end the messages with {'role': 'user', 'content': '...'}",
        )
    return last.text()


def plan_chat(
    body: ChatCompletionRequest,
    kind: str,
    backends: Backends,
    locks: SessionLocks,
    tally: Tally,
) -> Make:
    """The generator answering a chat request with the server's model (a GGUF, or served)
    or a pipeline. Model ``rag`` answers within its spec's ``max_tokens`` unless the request
    asks for another."""
    max_tokens = check_request(body, backends.config, body.wanted_tokens())
    if kind in ("gguf", "served"):
        return _plan_model(body, backends, locks, tally, max_tokens)
    for name in ("session_id", "tools", "response_format", "stop"):
        if getattr(body, name):
            raise bad(
                f"{name} applies to the model, not the {kind} pipeline",
                name,
                f"leave {name} out, or use the model {backends.model_id!r}",
            )
    question = last_user_text(body)
    if kind == "rag":
        rag = backends.rag
        assert rag is not None  # resolve() knows "rag" only with a spec
        if body.wanted_tokens() is None and rag.spec.model.max_tokens is not None:
            # the spec's own budget, as `orchestrator rag --spec` answers (within the limit)
            max_tokens = min(rag.spec.model.max_tokens, backends.config.max_tokens_limit)
        opts = overrides(body, max_tokens)
        return lambda: pipelines.rag_pieces(backends.chat, rag, question, opts, tally)
    if kind == "story":
        opts = overrides(body, max_tokens)
        return lambda: pipelines.story_pieces(backends.chat, question, opts, tally)
    agent_llm = pipelines.bound(backends.agent_llm, overrides(body, None))
    spec, tools = backends.agent, backends.tools
    return lambda: pipelines.agent_pieces(
        spec, agent_llm, tools, question, body.wanted_tokens(), tally
    )


def _plan_model(
    body: ChatCompletionRequest,
    backends: Backends,
    locks: SessionLocks,
    tally: Tally,
    max_tokens: int,
) -> Make:
    call = chat_call(body, overrides(body, max_tokens))
    if body.session_id is None:
        messages = to_messages(body.messages)
        return lambda: generation.chat_pieces(backends.chat, messages, call, tally)
    session_id = _session_id(body.session_id)
    if body.tools:
        raise bad(
            "a session stores text exchanges; tool calls are not stored",
            "tools",
            "drop session_id for tool calling, and send the whole conversation",
        )
    system = [m.text() for m in body.messages if m.role in ("system", "developer")]
    rest = [m for m in body.messages if m.role not in ("system", "developer")]
    if len(rest) != 1 or rest[0].role != "user":
        raise bad(
            "with session_id, send only the new user message (and optionally a system "
            "message): the session holds the history",
            "messages",
            "send [{'role': 'user', 'content': NEW MESSAGE}], or drop session_id",
        )
    text = rest[0].text()
    system_text = "\n\n".join(system) or None

    def make() -> Iterator[Piece]:
        conversation = backends.conversation(session_id, system_text)
        return generation.session_pieces(conversation, locks(session_id), text, call, tally)

    return make


def _session_id(value: str) -> str:
    from orchestrator.memory import validate_session_id

    try:
        return validate_session_id(value)
    except OptionError as exc:
        raise bad(exc.message, "session_id", exc.fix or "use a simple name") from None


def plan_completion(
    body: CompletionRequest, backends: Backends, make_tally: Callable[[], Tally]
) -> Make:
    """Each prompt in turn, as written, with its own choice index."""
    max_tokens = check_request(body, backends.config, body.wanted_tokens())
    prompts = body.prompts()
    if not prompts:
        raise bad("prompt is an empty list", "prompt", "send a string or a list of strings")
    if body.stream and len(prompts) > 1:
        raise bad(
            "a streamed completion takes one prompt",
            "prompt",
            "send one prompt per streamed request, or drop stream",
        )
    opts = overrides(body, max_tokens)
    stop = body.stop_list()

    def make() -> Iterator[Piece]:
        for index, prompt in enumerate(prompts):
            if body.echo:
                yield Piece(text=prompt, index=index)
            pieces = generation.completion_pieces(
                backends.completion, prompt, opts, stop, make_tally()
            )
            with contextlib.closing(pieces):
                for piece in pieces:
                    piece.index = index
                    yield piece

    return make
