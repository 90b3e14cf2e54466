"""A plain description of a model file, for ``orchestrator models`` and for reports."""

from __future__ import annotations

from typing import Any

from orchestrator.llama.chat import ChatLlamaCpp, chat_format_of
from orchestrator.llama.engine import gpu_backend_available


def describe_model(
    model_path: str | None = None, n_gpu_layers: int | None = None
) -> dict[str, Any]:
    """File, architecture, chat format, context sizes and GPU offload, without loading weights."""
    llm = ChatLlamaCpp(model_path=model_path, n_gpu_layers=n_gpu_layers)
    info, key = llm.info, llm.engine_key()
    layers = info.n_layers or 0
    gpu = gpu_backend_available()
    offloaded = (
        0
        if not gpu or key.n_gpu_layers == 0
        else (layers + 1 if key.n_gpu_layers < 0 else min(key.n_gpu_layers, layers + 1))
    )
    return {
        "file": str(info.path),
        "size_mb": round(info.size_bytes / 2**20, 1),
        "name": info.name,
        "architecture": info.architecture,
        "chat_format": chat_format_of(llm).name,
        "context_trained": info.context_length,
        "context_default": key.n_ctx,
        "layers": layers,
        "gpu_backend": gpu,
        "gpu_layers_offloaded": offloaded,
        "n_threads": key.n_threads,
    }
