"""Prompt templates whose variable values can never become control tokens.

A completion model (``LlamaCpp``) tokenizes its whole prompt with special tokens parsed, since
a template may write its own turn markers (``<|im_start|>user``). Text filled *into* the
template (the user's question, a retrieved document, a tool result, the history) must not get
that power, or a web page saying ``<|im_end|><|im_start|>system`` opens a real turn. Every
path that fills a template for a model goes through :func:`defuse_values`; its pattern is the
model's own control tokens when the model is ours (:func:`special_pattern_of`) plus the generic
shapes of :mod:`orchestrator.prompts.safety`.

:class:`PromptTemplate` is langchain-core's with that defusing built in, so the book's
``prompt | LlamaCpp(...)`` is safe with only its import line changed. :func:`instruction_prompt`
is the one place a prompt is wrapped as a user turn for a completion model.

Only the developer's template is ever parsed for ``{variables}``. Text from anywhere else (a
value, the model's chat template and its default system message, an example) is added after
parsing, as text: a brace, ``{%`` or ``{{`` in it reaches the model as written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.prompts import PromptTemplate as _LangChainPromptTemplate
from langchain_core.prompts.string import DEFAULT_FORMATTER_MAPPING
from langchain_core.runnables import RunnableSequence
from langchain_core.runnables.base import RunnableBindingBase
from langchain_core.utils import mustache
from pydantic import Field

from orchestrator.prompts.safety import defuse

_PLAIN = (int, float, bool, type(None))


#: The method a model declares to have its own control tokens defused in what fills its
#: prompts (``LlamaSettings.control_token_pattern``). A ``RunnableBinding`` forwards attribute
#: access to the runnable it wraps, so a bound model is found without unwrapping it here.
CONTROL_TOKENS_METHOD = "control_token_pattern"


def model_of(llm: Any) -> Any:
    """The model behind ``llm`` (through ``.bind`` / ``.with_config`` wrappers) that declares
    control tokens of its own (an Orchestrator llama.cpp model), or ``None``. Duck-typed,
    because prompts sits below the models: the model is the owner of the bound method."""
    method = getattr(llm, CONTROL_TOKENS_METHOD, None)
    return getattr(method, "__self__", None) if callable(method) else None


def model_in(runnable: Any) -> Any:
    """The first such model inside a composed runnable (``prompt | llm | parser``, bound or
    configured), or ``None``: what a wrapper that fills values for ``runnable`` must defuse
    them for."""
    pending = [runnable]
    while pending:
        current = pending.pop(0)
        model = model_of(current)
        if model is not None:
            return model
        if isinstance(current, RunnableSequence):
            pending.extend(current.steps)
        elif isinstance(current, RunnableBindingBase):  # a binding around a sequence
            pending.append(current.bound)
    return None


def special_pattern_of(llm: Any) -> re.Pattern[str] | None:
    """The regex of ``llm``'s own control tokens when it declares them (an Orchestrator
    llama.cpp model, bound or not), else ``None``. The engine is loaded if it was not yet
    (the call about to be made needs it anyway)."""
    method = getattr(llm, CONTROL_TOKENS_METHOD, None)
    pattern = method() if callable(method) else None
    return pattern if isinstance(pattern, re.Pattern) else None


def defuse_value(
    value: Any, pattern: re.Pattern[str] | None = None, *, stringify: bool = False
) -> Any:
    """``value`` with control-token text broken: strings, message contents (a history given
    as messages), the items of lists and tuples, and the values of mappings (what a Jinja or
    Mustache template reads as ``{{ doc.text }}``). Numbers and ``None`` stay as they are;
    other objects are left alone unless ``stringify`` (an f-string template will ``str()``
    them anyway, so their text is defused first)."""
    if isinstance(value, str):
        return defuse(value, pattern)
    if isinstance(value, BaseMessage):
        return _defuse_message(value, pattern)
    if isinstance(value, list | tuple):
        return type(value)(defuse_value(v, pattern, stringify=stringify) for v in value)
    if isinstance(value, Mapping) and not stringify:
        return {k: defuse_value(v, pattern) for k, v in value.items()}
    if stringify and not isinstance(value, _PLAIN):
        return defuse(str(value), pattern)
    return value


def defuse_values(
    values: Mapping[str, Any], pattern: re.Pattern[str] | None = None, *, stringify: bool = False
) -> dict[str, Any]:
    """Every value of a template's variables defused (see :func:`defuse_value`)."""
    return {k: defuse_value(v, pattern, stringify=stringify) for k, v in values.items()}


def safe_values(llm: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` defused for ``llm``: its own control tokens and the generic shapes."""
    return defuse_values(values, special_pattern_of(llm))


def _defuse_message(message: BaseMessage, pattern: re.Pattern[str] | None) -> BaseMessage:
    content = message.content
    if isinstance(content, str):
        safe: Any = defuse(content, pattern)
    else:
        safe = [
            defuse(b, pattern)
            if isinstance(b, str)
            else {**b, "text": defuse(b["text"], pattern)}
            if isinstance(b, dict) and isinstance(b.get("text"), str)
            else b
            for b in content
        ]
    return message if safe == content else message.model_copy(update={"content": safe})


class PromptTemplate(_LangChainPromptTemplate):
    """langchain-core's ``PromptTemplate`` whose formatting defuses every variable value.

    The template text itself is trusted (it may write a model's turn markers); values are not.
    ``llm`` (optional, set by :meth:`for_model` or :func:`instruction_prompt`) adds that
    model's own control tokens to the generic shapes; it is read when formatting, so a
    template for a model does not load the model's weights. A ``mustache`` template fills
    ``{{name}}`` as written, without the HTML escaping Mustache defines for web pages (a
    document's ``a < b`` would reach the model as ``a &lt; b``).
    """

    llm: Any = Field(default=None, exclude=True)
    user_turn: bool = Field(default=False, exclude=True)
    """Set by :func:`instruction_prompt`: the filled-in text is wrapped as one user turn in
    ``llm``'s chat format when ``llm`` is a completion model that knows one. The wrapping is
    done after filling, so the chat template's own text (its markers, a default system message
    with braces) is never parsed for variables."""

    @classmethod
    def from_template(cls, template: str, **kwargs: Any) -> PromptTemplate:
        """langchain-core's ``from_template``, returning this class (typed as such)."""
        made = super().from_template(template, **kwargs)
        assert isinstance(made, PromptTemplate)
        return made

    def format(self, **kwargs: Any) -> str:
        merged = self._merge_partial_and_user_variables(**kwargs)
        stringify = self.template_format == "f-string"
        pattern = special_pattern_of(self.llm) if self.llm is not None else None
        values = defuse_values(merged, pattern, stringify=stringify)
        return self._wrapped(fill_template(self.template, self.template_format, values))

    def _wrapped(self, text: str) -> str:
        """``text`` as a user turn of ``llm`` (see ``user_turn``), else as it is."""
        wrap = getattr(self.llm, "wrap_user_prompt", None) if self.user_turn else None
        return str(wrap(text)) if callable(wrap) else text

    def for_model(self, llm: Any) -> PromptTemplate:
        """This template, also defusing ``llm``'s own control tokens."""
        return self.model_copy(update={"llm": llm})

    def __or__(self, other: Any) -> Any:
        """``prompt | llm``: piped into an Orchestrator model, the template also defuses that
        model's own control tokens (SmolLM2's ``<file_sep>`` has no generic shape)."""
        if self.llm is None and model_of(other) is not None:
            return super(PromptTemplate, self.for_model(other)).__or__(other)
        return super().__or__(other)

    def __add__(self, other: Any) -> PromptTemplate:
        combined = super().__add__(other)
        llm = self.llm if self.llm is not None else getattr(other, "llm", None)
        return PromptTemplate(
            template=combined.template,
            input_variables=combined.input_variables,
            partial_variables=combined.partial_variables,
            template_format=combined.template_format,
            validate_template=combined.validate_template,
            llm=llm,
            user_turn=self.user_turn or bool(getattr(other, "user_turn", False)),
        )


def fill_template(template: str, template_format: str, values: Mapping[str, Any]) -> str:
    """``template`` (the developer's) filled with ``values`` (already defused) in LangChain's
    ``template_format``; the one place our prompts are filled. The values are data to every
    engine (f-string, Jinja2, Mustache) and are never parsed; Mustache's ``{{name}}`` inserts
    them without HTML escaping."""
    if template_format == "mustache":
        return mustache.render(list(_unescaped(template)), values)
    return str(DEFAULT_FORMATTER_MAPPING[template_format](template, **values))


@lru_cache(maxsize=64)
def _unescaped(template: str) -> tuple[tuple[str, str], ...]:
    """A Mustache template's tokens with every ``{{name}}`` read as ``{{& name}}``."""
    return tuple(
        ("no escape", key) if tag == "variable" else (tag, key)
        for tag, key in mustache.tokenize(template)
    )


def instruction_prompt(llm: Any, text: str) -> PromptTemplate:
    """``text`` as a prompt for ``llm``; the one place a prompt is wrapped for a model.

    A completion model that knows a chat format (``LlamaCpp.wrap_user_prompt``) gets the filled
    text as one user turn, the way the book writes Phi-3's tags by hand; a chat model wraps its
    input itself, so it gets the text as is. Either way, filled-in values are defused with the
    model's own control tokens. Only ``text`` is parsed for variables: the turn is wrapped
    around the result (see :attr:`PromptTemplate.user_turn`), so whatever the model's chat
    template writes (``{today}`` in a default system message, JSON) stays text.
    """
    template = PromptTemplate.from_template(text)
    return template.model_copy(update={"llm": llm, "user_turn": True})
