"""A plain description of a model file, for ``orchestrator models`` and for reports."""

from __future__ import annotations

from typing import Any

from orchestrator.llama.chat import ChatLlamaCpp, chat_format_of
from orchestrator.llama.engine import gpu_backend_available, gpu_layers_offloaded


def describe_model(
    model_path: str | None = None, n_gpu_layers: int | None = None
) -> dict[str, Any]:
    """File, architecture, chat format (and where it came from: the file's template, inferred
    from its architecture or vocabulary, or a fallback), context sizes and GPU offload, without
    loading weights."""
    llm = ChatLlamaCpp(model_path=model_path, n_gpu_layers=n_gpu_layers)
    info, key = llm.info, llm.engine_key()
    layers = info.n_layers or 0
    gpu = gpu_backend_available()
    chat_format = chat_format_of(llm)
    return {
        "file": str(info.path),
        "size_mb": round(info.size_bytes / 2**20, 1),
        "name": info.name,
        "architecture": info.architecture,
        "chat_format": chat_format.name,
        "chat_format_source": chat_format.source,
        "chat_template_in_file": info.chat_template is not None,
        "context_trained": info.context_length,
        "context_default": key.n_ctx,
        "layers": layers,
        "gpu_backend": gpu,
        "gpu_layers_offloaded": gpu_layers_offloaded(key.n_gpu_layers, layers, gpu),
        "n_threads": key.n_threads,
    }
