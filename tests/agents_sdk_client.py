"""The OpenAI Agents SDK's default model (the Responses API) against ``orchestrator serve``.

Run as a script (``python agents_sdk_client.py BASE_URL MODEL``) by
tests/test_server_responses.py: the SDK's top-level package is ``agents``, which this
repository's own agents/ folder shadows whenever the repository root is on ``sys.path`` (as
under ``python -m pytest``); a script's path starts at its own folder. Prints one JSON object.
Any attempt to connect beyond loopback (trace upload, telemetry) fails the run.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from typing import Any

QUESTION = "What is the capital of France?"
INSTRUCTIONS = "You are a helpful assistant. Answer in one short sentence."


def _loopback_only() -> None:
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])
            if not host.startswith(("127.", "::1", "localhost")):
                raise RuntimeError(f"the Agents SDK tried to connect to {address!r}")
        real_connect(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]


def _use_server(base_url: str) -> Any:
    """A client for the SDK's default model (an async client serves one event loop)."""
    from openai import AsyncOpenAI

    from agents import set_default_openai_client

    client = AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=300)
    set_default_openai_client(client, use_for_tracing=False)
    return client


def run(base_url: str, model: str) -> dict[str, Any]:
    """``Runner.run_sync`` (plain and with a tool) on the SDK's own loop, then ``Runner.run``
    and ``Runner.run_streamed`` in ``asyncio.run``."""
    from agents import Agent, ModelSettings, Runner, set_tracing_disabled

    set_tracing_disabled(True)
    settings = ModelSettings(temperature=0.0, max_tokens=48, extra_body={"seed": 0})
    agent = Agent(name="assistant", instructions=INSTRUCTIONS, model=model, model_settings=settings)
    client = _use_server(base_url)
    out: dict[str, Any] = {"run_sync": Runner.run_sync(agent, QUESTION).final_output}
    calls: list[str] = []
    forecaster = _forecaster(model, calls)
    out["tool_output"] = Runner.run_sync(forecaster, "What is the weather in Paris?").final_output
    out["tool_calls"] = calls
    asyncio.get_event_loop_policy().get_event_loop().run_until_complete(client.close())
    out.update(asyncio.run(_in_asyncio(base_url, agent)))
    return out


def _forecaster(model: str, calls: list[str]) -> Any:
    """An agent that must call its tool, and stops with the tool's output."""
    from agents import Agent, ModelSettings, function_tool

    @function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        calls.append(city)
        return f"Sunny in {city}"

    return Agent(
        name="forecaster",
        instructions="Use the tool to answer.",
        model=model,
        tools=[get_weather],
        tool_use_behavior="stop_on_first_tool",
        model_settings=ModelSettings(tool_choice="required", temperature=0.0, max_tokens=48),
    )


async def _in_asyncio(base_url: str, agent: Any) -> dict[str, Any]:
    from agents import Runner

    client = _use_server(base_url)
    try:
        ran = await Runner.run(agent, QUESTION)
        streamed = Runner.run_streamed(agent, QUESTION)
        kinds = [event.type async for event in streamed.stream_events()]
    finally:
        await client.close()
    return {
        "run": ran.final_output,
        "streamed": {
            "final_output": streamed.final_output,
            "raw_events": kinds.count("raw_response_event"),
        },
    }


if __name__ == "__main__":
    _loopback_only()
    print(json.dumps(run(sys.argv[1], sys.argv[2])))
