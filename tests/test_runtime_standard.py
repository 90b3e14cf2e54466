"""LangChain's standard chat-model suites run against ChatLlamaCpp on the real embedded model.

Declared capabilities: tool calling (with tool_choice), structured output (json_schema,
function_calling, json_mode), usage metadata. Not declared: image/audio/PDF inputs.

Both suites run unmodified, with their own standard parameters (no override of
``standard_chat_model_params``): the unit suite's temperature, max_tokens, timeout, stop,
max_retries and a hosted API's ``api_key`` (which a local model accepts and ignores, warning
once; tests/test_runtime_params.py), and the integration suite's none at all. Both add
``chat_model_params``, the suites' hook for an integration's own settings.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from orchestrator import ChatLlamaCpp
from orchestrator.settings import embedded_model_path


class _Declared:
    @property
    def chat_model_class(self) -> type[ChatLlamaCpp]:
        return ChatLlamaCpp

    def test_model_has_the_suites_standard_params(self, model: ChatLlamaCpp) -> None:
        # the suite's own set, as it built the model: every value is kept, the key is dropped
        for name, value in self.standard_chat_model_params.items():  # type: ignore[attr-defined]
            if name == "api_key":
                assert "api_key" not in model.model_dump() and not hasattr(model, "api_key")
            else:
                assert getattr(model, name) == value

    @property
    def chat_model_params(self) -> dict[str, Any]:
        # the suites' hook for an integration's own parameters: greedy and seeded, so the
        # integration suite (which passes no standard parameters) decodes repeatably
        return {"seed": 0, "temperature": 0.0}

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
    def test_the_suite_passes_a_hosted_api_key(self) -> None:
        assert self.standard_chat_model_params.get("api_key")  # so test_init & co. cover it

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        path = str(embedded_model_path().resolve())
        return {"ORCHESTRATOR_MODEL": path}, {}, {"model_path": path}


@pytest.mark.integration
class TestChatLlamaCppIntegration(_Declared, ChatModelIntegrationTests):
    """The suite unmodified; its ``test_agent_loop`` binds tools with the default
    ``tool_choice`` and needs a call for a weather question: the model decides to call
    (orchestrator/llama/tool_choice.py)."""
