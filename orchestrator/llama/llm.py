"""``LlamaCpp``: a completion model. The prompt goes to the model exactly as written.

"As written" includes special tokens: ``<|im_start|>`` in the prompt is parsed as the control
token, because a prompt that follows a chat template must be able to open and close turns.
The flip side: a *value* filled into such a prompt (user input, a retrieved document, a tool
result) must be defused where it is filled in (``Engine.defuse_specials`` /
``orchestrator.prompts.safety.defuse``); this class cannot tell template from value.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models.llms import BaseLLM
from langchain_core.outputs import Generation, GenerationChunk, LLMResult

from orchestrator.llama.aio import relay_chunks
from orchestrator.llama.base import LlamaSettings
from orchestrator.llama.chat import turn_markers
from orchestrator.llama.engine import Usage
from orchestrator.models.capabilities import Capabilities


class LlamaCpp(LlamaSettings, BaseLLM):
    """A GGUF model through llama.cpp, as a LangChain completion LLM.

    Takes the arguments of ``langchain_community.llms.LlamaCpp`` (``model_path``,
    ``n_gpu_layers``, ``max_tokens``, ``n_ctx``, ``seed``, ``temperature``, ``top_p``, ``top_k``,
    ``stop``, ``verbose``); objects naming the same file share one loaded engine. A call may
    pass ``grammar=`` (GBNF text) to constrain what is generated. LangChain's standard
    parameters (``model``, ``timeout``, ``max_retries``, ``api_key``, ...) mean what they mean
    for :class:`~orchestrator.llama.chat.ChatLlamaCpp` (one rule:
    :class:`~orchestrator.llama.base.LlamaSettings`).
    """

    @property
    def _llm_type(self) -> str:
        return "orchestrator-llamacpp"

    def model_capabilities(self) -> Capabilities:
        """A local completion model: constrained by ``grammar=`` GBNF only (a JSON schema is
        turned into its grammar by the caller, see ``Capabilities.constrain``)."""
        return self.local_capabilities(chat=False, ways=("grammar",))

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": str(self.info.path), "n_ctx": self.engine_key().n_ctx}

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        usage = Usage()
        grammar = self.call_grammar(kwargs.pop("grammar", None))
        tokens = self.prompt_tokens(prompt)
        for text in self.generate_text(tokens, kwargs, self.stop_list(stop), usage, grammar):
            chunk = GenerationChunk(text=text)
            if run_manager:
                run_manager.on_llm_new_token(text, chunk=chunk)
            yield chunk
        yield GenerationChunk(
            text="",
            generation_info={"finish_reason": usage.finish_reason, "usage": self.usage_dict(usage)},
        )

    def stop_list(self, stop: Sequence[str] | None, extra: Sequence[str] = ()) -> list[str]:
        """Stop sequences for a call: the object's, the call's, and this model's
        :func:`~orchestrator.llama.chat.turn_markers` (so every caller of the loop gets them)."""
        return super().stop_list(stop, (*extra, *turn_markers(self)))

    async def _astream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[GenerationChunk]:
        async for chunk in relay_chunks(lambda: self._stream(prompt, stop, **kwargs), run_manager):
            yield chunk

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        generations: list[list[Generation]] = []
        totals: dict[str, int] = {}
        for prompt in prompts:
            final: GenerationChunk | None = None
            for chunk in self._stream(prompt, stop, run_manager, **kwargs):
                final = chunk if final is None else final + chunk
            assert final is not None
            generations.append([Generation(text=final.text, generation_info=final.generation_info)])
            for key, value in (final.generation_info or {}).get("usage", {}).items():
                totals[key] = totals.get(key, 0) + value
        return LLMResult(generations=generations, llm_output={"token_usage": totals})

    def wrap_user_prompt(self, text: str) -> str:
        """``text`` as one user turn in this model's chat format (for instruction models)."""
        from orchestrator.llama.chat import render_messages

        return render_messages(self, [{"role": "user", "content": text}])
