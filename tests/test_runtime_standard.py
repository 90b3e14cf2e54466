"""LangChain's standard chat-model suites run against ChatLlamaCpp on the real embedded model.

Declared capabilities: tool calling (with tool_choice), structured output (json_schema,
function_calling, json_mode), usage metadata. Not declared: image/audio/PDF inputs.

Both suites construct the model with their own standard parameters (``ChatModelTests``:
temperature, max_tokens, timeout, stop, max_retries), which ChatLlamaCpp accepts with a local
meaning. The unit suite's subclass adds ``api_key`` for hosted APIs; a local model rejects it
on purpose (tests/test_runtime_params.py), so the unit class uses the shared standard set.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests
from langchain_tests.unit_tests.chat_models import ChatModelTests

from orchestrator import ChatLlamaCpp
from orchestrator.settings import embedded_model_path


class _Declared:
    @property
    def chat_model_class(self) -> type[ChatLlamaCpp]:
        return ChatLlamaCpp

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"seed": 0}

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True


class TestChatLlamaCppUnit(_Declared, ChatModelUnitTests):
    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        # the suites' shared standard set, exactly as langchain-tests defines it (no api_key)
        return dict(ChatModelTests.standard_chat_model_params.fget(self))  # type: ignore[attr-defined]

    def test_model_has_the_suites_standard_params(self, model: ChatLlamaCpp) -> None:
        expected = ChatModelTests.standard_chat_model_params.fget(self)  # type: ignore[attr-defined]
        assert {"max_retries", "timeout", "stop", "temperature", "max_tokens"} <= set(expected)
        assert [getattr(model, name) for name in sorted(expected)] == [
            expected[name] for name in sorted(expected)
        ]

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        path = str(embedded_model_path().resolve())
        return {"ORCHESTRATOR_MODEL": path}, {}, {"model_path": path}


@pytest.mark.integration
class TestChatLlamaCppIntegration(_Declared, ChatModelIntegrationTests):
    @pytest.mark.xfail(
        reason="tool_choice='auto' leaves the decision to the model, and the embedded 135M model "
        "does not decide to call a tool on its own at temperature 0 (measured: P('{') < 0.004 "
        "as first token), so the suite's assertion that the answer holds a tool call fails. "
        "Forced tool choice ('any' or a name) is grammar-constrained and passes "
        "test_tool_calling / test_tool_choice; use it, or a larger GGUF, for agent loops. "
        "Strict: if the model ever calls the tool here, this xfail must be removed.",
        strict=True,
        raises=AssertionError,
    )
    def test_agent_loop(self, model: Any) -> None:
        super().test_agent_loop(model)
