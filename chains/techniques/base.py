"""What every prompting technique shares: the runnable base and the counted model calls.

Every technique is a runnable taking a question (a string or ``{"question": ...}``) and
returning a dict with at least ``question``, ``technique``, ``answer`` and ``model_calls``.
Options are closed (an unknown keyword is an :class:`~orchestrator.errors.OptionError` with a
"did you mean"), as everywhere in Orchestrator.

Independent calls (self-consistency's samples, one tree level's proposals or ratings) go
through :meth:`ModelCalls.together`: made as many at a time as the model decodes together, so
a local model's batched engine decodes them in the same steps. ``ainvoke`` is LangChain's:
``invoke`` on a worker thread, so the async path is the same code.

Prompts come from the prompt library and are filled through
:func:`~orchestrator.prompts.templates.instruction_prompt`, so the question (and any text the
model wrote that is fed back, such as reasoning) is defused for the model: it can never become
a control token, and a completion model gets it as one user turn.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from functools import cached_property
from typing import Any, ClassVar, TypeVar

from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from pydantic import ConfigDict, model_validator

from orchestrator.chains.llm_chain import reject_call_options
from orchestrator.errors import OptionError, reject_unknown_options
from orchestrator.models import Capabilities, capabilities
from orchestrator.models.together import map_together, parallel_calls
from orchestrator.prompts.templates import instruction_prompt

T = TypeVar("T")
R = TypeVar("R")


def text_of(output: Any) -> str:
    """The text of a model's output: a chat message's content or a completion string."""
    if isinstance(output, BaseMessage):
        return output.content if isinstance(output.content, str) else str(output.content)
    return str(output)


def question_of(input: Any, where: str) -> str:
    """The question in a technique's input: the string itself or its ``question`` key."""
    if isinstance(input, str):
        question = input
    elif isinstance(input, Mapping) and isinstance(input.get("question"), str):
        question = input["question"]
    else:
        got = sorted(input) if isinstance(input, Mapping) else type(input).__name__
        raise OptionError(
            f"{where} needs a question, got {got}",
            fix='pass the question as a string or as {"question": "..."}',
        )
    if not question.strip():
        raise OptionError(f"{where} got an empty question", fix="ask something")
    return question


class ModelCalls:
    """One invocation's model calls, counted (a technique returns ``model_calls``)."""

    def __init__(self, llm: Runnable[Any, Any]) -> None:
        self.llm = llm
        self.count = 0
        self._counting = threading.Lock()  # calls made together count from several threads

    @cached_property
    def capabilities(self) -> Capabilities:
        """What the model can do (asked once per invocation)."""
        return capabilities(self.llm)

    def send(self, prompt: Any, config: RunnableConfig | None, **options: Any) -> str:
        """``prompt`` (text or messages) to the model as it is; the reply's text."""
        with self._counting:
            self.count += 1
        return text_of(self.llm.invoke(prompt, config, **options))

    def together(
        self,
        work: Callable[[T], R],
        items: Iterable[T],
        config: RunnableConfig | None,
        *,
        until: Callable[[], bool] | None = None,
    ) -> list[R]:
        """``work(item)`` for independent items (each making its own calls through this
        object), made together: as many at a time as the model decodes together (at most the
        config's ``max_concurrency``), results in item order. ``until``: asked before each
        item starts; once true no other starts (see
        :func:`~orchestrator.models.together.map_together`)."""
        limit = parallel_calls(self.llm, config)
        return map_together(work, items, limit=limit, until=until)

    def ask(
        self,
        template: str,
        values: Mapping[str, Any],
        config: RunnableConfig | None,
        *,
        gbnf: str | None = None,
        **options: Any,
    ) -> str:
        """One model call: the library ``template`` with ``values`` defused, as a user turn.
        ``gbnf`` constrains the reply where the model honours grammars
        (:meth:`~orchestrator.models.Capabilities.constrain`; elsewhere the reply is parsed as
        it comes); ``options`` (``seed``, ``max_tokens``, ``stop``, ...) go to the model."""
        prompt = instruction_prompt(self.llm, template).format(**values)
        if gbnf is not None:
            options.update(self.capabilities.constrain(gbnf=gbnf))
        return self.send(prompt, config, **options).strip()


class Technique(RunnableSerializable[Any, dict[str, Any]]):
    """The base of the technique runnables: the model, closed options, counted calls.

    A technique writes :meth:`run`; ``invoke`` adds ``question``, ``technique`` and
    ``model_calls`` to what it returns."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    #: The technique's name in :data:`~orchestrator.chains.techniques.PROMPT_TECHNIQUES`.
    technique: ClassVar[str] = ""

    llm: Runnable[Any, Any]

    @model_validator(mode="before")
    @classmethod
    def _closed(cls, data: Any) -> Any:
        reject_unknown_options(data, cls)
        return data

    def invoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        reject_call_options(kwargs, f"{type(self).__name__}.invoke")
        question = question_of(input, type(self).__name__)
        calls = ModelCalls(self.llm)
        result = self.run(question, calls, config)
        return {
            "question": question,
            "technique": self.technique,
            **result,
            "model_calls": calls.count,
        }

    def run(
        self, question: str, calls: ModelCalls, config: RunnableConfig | None
    ) -> dict[str, Any]:
        """The technique's result for ``question`` (at least ``answer``), calling the model
        through ``calls``."""
        raise NotImplementedError
