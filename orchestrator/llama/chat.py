"""``ChatLlamaCpp``: a chat model rendering messages with the model's own chat template."""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.chat_models import (
    BaseChatModel,
    LangSmithParams,
    generate_from_stream,
)
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool

from orchestrator.errors import ChatFormatError, TruncatedOutputError, unknown_option
from orchestrator.llama import structured
from orchestrator.llama.aio import relay_chunks
from orchestrator.llama.base import CALL_OPTIONS, LlamaSettings
from orchestrator.llama.engine import Usage
from orchestrator.models.capabilities import Capabilities
from orchestrator.prompts import (
    ChatFormat,
    ChatTemplateError,
    format_from_template,
    model_chat_format,
    render_chat,
)
from orchestrator.prompts.safety import GENERIC_CONTROL

#: Keyword arguments a call may carry besides sampling overrides.
_CALL_EXTRAS = (
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "grammar",
    "ls_structured_output_format",
)


def chat_format_of(model: LlamaSettings) -> ChatFormat:
    """The model's chat format: a forced built-in, else the GGUF template, else the format
    inferred from the file's architecture / vocabulary (``source`` says which)."""
    if model.chat_format:
        forced = format_from_template(None, default=model.chat_format)
        return replace(forced, source="chat_format option")
    info = model.info
    return model_chat_format(info.chat_template, info.architecture, info.control_tokens)


def render_messages(model: LlamaSettings, messages: Sequence[Mapping[str, str]]) -> str:
    """Render role/content dicts into the prompt string for ``model``. Control-token text in
    the content (``<|im_end|>`` typed by a user, found in a document or a tool result) is
    defused first, so only the template itself can open or close a turn."""
    info, engine = model.info, model.engine
    safe = [{"role": m["role"], "content": engine.defuse_specials(m["content"])} for m in messages]
    try:
        return render_chat(
            safe, chat_format_of(model), bos_token=info.bos_token, eos_token=info.eos_token
        )
    except ChatTemplateError as exc:
        raise ChatFormatError(
            f"the chat template of {info.path.name} rejected these messages: {exc}",
            fix="use a built-in format instead: chat_format='phi3', 'chatml' or 'llama3' "
            "(CLI: --chat-format), or drop the system message if the model has no system role",
        ) from exc


def turn_markers(model: LlamaSettings) -> tuple[str, ...]:
    """Every string that opens or closes a turn for ``model``; generated text ends before
    the first of them, so an answer never carries protocol markup or an invented next turn.

    That is the markup of the active chat format and of the GGUF's own template (both found
    by rendering a probe conversation, so markers a template builds at run time, like
    Phi-3's ``'<|' + role + '|>'``, are included), the format's end-of-turn strings and the
    text of the model's end-of-generation tokens.
    """
    info, engine = model.info, model.engine
    active = chat_format_of(model)
    own = model_chat_format(info.chat_template, info.architecture, info.control_tokens)
    found: dict[str, None] = {}
    for fmt in dict.fromkeys((active, own)):
        markup = _markup(fmt, engine.special_pattern, info.bos_token, info.eos_token)
        found.update(dict.fromkeys((*fmt.end_of_turn, *markup)))
    found.update(dict.fromkeys(engine.end_of_generation_texts))
    return tuple(m for m in found if m)


_PROBE = "probe"


@functools.lru_cache(maxsize=32)
def _markup(
    fmt: ChatFormat, special: re.Pattern[str] | None, bos: str, eos: str
) -> tuple[str, ...]:
    """Control-token shaped strings in a rendered probe conversation (cached per format)."""
    turns = [("system", _PROBE), ("user", _PROBE), ("assistant", _PROBE), ("user", _PROBE)]
    for messages in (turns, turns[1:]):  # some templates reject a system turn
        try:
            probe = [{"role": role, "content": content} for role, content in messages]
            text = render_chat(probe, fmt, bos_token=bos, eos_token=eos)
        except ChatTemplateError:
            continue
        shapes = GENERIC_CONTROL.findall(text) + (special.findall(text) if special else [])
        return tuple(dict.fromkeys(shapes))
    return ()


class ChatLlamaCpp(LlamaSettings, BaseChatModel):
    """A GGUF model through llama.cpp, as a LangChain chat model.

    Streaming, stop sequences, token usage (``usage_metadata``), tool calling and structured
    output. Tool calls and structured output are generated under a llama.cpp grammar built
    from the JSON schema (string ``pattern`` s and local ``$ref`` s included), so even a 135M
    model returns JSON that parses; a schema a grammar cannot express is a
    ``SchemaGrammarError`` naming its path.

    LangChain's standard parameters: ``model`` (= ``model_path``), ``temperature``,
    ``max_tokens``, ``stop``, ``timeout`` (seconds a call may generate for, then
    ``GenerationTimeoutError``), ``max_retries`` (retries of a generation llama.cpp failed
    before any text) and ``api_key`` (ignored, one warning per process); see
    :class:`~orchestrator.llama.base.LlamaSettings`.
    """

    @property
    def _llm_type(self) -> str:
        return "orchestrator-chat-llamacpp"

    def model_capabilities(self) -> Capabilities:
        """A local chat model: ``grammar=`` GBNF, or a JSON schema in ``response_format=``
        (decoded under the schema's grammar); ``bind_tools`` gives tool calls."""
        return self.local_capabilities(chat=True, ways=("grammar", "json_schema"))

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": str(self.info.path), "chat_format": chat_format_of(self).name}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "llamacpp"
        params["ls_model_name"] = kwargs.get("model") or self.info.path.name
        params["ls_model_type"] = "chat"
        params["ls_temperature"] = kwargs.get("temperature", self.temperature)
        params["ls_max_tokens"] = kwargs.get("max_tokens", self.max_tokens)
        if stop or self.stop:
            params["ls_stop"] = LlamaSettings.stop_list(self, stop)  # the caller's, no markers
        return params

    def stop_list(self, stop: Sequence[str] | None, extra: Sequence[str] = ()) -> list[str]:
        """Stop sequences for a call: the object's, the call's, and this model's
        :func:`turn_markers` (so every caller of the generation loop gets them)."""
        return super().stop_list(stop, (*extra, *turn_markers(self)))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        overrides, extras = _split_kwargs(kwargs)
        plan = structured.plan_call(self, messages, extras)
        tokens = self.prompt_tokens(render_messages(self, plan.messages))
        usage = Usage()
        pieces = self.generate_text(tokens, overrides, self.stop_list(stop), usage, plan.grammar)
        if plan.buffer_output:
            yield structured.final_chunk("".join(pieces), plan)
        else:
            yield from _text_chunks(pieces, run_manager)
        # a decided plain answer (its grammar only keeps it from starting like a call) may be cut
        answering = plan.decision is not None and not plan.tool_names
        cut = usage.finish_reason in ("length", "timeout")
        if plan.grammar is not None and not answering and cut:
            raise TruncatedOutputError(
                f"constrained output was cut off ({usage.finish_reason}) after "
                f"{usage.completion_tokens} tokens, before the JSON was complete",
                fix="raise max_tokens / timeout (per call or on the model) or ask for less",
            )
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata={
                    "input_tokens": usage.prompt_tokens,
                    "output_tokens": usage.completion_tokens,
                    "total_tokens": usage.total_tokens,
                    "input_token_details": {"cache_read": usage.cached_tokens},
                },
                response_metadata={
                    "finish_reason": usage.finish_reason,
                    "model_name": self.info.name,
                    **(
                        {"tool_decision": plan.decision.as_metadata()}
                        if plan.decision is not None
                        else {}
                    ),
                },
                chunk_position="last",
            )
        )

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        async for chunk in relay_chunks(
            lambda: self._stream(messages, stop, **kwargs), run_manager
        ):
            yield chunk

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        result = generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))
        generation = result.generations[0]
        if isinstance(generation, ChatGeneration) and isinstance(generation.message.content, str):
            generation.message.content = generation.message.content.strip()
        return result

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | bool | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:  # type: ignore[override]
        """Bind tools; ``tool_choice`` may be ``auto``, ``none``, ``any``/``required`` or a name.

        With ``auto`` (the default) the model decides whether to call a tool or answer, by
        the likelihoods it gives the request (:mod:`orchestrator.llama.tool_choice`); a call
        is decoded under a grammar admitting only the tools it pointed to, with arguments
        valid for their schemas. ``parallel_tool_calls=True`` lets one turn hold several
        calls (a JSON array of them)."""
        formatted = [structured.openai_tool(tool) for tool in tools]
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def with_structured_output(  # type: ignore[override]
        self,
        schema: Mapping[str, Any] | type,
        *,
        method: Literal["json_schema", "function_calling", "json_mode"] = "json_schema",
        include_raw: bool = False,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """Output that matches ``schema``, decoded under a grammar so it always parses."""
        return structured.with_structured_output(self, schema, method, include_raw, **kwargs)


def _split_kwargs(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    overrides, extras = {}, {}
    for name, value in kwargs.items():
        if name in CALL_OPTIONS:
            overrides[name] = value
        elif name in _CALL_EXTRAS:
            extras[name] = value
        else:
            raise unknown_option(name, (*CALL_OPTIONS, *_CALL_EXTRAS), where="ChatLlamaCpp call")
    return overrides, extras


def _text_chunks(
    pieces: Iterator[str], run_manager: CallbackManagerForLLMRun | None
) -> Iterator[ChatGenerationChunk]:
    """Pieces as chunks, trimmed like ``invoke`` trims the whole answer: leading whitespace
    (SentencePiece's space before the first word) is dropped, and trailing whitespace is
    held back until more text follows, so a streamed answer joins to exactly the invoked one."""
    started, held = False, ""
    for piece in pieces:
        text = held + piece if started else piece.lstrip()
        body = text.rstrip()
        held = text[len(body) :]
        if not body:
            continue
        started = True
        chunk = ChatGenerationChunk(message=AIMessageChunk(content=body))
        if run_manager:
            run_manager.on_llm_new_token(body, chunk=chunk)
        yield chunk
