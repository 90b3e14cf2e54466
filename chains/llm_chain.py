"""``LLMChain``: prompt -> model -> text, returning its inputs plus ``output_key``.

The book composes these with ``|`` (``title | character | story``): each chain passes through
what it received and adds one key, so the last one returns every intermediate field. With a
``memory`` it reads the history before the call and saves the exchange after it.

Every value filled into the prompt (inputs, the history) is defused for the model first
(:func:`~orchestrator.prompts.templates.safe_values`), whatever class the prompt is: a
summary, a generated title or a remembered message quoting ``<|im_start|>`` stays text.
What the chain returns and what the memory stores are the values as given.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from langchain_core.language_models import BaseLanguageModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import BasePromptTemplate
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from pydantic import ConfigDict

from orchestrator.errors import OptionError
from orchestrator.prompts.templates import PromptTemplate, safe_values


def reject_call_options(kwargs: dict[str, Any], where: str) -> None:
    """Chains take no per-call options: silently dropping ``max_tokens=`` would be worse."""
    if kwargs:
        raise OptionError(
            f"{where} got call options {sorted(kwargs)} it would not use",
            fix="set model options on the model instead, e.g. llm=llm.bind(max_tokens=64)",
        )


@runtime_checkable
class ChainMemory(Protocol):
    """What a chain needs from a memory (every class in ``memory/`` provides it)."""

    @property
    def memory_variables(self) -> list[str]: ...

    def load_memory_variables(self, inputs: dict[str, Any]) -> dict[str, Any]: ...

    def save_context(self, inputs: dict[str, Any], outputs: dict[str, str]) -> None: ...


class LLMChain(RunnableSerializable[Any, dict[str, Any]]):
    """A prompt and a model, as one Runnable returning ``{**inputs, output_key: text}``."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    llm: Runnable[Any, Any]
    prompt: BasePromptTemplate
    output_key: str = "text"
    memory: Any = None
    verbose: bool = False

    def model_post_init(self, context: Any) -> None:
        if self.memory is not None and not isinstance(self.memory, ChainMemory):
            raise OptionError(
                f"memory={type(self.memory).__name__} lacks load_memory_variables/save_context",
                fix="pass a memory from the memory package, e.g. ConversationBufferMemory()",
            )

    @property
    def input_keys(self) -> list[str]:
        """The prompt variables the caller must supply (memory fills the rest)."""
        memory_keys = set(self.memory.memory_variables) if self.memory is not None else set()
        return [v for v in self.prompt.input_variables if v not in memory_keys]

    def _prepare(self, input: Any) -> dict[str, Any]:
        if isinstance(input, dict):
            inputs = dict(input)
        else:
            keys = self.input_keys
            if len(keys) != 1:
                raise OptionError(
                    f"LLMChain got a single value but its prompt needs {keys}",
                    fix="pass a dict with those keys",
                )
            inputs = {keys[0]: input}
        missing = [k for k in self.input_keys if k not in inputs]
        if missing:
            raise OptionError(
                f"LLMChain is missing input(s) {missing}; it got {sorted(inputs)}",
                fix="pass every variable the prompt names",
            )
        if self.memory is not None:
            inputs.update(self.memory.load_memory_variables(inputs))
        return inputs

    def _pipeline(self) -> Runnable[Any, str]:
        return self.prompt | self.llm | StrOutputParser()

    def invoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        reject_call_options(kwargs, "LLMChain.invoke")
        inputs = self._prepare(input)
        text = self._pipeline().invoke(safe_values(self.llm, inputs), config).strip()
        return self._finish(inputs, text)

    async def ainvoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        reject_call_options(kwargs, "LLMChain.ainvoke")
        inputs = self._prepare(input)
        text = (await self._pipeline().ainvoke(safe_values(self.llm, inputs), config)).strip()
        return self._finish(inputs, text)

    def _finish(self, inputs: dict[str, Any], text: str) -> dict[str, Any]:
        if self.memory is not None:
            own = {k: v for k, v in inputs.items() if k not in self.memory.memory_variables}
            self.memory.save_context(own, {self.output_key: text})
        return {**inputs, self.output_key: text}

    def predict(self, **kwargs: Any) -> str:
        """The generated text alone (the legacy ``LLMChain.predict``)."""
        return str(self.invoke(kwargs)[self.output_key])

    def run(self, *args: Any, **kwargs: Any) -> str:
        """Legacy ``LLMChain.run``: one positional value or keyword inputs."""
        return str(self.invoke(args[0] if args else kwargs)[self.output_key])

    @classmethod
    def from_string(cls, llm: BaseLanguageModel[Any], template: str, **kwargs: Any) -> LLMChain:
        prompt = PromptTemplate.from_template(template).for_model(llm)
        return cls(llm=llm, prompt=prompt, **kwargs)
