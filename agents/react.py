"""``create_react_agent``: a prompt, a model and tools, as one step of the ReAct loop.

The agent turns ``{"input": ..., "intermediate_steps": [...]}`` into the next
:class:`AgentAction` or :class:`AgentFinish`. With a llama.cpp model every step is decoded under
a grammar (see :mod:`agents.grammar`) so the format cannot break. A model on an
OpenAI-compatible server gets the same grammar when the server applies grammars (llama.cpp's
do), else a JSON schema of the step when it applies schemas (vLLM, Ollama), found by a probe;
any other model gets the tolerant parser and, in the executor, the parse-error feedback loop.
``step_mode`` says which was used (``grammar``, ``json_schema`` or ``parser``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from langchain_core.agents import AgentAction, AgentFinish
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import BasePromptTemplate
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig, RunnableSerializable
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, Field, PrivateAttr, ValidationError

from orchestrator.agents.grammar import (
    INPUT_GBNF_KEY,
    STEP_TOKEN_BUDGET,
    final_answer_from_json,
    final_grammar,
    final_schema,
    step_from_json,
    step_grammar,
    step_schema,
)
from orchestrator.agents.parser import FINAL_ANSWER, clean_answer, clean_thought, parse_step
from orchestrator.errors import OptionError, TruncatedOutputError
from orchestrator.prompts.library import REACT
from orchestrator.prompts.templates import PromptTemplate, safe_values

REQUIRED_VARIABLES = ("tools", "tool_names", "agent_scratchpad")
#: How steps are constrained: ``auto`` picks the strongest the model supports.
StepMode = Literal["auto", "grammar", "json_schema", "parser"]
OBSERVATION_STOP = "\nObservation:"

#: What the agent tells itself when a limit ends the loop, before its last, tool-less answer.
STOP_NOTES = {
    "max_iterations": "I have used all my steps, so I must answer now from what I found.",
    "max_execution_time": "I am out of time, so I must answer now from what I found.",
    "repeated_action": "I already did exactly that, so I must answer now from what I found.",
    "repeated_output": "I keep writing the same thing, so I must answer now.",
    "context_overflow": "I have no room for more steps, so I must answer now.",
}


class StepTimeout(Exception):
    """Generation of a step passed the executor's deadline and was abandoned."""


def llama_model(llm: Runnable[Any, Any]) -> Any:
    """The llama.cpp model behind ``llm`` (through ``.bind`` wrappers), or ``None``."""
    from orchestrator.llama.base import LlamaSettings

    inner: Any = llm
    while isinstance(inner, RunnableBinding):
        inner = inner.bound
    return inner if isinstance(inner, LlamaSettings) else None


def remote_model(llm: Runnable[Any, Any]) -> Any:
    """The served model (``orchestrator.remote``) behind ``llm``, or ``None``."""
    from orchestrator.remote import remote_model_of

    return remote_model_of(llm)


def model_label(llm: Runnable[Any, Any]) -> str:
    """How a trace names the model: the GGUF path, ``NAME at URL``, or the class name."""
    local, served = llama_model(llm), remote_model(llm)
    if local is not None:
        return str(local.info.path)
    return str(served.label) if served is not None else type(llm).__name__


def resolve_step_mode(llm: Runnable[Any, Any], requested: str, grammar: bool | None) -> str:
    """``grammar``, ``json_schema`` or ``parser``: how ``llm``'s steps will be constrained.

    ``auto``: a llama.cpp model uses the grammar; a served model the grammar when its server
    applies grammars, else a JSON schema when it applies schemas (asked once per server, see
    :mod:`orchestrator.remote_model`), else the parser; any other model the parser. A mode
    asked for explicitly that the model cannot honour is an ``OptionError``.
    ``grammar=False`` (the older switch) means ``parser``, ``grammar=True`` means ``grammar``.
    """
    if grammar is not None and requested != "auto":
        raise OptionError("grammar= and step_mode= were both given", fix="pass step_mode= only")
    mode = requested if grammar is None else ("grammar" if grammar else "parser")
    if mode == "parser":
        return "parser"
    local, served = llama_model(llm), remote_model(llm)
    if local is not None:
        if mode == "json_schema" and not is_chat_model(llm):
            raise OptionError(
                "json_schema steps need a chat model; a completion model (LlamaCpp) is "
                "constrained with the grammar",
                fix="use step_mode='grammar' (or 'auto') with LlamaCpp, or a ChatLlamaCpp",
            )
        return "json_schema" if mode == "json_schema" else "grammar"
    if served is not None:
        if mode in ("auto", "grammar") and served.accepts_grammar():
            return "grammar"
        if mode == "grammar":
            raise OptionError(
                f"the server at {served.endpoint} does not apply GBNF grammars",
                fix="use step_mode='json_schema' or 'parser', or a llama.cpp server",
            )
        if served.json_dialect() is not None:
            return "json_schema"
        if mode == "json_schema":
            raise OptionError(
                f"the server at {served.endpoint} does not apply JSON schemas",
                fix="use step_mode='parser' (or 'auto')",
            )
        return "parser"
    if mode != "auto":
        raise OptionError(
            f"{mode} steps need a llama.cpp model or a served model "
            f"(orchestrator.remote); got {type(llm).__name__}",
            fix="pass an orchestrator LlamaCpp / ChatLlamaCpp or remote_chat_model(...), "
            "or leave step_mode unset",
        )
    return "parser"


def is_chat_model(llm: Runnable[Any, Any]) -> bool:
    inner: Any = llm
    while isinstance(inner, RunnableBinding):
        inner = inner.bound
    return isinstance(inner, BaseChatModel)


def format_scratchpad(steps: Sequence[tuple[AgentAction, str]]) -> str:
    """The steps so far as the prompt continues them (LangChain's ``format_log_to_str``)."""
    return "".join(f"{a.log}\nObservation: {obs}\nThought: " for a, obs in steps)


def render_tools(tools: Sequence[BaseTool]) -> str:
    """``name - description`` lines (no Python signatures: they cost context and confuse)."""
    return "\n".join(f"{t.name} - {' '.join(t.description.split())}" for t in tools)


class ReActAgent(RunnableSerializable[dict[str, Any], AgentAction | AgentFinish]):
    """One ReAct step: render the prompt with the scratchpad, generate, parse."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    llm: Runnable[Any, Any]
    tools: list[BaseTool]
    prompt: BasePromptTemplate
    grammar: bool | None = None
    """Older switch: ``False`` is ``step_mode="parser"``, ``True`` is ``"grammar"``."""
    step_mode: StepMode = "auto"
    """How steps are constrained (see :func:`resolve_step_mode`); ``resolved_step_mode`` says
    which mode is used."""
    step_max_tokens: int | None = Field(default=None, ge=16)
    """Per-step token budget for llama.cpp models. Default: with the grammar, enough for any
    step it admits (the grammar bounds every line, so a step always completes); without it,
    the model's own ``max_tokens``."""
    stop: list[str] = Field(default_factory=lambda: [OBSERVATION_STOP])

    _resolved: str | None = PrivateAttr(default=None)

    @property
    def tool_names(self) -> list[str]:
        return [t.name for t in self.tools]

    @property
    def resolved_step_mode(self) -> str:
        """``grammar``, ``json_schema`` or ``parser`` (a served model's server is asked once)."""
        if self._resolved is None:
            self._resolved = resolve_step_mode(self.llm, self.step_mode, self.grammar)
        return self._resolved

    @property
    def uses_grammar(self) -> bool:
        return self.resolved_step_mode == "grammar"

    def render(
        self, inputs: Mapping[str, Any], steps: Sequence[tuple[AgentAction, str]], tail: str = ""
    ) -> PromptValue:
        """The prompt for the next step (``tail`` is appended to the scratchpad).

        Every value is defused for the model before it fills the prompt: the question, tool
        descriptions, and the scratchpad with its observations (a web page or document quoting
        ``<|im_start|>`` must stay text, since a completion prompt is tokenized with special
        tokens parsed). ``tail`` is the agent's own text and is appended as is.
        """
        values = {k: v for k, v in inputs.items() if k != "intermediate_steps"}
        values.setdefault("tools", render_tools(self.tools))
        values.setdefault("tool_names", ", ".join(self.tool_names))
        values["agent_scratchpad"] = format_scratchpad(steps)
        values = safe_values(self.llm, values)
        values["agent_scratchpad"] += tail
        return self.prompt.invoke(values)

    def generate(
        self,
        inputs: Mapping[str, Any],
        steps: Sequence[tuple[AgentAction, str]],
        *,
        deadline: float | None = None,
        config: RunnableConfig | None = None,
    ) -> str:
        """The model's text for the next step (only the first action is kept by the parser)."""
        prompt = self.render(inputs, steps)
        options: dict[str, Any] = {}
        if self.uses_grammar:
            prefix = is_chat_model(self.llm) or not prompt.to_string().rstrip().endswith("Thought:")
            rules = {
                t.name: str(t.metadata[INPUT_GBNF_KEY])
                for t in self.tools
                if t.metadata and t.metadata.get(INPUT_GBNF_KEY)
            }
            options["grammar"] = step_grammar(
                self.tool_names, thought_prefix=prefix, input_rules=rules
            )
        elif self.resolved_step_mode == "json_schema":
            schema = step_schema(self.tool_names)
            options["response_format"] = {"type": "json_schema", "schema": schema}
            return step_from_json(self._complete(prompt, options, deadline, config))
        return self._complete(prompt, options, deadline, config)

    def generate_final(
        self,
        inputs: Mapping[str, Any],
        steps: Sequence[tuple[AgentAction, str]],
        reason: str,
        *,
        config: RunnableConfig | None = None,
    ) -> str:
        """The model's final answer without tools, once ``reason`` ended the loop."""
        note = STOP_NOTES.get(reason, "I must answer now from what I found.")
        lead = "" if steps else " "
        prompt = self.render(inputs, steps, tail=f"{lead}{note}\n{FINAL_ANSWER}")
        options: dict[str, Any] = {}
        if self.uses_grammar:
            options["grammar"] = final_grammar(answer_prefix=False)
        elif self.resolved_step_mode == "json_schema":
            options["response_format"] = {"type": "json_schema", "schema": final_schema()}
            return final_answer_from_json(self._complete(prompt, options, None, config))
        return self._complete(prompt, options, None, config)

    def parse(self, text: str) -> AgentAction | AgentFinish:
        return parse_step(text, self.tool_names)

    @staticmethod
    def parse_final(text: str) -> AgentFinish:
        """The answer in a tool-less final reply, whether or not it repeats ``Final Answer:``;
        any step the model invents after it is cut (see :func:`agents.parser.clean_answer`)."""
        head, sep, tail = text.partition(FINAL_ANSWER)
        answer = clean_answer(tail) if sep else ""
        if not answer:  # "80\nFinal Answer:\nQuestion: ...": the answer came before the label
            answer = clean_answer(clean_thought(head))
        return AgentFinish({"output": answer}, log=f" {FINAL_ANSWER} {answer}")

    def invoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AgentAction | AgentFinish:
        steps = list(input.get("intermediate_steps", []))
        return self.parse(self.generate(input, steps, config=config))

    def _complete(
        self,
        prompt: PromptValue,
        options: dict[str, Any],
        deadline: float | None,
        config: RunnableConfig | None,
    ) -> str:
        if llama_model(self.llm) is not None or remote_model(self.llm) is not None:
            if self.step_max_tokens is not None:
                options["max_tokens"] = self.step_max_tokens
            elif "grammar" in options or "response_format" in options:
                options["max_tokens"] = STEP_TOKEN_BUDGET
        pieces: list[str] = []
        chunks: Iterator[Any] = iter(self.llm.stream(prompt, config, stop=self.stop, **options))
        try:
            for chunk in chunks:
                pieces.append(chunk if isinstance(chunk, str) else str(chunk.content))
                if deadline is not None and time.monotonic() > deadline:
                    raise StepTimeout
        except TruncatedOutputError:
            # the budget ran out mid-step: the partial text fails to parse, and says so
            return "".join(pieces)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return "".join(pieces)


def create_react_agent(
    llm: Runnable[Any, Any],
    tools: Sequence[BaseTool],
    prompt: BasePromptTemplate | None = None,
    *,
    grammar: bool | None = None,
    step_mode: StepMode = "auto",
    step_max_tokens: int | None = None,
) -> ReActAgent:
    """A ReAct agent (the book's ``create_react_agent(llm, tools, prompt)``).

    ``prompt`` defaults to the classic ReAct prompt; it must name ``{tools}``,
    ``{tool_names}`` and ``{agent_scratchpad}``. ``step_mode`` chooses how steps are
    constrained (``auto``: the strongest the model supports; see :func:`resolve_step_mode`);
    ``grammar=False`` (= ``step_mode="parser"``) turns constraints off, to compare or to see a
    model's raw output.
    """
    template = prompt if prompt is not None else PromptTemplate.from_template(REACT)
    missing = [v for v in REQUIRED_VARIABLES if v not in template.input_variables]
    if missing:
        raise OptionError(
            f"the ReAct prompt is missing the variable(s) {missing}",
            fix="use prompts.library.REACT or add {tools}, {tool_names} and {agent_scratchpad}",
        )
    tool_list = list(tools)
    if not tool_list:
        raise OptionError("a ReAct agent needs at least one tool", fix="pass tools=[...]")
    names = [t.name for t in tool_list]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise OptionError(f"tool names must be unique; repeated: {duplicates}", fix="rename one")
    if grammar and llama_model(llm) is None and remote_model(llm) is None:
        raise OptionError(
            f"grammar=True needs a llama.cpp model or a served one; got {type(llm).__name__}",
            fix="pass an orchestrator LlamaCpp / ChatLlamaCpp, or leave grammar unset",
        )
    try:
        return ReActAgent(
            llm=llm,
            tools=tool_list,
            prompt=template,
            grammar=grammar,
            step_mode=step_mode,
            step_max_tokens=step_max_tokens,
        )
    except ValidationError as exc:  # an option out of its bounds: the caller's error
        problems = "; ".join(f"{e['loc'][0]}={e['input']!r}: {e['msg']}" for e in exc.errors())
        raise OptionError(
            f"invalid ReAct agent option: {problems}",
            fix="use a value within the bound named (a step needs step_max_tokens >= 16; "
            "`orchestrator serve` sets it from a request's max_tokens)",
        ) from None
