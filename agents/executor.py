"""``AgentExecutor``: runs the ReAct loop until a final answer or a limit, and reports each step.

The loop always ends: ``max_iterations``, ``max_execution_time`` (checked while the model is
generating, not only between steps) and a repeated identical action each stop it. When a limit
stops it, the model is asked once more for a final answer without tools (``early_stopping_method
="generate"``), and ``stopped_because`` says why it stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from langchain_core.agents import AgentAction, AgentFinish, AgentStep
from langchain_core.exceptions import OutputParserException
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import (
    ensure_config,
    get_callback_manager_for_config,
    patch_config,
)
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, Field, model_validator

from orchestrator.agents.events import AgentTrace, StepRecord, Timer, VerbosePrinter
from orchestrator.agents.parser import clean_thought
from orchestrator.agents.react import ReActAgent, StepTimeout
from orchestrator.errors import (
    ContextOverflowError,
    OptionError,
    OrchestratorError,
    reject_unknown_options,
)
from orchestrator.llama.aio import iterate_in_thread
from orchestrator.models import model_label

ParseHandler = bool | str | Callable[[OutputParserException], str]
FORCED_OUTPUT = "Agent stopped due to iteration limit or time limit."


class AgentParseError(OrchestratorError, ValueError):
    """The model's step could not be parsed and ``handle_parsing_errors`` is off."""


class AgentExecutor(RunnableSerializable[dict[str, Any] | str, dict[str, Any]]):
    """The book's ``AgentExecutor(agent=..., tools=..., verbose=..., handle_parsing_errors=...)``.

    ``invoke({"input": ...})`` returns ``output``, ``steps`` (dicts with ``thought``,
    ``action``, ``action_input``, ``observation``), ``stopped_because`` and, with
    ``return_intermediate_steps=True``, LangChain's ``intermediate_steps`` tuples. ``stream``
    yields step events as they happen; ``last_trace`` holds the run, ``trace_dir`` saves it.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    agent: ReActAgent
    tools: list[BaseTool]
    verbose: bool = False
    handle_parsing_errors: ParseHandler = False
    max_iterations: int | None = Field(default=15, ge=0)
    max_execution_time: float | None = Field(default=None, gt=0)
    early_stopping_method: Literal["generate", "force"] = "generate"
    return_intermediate_steps: bool = False
    trim_intermediate_steps: int = -1
    max_observation_chars: int = Field(default=2000, ge=100)
    trace_dir: Path | None = None
    console: Any = None
    last_trace: AgentTrace | None = None

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown(cls, data: Any) -> Any:
        reject_unknown_options(data, cls)
        if (
            isinstance(data, Mapping)
            and "agent" in data
            and not isinstance(data["agent"], ReActAgent)
        ):
            raise OptionError(
                f"agent={type(data['agent']).__name__} is not a ReAct agent",
                fix="build it with agents.create_react_agent(llm, tools, prompt)",
            )
        return data

    def model_post_init(self, context: Any) -> None:
        if self.max_iterations is None and self.max_execution_time is None:
            raise OptionError(
                "max_iterations=None with no max_execution_time would let the agent run forever",
                fix="keep a step limit (max_iterations=15 is the default) or set "
                "max_execution_time=SECONDS",
            )
        known = {t.name for t in self.tools}
        missing = [n for n in self.agent.tool_names if n not in known]
        if missing:
            raise OptionError(
                f"the agent uses tool(s) {missing} that AgentExecutor(tools=...) lacks",
                fix="pass the same tools to create_react_agent and AgentExecutor",
            )

    def invoke(
        self, input: dict[str, Any] | str, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        final: dict[str, Any] = {}
        for event in self.stream(input, config, **kwargs):
            final = event
        return final["result"]

    async def ainvoke(
        self, input: dict[str, Any] | str, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        final: dict[str, Any] = {}
        async for event in self.astream(input, config, **kwargs):
            final = event
        return final["result"]

    async def astream(  # type: ignore[override]
        self, input: dict[str, Any] | str, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[dict[str, Any]]:
        """The events of :meth:`stream` (the same loop, run in one worker thread)."""
        async for event in iterate_in_thread(lambda: self.stream(input, config, **kwargs)):
            yield event

    def stream(  # type: ignore[override]
        self, input: dict[str, Any] | str, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        """Run the agent, yielding each event as it happens; the last is ``final``."""
        inputs = {"input": input} if isinstance(input, str) else dict(input)
        if "input" not in inputs:
            raise OptionError("AgentExecutor needs an 'input'", fix='invoke({"input": "..."})')
        printer = VerbosePrinter(self.console) if self.verbose else None
        config = ensure_config(config)
        manager = get_callback_manager_for_config(config).on_chain_start(
            None,
            inputs,
            name=config.get("run_name") or self.get_name(),
            run_id=config.pop("run_id", None),
        )  # one LangChain run: callbacks (tracing) see each step inside it
        run = _Run(self, inputs, patch_config(config, callbacks=manager.get_child()))
        try:
            for event in run.events():
                if printer is not None:
                    printer(event)
                yield event
        except BaseException as exc:
            manager.on_chain_error(exc)
            raise
        manager.on_chain_end(event["result"])
        self.last_trace = run.trace
        if self.trace_dir is not None:
            run.trace.save(self.trace_dir)


class _Run:
    """The state of one run: steps so far, repeated-action memory, the trace."""

    def __init__(
        self, owner: AgentExecutor, inputs: dict[str, Any], config: RunnableConfig | None
    ) -> None:
        self.owner, self.inputs, self.config = owner, inputs, config
        self.agent = owner.agent
        self.tools = {t.name: t for t in owner.tools}
        self.steps: list[tuple[AgentAction, str]] = []
        self.seen: set[tuple[str, str]] = set()
        self.direct = False
        self.repeated: dict[str, Any] = {}
        self.last_unparsed = ""
        self.timer = Timer()
        limit = owner.max_execution_time
        self.deadline = time.monotonic() + limit if limit is not None else None
        self.trace = AgentTrace(
            input=str(inputs["input"]),
            tools=list(self.tools),
            model=model_label(self.agent.llm),
            grammar=self.agent.uses_grammar,
            step_mode=self.agent.resolved_step_mode,
        )

    def events(self) -> Iterator[dict[str, Any]]:
        yield {
            "type": "start",
            "input": self.trace.input,
            "run_id": self.trace.run_id,
            "step_mode": self.trace.step_mode,
        }
        iteration = 0
        while True:
            reason = self._limit_reached(iteration)
            if reason is not None:
                break
            iteration += 1
            outcome = yield from self._traced_step(iteration)
            if isinstance(outcome, AgentFinish):
                yield self._finish(outcome, "return_direct" if self.direct else "final_answer")
                return
            if outcome is not None:
                reason = outcome
                break
        yield {"type": "limit", "reason": reason, **self.repeated}
        yield self._finish(self._forced_final(reason), reason)

    def _limit_reached(self, iteration: int) -> str | None:
        cap = self.owner.max_iterations
        if cap is not None and iteration >= cap:
            return "max_iterations"
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return "max_execution_time"
        return None

    def _visible_steps(self) -> list[tuple[AgentAction, str]]:
        keep = self.owner.trim_intermediate_steps
        return self.steps[-keep:] if keep > 0 else list(self.steps)

    def _traced_step(self, n: int) -> Generator[dict[str, Any], None, AgentFinish | str | None]:
        """:meth:`_step` as a child run named ``agent step N`` (what tracing recognises)."""
        manager = get_callback_manager_for_config(ensure_config(self.config)).on_chain_start(
            None, {"input": self.trace.input}, name=f"agent step {n}"
        )
        try:
            outcome = yield from self._step(
                patch_config(self.config, callbacks=manager.get_child())
            )
        except BaseException as exc:
            manager.on_chain_error(exc)
            raise
        if isinstance(outcome, AgentFinish):
            manager.on_chain_end(outcome.return_values)
        elif outcome is None and self.steps:
            manager.on_chain_end({"output": self.steps[-1][1]})
        else:
            manager.on_chain_end({"output": outcome or ""})
        return outcome

    def _step(
        self, config: RunnableConfig
    ) -> Generator[dict[str, Any], None, AgentFinish | str | None]:
        """One model call and its tool; returns a finish, a stop reason, or ``None``."""
        started = Timer()
        try:
            text = self.agent.generate(
                self.inputs, self._visible_steps(), deadline=self.deadline, config=config
            )
        except StepTimeout:
            return "max_execution_time"
        except ContextOverflowError:
            return "context_overflow"
        try:
            decision = self.agent.parse(text)
        except OutputParserException as exc:
            yield self._parse_error(text, exc, started)
            repeated = text.strip() == self.last_unparsed
            self.last_unparsed = text.strip()
            return "repeated_output" if repeated else None
        if isinstance(decision, AgentFinish):
            self.trace.final_raw = text
            return decision
        key = (decision.tool, str(decision.tool_input))
        if key in self.seen:
            self.repeated = {"action": decision.tool, "action_input": decision.tool_input}
            return "repeated_action"
        self.seen.add(key)
        return (yield from self._act(decision, text, started, config))

    def _act(
        self, decision: AgentAction, text: str, started: Timer, config: RunnableConfig
    ) -> Generator[dict[str, Any], None, AgentFinish | None]:
        thought = clean_thought(decision.log.split("\nAction:")[0])
        tool_input = str(decision.tool_input)
        yield {
            "type": "action",
            "step": len(self.steps) + 1,
            "thought": thought,
            "action": decision.tool,
            "action_input": tool_input,
            "actions": [decision],
        }
        observation = self._run_tool(decision, config)
        self.steps.append((decision, observation))
        record = StepRecord(
            thought, decision.tool, tool_input, observation, text, False, started.elapsed()
        )
        self.trace.steps.append(record)
        yield {
            "type": "observation",
            "step": len(self.steps),
            "observation": observation,
            "seconds": record.seconds,
            "steps": [AgentStep(action=decision, observation=observation)],
        }
        tool = self.tools.get(decision.tool)
        if tool is not None and tool.return_direct:
            self.direct = True
            return AgentFinish({"output": observation}, log=observation)
        return None

    def _parse_error(self, text: str, exc: OutputParserException, started: Timer) -> dict[str, Any]:
        handler = self.owner.handle_parsing_errors
        if handler is False:
            raise AgentParseError(
                f"could not parse the model's step: {text.strip()[:300]!r}",
                fix="pass handle_parsing_errors=True to send the error back to the model, "
                "or use a llama.cpp model so steps are grammar-constrained",
            ) from exc
        if isinstance(handler, str):
            feedback = handler
        elif callable(handler) and not isinstance(handler, bool):
            feedback = str(handler(exc))
        else:
            feedback = str(exc.observation) if exc.send_to_llm else "Invalid or incomplete response"
        self.steps.append((AgentAction("_Exception", feedback, text.rstrip()), feedback))
        self.trace.steps.append(
            StepRecord(clean_thought(text), None, None, feedback, text, True, started.elapsed())
        )
        return {
            "type": "parse_error",
            "step": len(self.steps),
            "raw": text,
            "observation": feedback,
        }

    def _run_tool(self, action: AgentAction, config: RunnableConfig) -> str:
        tool = self.tools.get(action.tool)
        if tool is None:
            names = ", ".join(self.tools)
            return f"{action.tool} is not a valid tool, try one of [{names}]."
        try:
            result = tool.invoke(_tool_input(tool, str(action.tool_input)), config)
        except Exception as exc:  # a failing tool is something the agent observes
            return f"Tool {tool.name} failed: {type(exc).__name__}: {exc}"
        text = result if isinstance(result, str) else _stringify(result)
        cap = self.owner.max_observation_chars
        return text if len(text) <= cap else text[:cap] + " ... [truncated]"

    def _forced_final(self, reason: str) -> AgentFinish:
        if self.owner.early_stopping_method == "force":
            return AgentFinish({"output": FORCED_OUTPUT}, log=FORCED_OUTPUT)
        steps = self._visible_steps()
        try:
            text = self.agent.generate_final(self.inputs, steps, reason, config=self.config)
        except ContextOverflowError:
            text = self.agent.generate_final(self.inputs, steps[-1:], reason, config=self.config)
        self.trace.final_raw = text
        return self.agent.parse_final(text)

    def _finish(self, finish: AgentFinish, reason: str) -> dict[str, Any]:
        output = str(finish.return_values.get("output", "")).strip()
        self.trace.output, self.trace.stopped_because = output, reason
        self.trace.seconds = self.timer.elapsed()
        result: dict[str, Any] = {
            **self.inputs,
            "output": output,
            "steps": [_public_step(s) for s in self.trace.steps],
            "stopped_because": reason,
            "step_mode": self.trace.step_mode,
        }
        if self.owner.return_intermediate_steps:
            result["intermediate_steps"] = list(self.steps)
        thought = clean_thought(finish.log.split("Final Answer:")[0])
        return {
            "type": "final",
            "output": output,
            "thought": thought,
            "stopped_because": reason,
            "result": result,
        }


def _public_step(record: StepRecord) -> dict[str, Any]:
    keys = ("thought", "action", "action_input", "observation", "parse_error")
    return {k: getattr(record, k) for k in keys}


def _tool_input(tool: BaseTool, text: str) -> str | dict[str, Any]:
    """A string, or a dict when a multi-argument tool was given a JSON object."""
    if len(tool.args) > 1 and text.lstrip().startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            return text
        if isinstance(value, dict):
            return value
    return text


def _stringify(value: Any) -> str:
    if isinstance(value, Sequence | Mapping):
        try:
            return json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            return str(value)
    return str(value)
