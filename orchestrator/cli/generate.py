"""``story`` and ``models``: the story chain and model inspection (``ask`` is in ``ask.py``)."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli.common import (
    ApiKeyOpt,
    BaseUrlOpt,
    JsonOpt,
    MaxTokensOpt,
    ModelOpt,
    SeedOpt,
    TemperatureOpt,
    console,
    guarded,
    print_json,
)


def register(app: typer.Typer) -> None:
    app.command("story")(story)
    app.command("models")(models)


@guarded
def story(
    summary: Annotated[str, typer.Argument(help="What the story is about.")],
    model: ModelOpt = None,
    max_tokens: MaxTokensOpt = None,
    temperature: TemperatureOpt = 0.7,
    seed: SeedOpt = -1,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The sequential story chain: summary -> title -> character -> story."""
    from orchestrator.agents.pipelines import build, spec_from_options

    spec = spec_from_options(
        "story",
        model=model,
        max_tokens=max_tokens,
        base_url=base_url,
        api_key=api_key,
        temperature=temperature,
        seed=seed,
    )
    chain = build(spec)
    with console.status("writing the story...", spinner="dots"):
        result = chain.invoke({"summary": summary})
    fields = {k: result[k] for k in ("summary", "title", "character", "story")}
    if as_json:
        print_json(fields)
        return
    from rich.panel import Panel

    console.print(Panel(fields["title"], title="title", expand=False))
    console.print(Panel(fields["character"], title="character"))
    console.print(Panel(fields["story"], title="story"))


@guarded
def models(model: ModelOpt = None, as_json: JsonOpt = False) -> None:
    """Which model file, its architecture, chat format (the file's own template, or the one
    inferred from its architecture / vocabulary, and which), context size and GPU offload."""
    from orchestrator.llama.engine import gpu_backend_available
    from orchestrator.llama.info import describe_model

    info = describe_model(model)
    if as_json:
        print_json(info)
        return
    from rich.table import Table

    table = Table(show_header=False, title="model")
    for key, value in info.items():
        table.add_row(key, str(value))
    console.print(table)
    if str(info["chat_format_source"]).startswith("fallback"):
        console.print(f"[yellow]chat format: {info['chat_format_source']}[/]")
    if not gpu_backend_available():
        console.print(
            '[dim]GPU offload: rebuild llama-cpp-python with CMAKE_ARGS="-DGGML_CUDA=on"[/]'
        )
