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
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, Literal

from langchain_core.agents import AgentAction, AgentFinish
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import BasePromptTemplate
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
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
from orchestrator.models import capabilities
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


def resolve_step_mode(llm: Runnable[Any, Any], requested: str, grammar: bool | None) -> str:
    """``grammar``, ``json_schema`` or ``parser``: how ``llm``'s steps will be constrained.

    ``auto``: the strongest constraint the model honours (:func:`orchestrator.models.
    capabilities`: a llama.cpp model the grammar; a served model the grammar when its server
    applies grammars, else a JSON schema when it applies schemas, asked once per server),
    else the parser. A mode asked for explicitly that the model cannot honour is an
    ``OptionError``. ``grammar=False`` (the older switch) means ``parser``, ``grammar=True``
    means ``grammar``.
    """
    if grammar is not None and requested != "auto":
        raise OptionError("grammar= and step_mode= were both given", fix="pass step_mode= only")
    mode = requested if grammar is None else ("grammar" if grammar else "parser")
    if mode == "parser":
        return "parser"
    caps = capabilities(llm)
    if mode == "auto":
        return "parser" if caps.constraint == "none" else caps.constraint
    if mode not in caps.ways:
        honoured = " and ".join(_WAY_NAMES[w] for w in caps.ways) or "neither"
        raise OptionError(
            f"{caps.label} does not apply {_WAY_NAMES[mode]}, which {mode} steps need "
            f"(it applies {honoured})",
            fix="leave step_mode unset (or 'auto') or use step_mode='parser'; for constrained "
            "steps use an orchestrator LlamaCpp / ChatLlamaCpp, or a served model whose server "
            "applies them",
        )
    return mode


_WAY_NAMES = {"grammar": "GBNF grammars", "json_schema": "JSON schemas"}


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
    """Per-step token budget (``max_tokens`` of each step's call). Default: with a constraint,
    enough for any step it admits (the grammar bounds every line, so a step always
    completes); without one, the model's own ``max_tokens``."""
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
        self,
        inputs: Mapping[str, Any],
        steps: Sequence[tuple[AgentAction, str]],
        tail: str = "",
        config: RunnableConfig | None = None,
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
        return self.prompt.invoke(values, config)

    def generate(
        self,
        inputs: Mapping[str, Any],
        steps: Sequence[tuple[AgentAction, str]],
        *,
        deadline: float | None = None,
        config: RunnableConfig | None = None,
    ) -> str:
        """The model's text for the next step (only the first action is kept by the parser)."""
        prompt = self.render(inputs, steps, config=config)

        def gbnf() -> str:
            chat = capabilities(self.llm).chat
            prefix = chat or not prompt.to_string().rstrip().endswith("Thought:")
            rules = {
                t.name: str(t.metadata[INPUT_GBNF_KEY])
                for t in self.tools
                if t.metadata and t.metadata.get(INPUT_GBNF_KEY)
            }
            return step_grammar(self.tool_names, thought_prefix=prefix, input_rules=rules)

        schema = partial(step_schema, self.tool_names)
        return self._constrained(prompt, schema, gbnf, step_from_json, deadline, config)

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
        prompt = self.render(inputs, steps, tail=f"{lead}{note}\n{FINAL_ANSWER}", config=config)
        gbnf = partial(final_grammar, answer_prefix=False)
        return self._constrained(prompt, final_schema, gbnf, final_answer_from_json, None, config)

    def _constrained(
        self,
        prompt: PromptValue,
        schema: Callable[[], Mapping[str, Any]],
        gbnf: Callable[[], str],
        decode: Callable[[str], str],
        deadline: float | None,
        config: RunnableConfig | None,
    ) -> str:
        """The reply under the resolved step mode: the mode says which constraint (a JSON
        ``schema`` or a ``gbnf`` grammar, each built only when used) is offered, and
        :meth:`Capabilities.constrain` turns it into call arguments; ``decode`` turns a JSON
        reply back into ReAct text."""
        mode = self.resolved_step_mode
        options = capabilities(self.llm).constrain(
            schema=schema() if mode == "json_schema" else None,
            gbnf=gbnf() if mode == "grammar" else None,
        )
        text = self._complete(prompt, options, deadline, config)
        return decode(text) if mode == "json_schema" else text

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
        if self.step_max_tokens is not None:
            options = {**options, "max_tokens": self.step_max_tokens}
        elif options:  # a constrained step: a budget every step the constraint admits fits
            options = {**options, "max_tokens": STEP_TOKEN_BUDGET}
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
    try:
        agent = ReActAgent(
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
    if grammar or step_mode != "auto":
        _ = agent.resolved_step_mode  # a mode the model cannot honour fails now, with the fix
    return agent
