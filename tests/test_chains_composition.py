"""RAG strategies and prompting techniques are composed, not stacked: every class in
``chains/strategies/``, ``chains/techniques/`` (and the RAG chain and sources step they compose)
is at most two project classes deep (issue 19)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

PACKAGES = ("orchestrator.chains.strategies", "orchestrator.chains.techniques")
MODULES = ("orchestrator.chains.rag", "orchestrator.chains.sources")
MAX_DEPTH = 2


def modules() -> list[ModuleType]:
    found = [importlib.import_module(name) for name in MODULES]
    for name in PACKAGES:
        package = importlib.import_module(name)
        found.append(package)
        for info in pkgutil.iter_modules(package.__path__, f"{name}."):
            found.append(importlib.import_module(info.name))
    return found


def project(cls: type) -> bool:
    """A class of ours; a parametrised pydantic generic (``RunnableSerializable[Any, X]``, which
    some pydantic versions name after the module that wrote the subscript) is its origin's."""
    origin = (getattr(cls, "__pydantic_generic_metadata__", None) or {}).get("origin")
    if origin is not None:
        return project(origin)
    return cls.__module__.startswith("orchestrator.")


def depth(cls: type) -> int:
    """Project classes on the longest path from ``cls`` up to an outside base, ``cls`` included."""
    if not project(cls):
        return 0
    return 1 + max((depth(base) for base in cls.__bases__), default=0)


def own_classes() -> list[type]:
    return [
        cls
        for module in modules()
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__ and project(cls)
    ]


def test_the_scan_finds_the_strategies_and_techniques() -> None:
    names = {cls.__name__ for cls in own_classes()}
    assert {"Sources", "MultiHopSources", "RouteSources", "RAGChain"} <= names
    assert {"Technique", "AnswerStep", "SelfConsistency", "TreeOfThought"} <= names


@pytest.mark.parametrize("cls", own_classes(), ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_inheritance_is_at_most_two_project_levels(cls: type) -> None:
    chain = [c.__name__ for c in cls.__mro__ if project(c)]
    assert depth(cls) <= MAX_DEPTH, (
        f"{cls.__name__} is {depth(cls)} project classes deep ({' -> '.join(chain)}): "
        "compose a step instead of subclassing a subclass"
    )


def test_the_old_deep_chains_are_now_two_levels() -> None:
    from orchestrator.chains.strategies import HydeSources
    from orchestrator.chains.techniques import SelfConsistency

    assert depth(SelfConsistency) == 2 and depth(HydeSources) == 2
