"""The model layer: which model, with which options, and what it can do.

- :class:`SamplingOptions`: the one schema of generation options (bounds and defaults) that
  local models, served models and the HTTP server's requests derive from.
- :class:`ModelSpec`: a model as data; :func:`chat_model`, :func:`completion_model` and
  :func:`language_model` build it (a local GGUF, or a served model at a base URL).
- :func:`capabilities`: what the model behind any runnable can do (chat or completion, local
  or served, how to constrain its output and the call arguments that do it, its context
  window and a token counter), declared once per model class.
"""

from orchestrator.models.capabilities import (
    Capabilities,
    Constraint,
    bound_model,
    capabilities,
    model_label,
)
from orchestrator.models.factory import (
    chat_model,
    completion_model,
    endpoint_of,
    is_served,
    language_model,
)
from orchestrator.models.options import DEFAULT_SAMPLING, SAMPLING_FIELDS, SamplingOptions
from orchestrator.models.spec import LOCAL_ONLY, ModelSpec

__all__ = [
    "DEFAULT_SAMPLING",
    "LOCAL_ONLY",
    "SAMPLING_FIELDS",
    "Capabilities",
    "Constraint",
    "ModelSpec",
    "SamplingOptions",
    "bound_model",
    "capabilities",
    "chat_model",
    "completion_model",
    "endpoint_of",
    "is_served",
    "language_model",
    "model_label",
]
