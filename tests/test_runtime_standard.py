"""LangChain's standard chat-model suites run against ChatLlamaCpp on the real embedded model.

Declared capabilities: tool calling (with tool_choice), structured output (json_schema,
function_calling, json_mode), usage metadata. Not declared: image/audio/PDF inputs. Options the
suite passes that a local model has no use for (``max_retries``, an ``api_key``) are left out of
the constructor parameters instead of being silently accepted.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from orchestrator import ChatLlamaCpp
from orchestrator.settings import embedded_model_path

_PARAMS = {"temperature": 0, "max_tokens": 100, "timeout": 60, "stop": []}


class _Declared:
    @property
    def chat_model_class(self) -> type[ChatLlamaCpp]:
        return ChatLlamaCpp

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        return dict(_PARAMS)

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
        "rarely decides to call a tool on its own (measured: P('{') < 0.004 as first token). "
        "Forced tool choice ('any' or a name) is grammar-constrained and passes "
        "test_tool_calling / test_tool_choice; use it, or a larger GGUF, for agent loops.",
        strict=False,
    )
    def test_agent_loop(self, model: Any) -> None:
        super().test_agent_loop(model)
