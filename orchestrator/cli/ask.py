"""``ask``: one question, answered plainly or with a prompting technique.

``--technique plain`` (the default) is the model's own answer, streamed as it is generated.
The others (``few-shot``, ``cot``, ``self-consistency``, ``tot``) are the runnables of
:mod:`orchestrator.chains.techniques`; they answer once the technique is done. Options that
only mean something for one technique are errors with any other: ``--samples`` (the number of
self-consistency samples), ``--breadth``/``--depth``/``--time-limit`` (the tree-of-thought
search) and ``--system`` (plain only: the techniques write their own prompts). ``--seed`` is
the base seed of self-consistency and tree-of-thought (sample ``i`` uses seed + i; -1 means 0,
so a run repeats unless a seed is given).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from orchestrator.cli.common import (
    ApiKeyOpt,
    BaseUrlOpt,
    ChatFormatOpt,
    JsonOpt,
    MaxTokensOpt,
    ModelOpt,
    SeedOpt,
    TemperatureOpt,
    console,
    guarded,
    print_json,
)
from orchestrator.errors import OptionError
from orchestrator.models import model_label

TECHNIQUES = ("plain", "few-shot", "cot", "self-consistency", "tot")

#: Technique-specific CLI options: flag -> (the technique it belongs to, keyword).
_ONLY_FOR = {
    "--samples": ("self-consistency", "samples"),
    "--breadth": ("tot", "breadth"),
    "--depth": ("tot", "depth"),
    "--time-limit": ("tot", "time_limit"),
}


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)


@guarded
def ask(
    text: Annotated[str, typer.Argument(help="The question or instruction.")],
    technique: Annotated[
        str, typer.Option("--technique", help=f"Prompting technique: {', '.join(TECHNIQUES)}.")
    ] = "plain",
    samples: Annotated[
        int | None, typer.Option("--samples", min=1, help="self-consistency: samples (5).")
    ] = None,
    breadth: Annotated[
        int | None, typer.Option("--breadth", min=1, help="tot: paths kept per level (2).")
    ] = None,
    depth: Annotated[int | None, typer.Option("--depth", min=1, help="tot: levels (2).")] = None,
    time_limit: Annotated[
        float | None, typer.Option("--time-limit", min=0.001, help="tot: search seconds (60).")
    ] = None,
    model: ModelOpt = None,
    max_tokens: MaxTokensOpt = None,
    temperature: TemperatureOpt = 0.7,
    seed: SeedOpt = -1,
    system: Annotated[str | None, typer.Option("--system", help="System prompt (plain).")] = None,
    chat_format: ChatFormatOpt = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ask the model once, plainly (tokens stream as they come) or with a prompting technique."""
    name = _technique_name(technique)
    given: dict[str, float | None] = {"--samples": samples, "--breadth": breadth}
    given.update({"--depth": depth, "--time-limit": time_limit})
    options = _technique_options(name, given, system, temperature, seed)
    from orchestrator.models import chat_model

    llm = chat_model(
        model=model,
        max_tokens=max_tokens,
        base_url=base_url,
        api_key=api_key,
        temperature=temperature,
        seed=seed,
        chat_format=chat_format,
    )
    if name == "plain":
        _plain(llm, text, system, as_json)
        return
    from orchestrator.chains.techniques import prompt_technique

    runnable = prompt_technique(name, llm, **options)
    with console.status(f"answering with {name}...", spinner="dots"):
        result = runnable.invoke(text)
    if as_json:
        details = {k: v for k, v in result.items() if k not in ("question", "answer", "technique")}
        head = {"answer": result["answer"], "model": model_label(llm), "technique": name}
        print_json({**head, **details})
    else:
        _show(result)


def _technique_name(technique: str) -> str:
    """The canonical name (an unknown one is an error with a "did you mean")."""
    from orchestrator.chains.techniques import technique_class

    return technique_class(technique).technique


def _technique_options(
    name: str, given: dict[str, Any], system: str | None, temperature: float, seed: int
) -> dict[str, Any]:
    """The technique's keyword options; a flag given for another technique is an error."""
    options: dict[str, Any] = {}
    for flag, value in given.items():
        owner, keyword = _ONLY_FOR[flag]
        if value is None:
            continue
        if owner != name:
            raise OptionError(
                f"{flag} applies to --technique {owner}, not to {name}",
                fix=f"leave out {flag}, or use --technique {owner}",
            )
        options[keyword] = value
    if system is not None and name != "plain":
        raise OptionError(
            f"--system applies to --technique plain; {name} writes its own prompts",
            fix="leave out --system",
        )
    if name in ("self-consistency", "tot"):
        options.update(temperature=temperature, base_seed=max(seed, 0))
    return options


def _plain(llm: Any, text: str, system: str | None, as_json: bool) -> None:
    """The model's own answer, streamed (the ``ask`` command before techniques existed)."""
    from langchain_core.messages import HumanMessage, SystemMessage

    messages = ([SystemMessage(system)] if system else []) + [HumanMessage(text)]
    final: Any = None
    for chunk in llm.stream(messages):
        final = chunk if final is None else final + chunk
        if not as_json and chunk.content:
            print(chunk.content, end="", flush=True)
    usage = dict(final.usage_metadata or {}) if final is not None else {}
    answer = str(final.content).strip() if final is not None else ""
    if as_json:
        print_json({"answer": answer, "model": model_label(llm), "usage": usage})
    else:
        print()


def _show(result: dict[str, Any]) -> None:
    """A technique's result for a terminal: what it did (dim), then the answer."""
    from rich.markup import escape

    if result.get("samples"):
        for sample in result["samples"]:
            console.print(f"[dim]seed {sample['seed']}: {escape(sample['answer'])}[/]")
        votes = ", ".join(f"{escape(a)}: {n}" for a, n in result["votes"].items())
        console.print(f"[dim]votes: {votes or 'none'}[/]")
    elif result.get("reasoning"):
        console.print(f"[dim]{escape(result['reasoning'])}[/]")
    if "stop_reason" in result:
        console.print(f"[dim]search stopped: {result['stop_reason']}[/]")
    console.print(escape(result["answer"]))
