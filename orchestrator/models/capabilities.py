"""What a model can do, answered once, through any ``.bind`` wrapper.

Each model class declares its own capabilities in one method, ``model_capabilities()``
(``ChatLlamaCpp``, ``LlamaCpp``, ``RemoteChatModel`` and the fakes in
:mod:`orchestrator.testing`); :func:`capabilities` unwraps the bindings (the one loop that does
it) and asks the model. Code that must choose between ``grammar=`` and ``response_format=``,
or needs the model's label, context window or a token count, asks here instead of testing
classes. A model class that declares nothing (another LangChain model) gets the conservative
answer: no constraint the project knows it honours, LangChain's own token counter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.runnables import RunnableBinding

#: How output can be constrained: a GBNF ``grammar=``, a JSON schema in ``response_format=``.
Constraint = Literal["grammar", "json_schema", "none"]
Way = Literal["grammar", "json_schema"]


def _no_ways() -> tuple[Way, ...]:
    return ()


def _unknown_window() -> int | None:
    return None


@dataclass(frozen=True)
class Capabilities:
    """A model and what it can do. The ways of constraining output and the context window
    are found on first use (a served model's server is asked then, once per process)."""

    model: Any
    """The model itself (bindings removed)."""
    chat: bool
    """A chat model (messages in, a message out) rather than a completion model."""
    local: bool
    """Runs in process on a GGUF (llama.cpp) rather than on a server."""
    label: str
    """How traces and the CLI name the model: the GGUF path, ``NAME at URL``, a class name."""
    native_tools: bool = False
    """``bind_tools`` yields structured tool calls."""
    parallel: int = 1
    """Calls the model decodes together (a local model's ``n_parallel``): independent calls
    (samples, several questions, a judge's prompts) are made this many at a time
    (:mod:`orchestrator.models.together`). 1 where the model does not say: one at a time."""
    find_ways: Callable[[], tuple[Way, ...]] = field(default=_no_ways, repr=False, compare=False)
    """The call arguments the model honours, strongest first (called once, lazily)."""
    find_window: Callable[[], int | None] = field(
        default=_unknown_window, repr=False, compare=False
    )
    counter: Callable[[str], int] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def ways(self) -> tuple[Way, ...]:
        """``grammar`` (``grammar=`` GBNF text) and/or ``json_schema`` (``response_format=``)."""
        return tuple(self.find_ways())

    @property
    def constraint(self) -> Constraint:
        """The strongest way output can be constrained, or ``none``."""
        return self.ways[0] if self.ways else "none"

    @cached_property
    def context_window(self) -> int | None:
        """Tokens of context, when known (a served model's is not)."""
        return self.find_window()

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text``: the model's own tokenizer when it has one (a served model
        counts approximately, and says so once)."""
        if self.counter is not None:
            return self.counter(text)
        return int(self.model.get_num_tokens(text))

    def constrain(
        self, schema: Mapping[str, Any] | None = None, gbnf: str | None = None
    ) -> dict[str, Any]:
        """The call keyword arguments that hold output to ``gbnf`` (a grammar) or ``schema``
        (a JSON schema): ``{"grammar": ...}``, ``{"response_format": ...}``, or ``{}`` when the
        model honours neither (the reply is then parsed as it comes). Given both, the grammar
        wins where it is honoured; a schema goes to a grammar-only model as its grammar."""
        if gbnf is not None and "grammar" in self.ways:
            return {"grammar": gbnf}
        if schema is None:
            return {}
        if "json_schema" in self.ways:
            return {"response_format": {"type": "json_schema", "schema": dict(schema)}}
        if "grammar" in self.ways:
            from orchestrator.llama.json_grammar import schema_gbnf

            return {"grammar": schema_gbnf(schema, label="the output schema")}
        return {}


def bound_model(runnable: Any) -> Any:
    """``runnable`` without its ``.bind`` / ``.with_config`` / ``bind_tools`` wrappers: the
    one place bindings are unwrapped to find a model."""
    inner = runnable
    while isinstance(inner, RunnableBinding):
        inner = inner.bound
    return inner


def capabilities(runnable: Any) -> Capabilities:
    """What the model behind ``runnable`` (through any binding) can do."""
    model = bound_model(runnable)
    declare = getattr(model, "model_capabilities", None)
    if callable(declare):
        found = declare()
        if isinstance(found, Capabilities):
            return found
    return Capabilities(
        model=model, chat=isinstance(model, BaseChatModel), local=False, label=type(model).__name__
    )


def model_label(llm: Any) -> str:
    """How traces and the CLI name the model behind ``llm``."""
    return capabilities(llm).label
