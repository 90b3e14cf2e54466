"""Where a RAG chain's sources come from: the ``sources`` step it is composed with.

A :class:`~orchestrator.chains.rag.RAGChain` is one answer step (numbered sources, ``[n]``
citations, "I don't know" without calling the model when nothing relevant was found) composed
with a sources step: a runnable from a question to ``(documents, trace)``, where the trace is
what the step did (``queries`` always; see :mod:`orchestrator.chains.strategies`). This module
holds the step, :class:`Sources`, as the plain pipeline has it (the question is the query); the
RAG strategies are its variants.

The chain decides which documents are good enough (its ``min_score`` / ``min_similarity``
filter, written once in :mod:`orchestrator.chains.rag`) and hands it to the step as ``keep``:
a step that loops (multi-hop) must filter each round, not only the end result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from langchain_core.documents import Document
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from pydantic import ConfigDict

from orchestrator.chains.llm_chain import reject_call_options
from orchestrator.errors import OptionError
from orchestrator.models.together import map_together, parallel_calls

#: Default number of sources when neither the chain nor the retriever says (as ``IndexRetriever``).
DEFAULT_K = 4

Trace = dict[str, Any]
"""What a sources step did for one question (``queries``, ``hops``, ``route``, ...)."""
Keep = Callable[[list[Document]], list[Document]]
"""The chain's filter of retrieved documents (``list``: keep them all)."""
Found = tuple[list[Document], Trace]
"""The sources found for one question, and the trace of how."""
T = TypeVar("T")
R = TypeVar("R")


def question_text(input: Any) -> str:
    """The question in a RAG input: a string, or the ``question`` (``query``, ``input``) key."""
    if isinstance(input, str):
        return input
    if isinstance(input, Mapping):
        for key in ("question", "query", "input"):
            if key in input:
                return str(input[key])
    raise OptionError(
        f"the RAG chain got {type(input).__name__} without a question",
        fix='pass a string or {"question": "..."}',
    )


def search_many_docs(retriever: Any, queries: Sequence[str], k: int) -> list[list[Document]]:
    """Top ``k`` per query in one batch (ours embed all queries at once)."""
    from orchestrator.retrieval import search_many

    return [list(docs) for docs in search_many(retriever, list(queries), k)]


def single_retriever(strategy: str, retrievers: Any) -> Any:
    """The one retriever of a single-index strategy (a one-entry mapping is unwrapped)."""
    if not isinstance(retrievers, Mapping):
        return retrievers
    if len(retrievers) != 1:
        raise OptionError(
            f"the {strategy!r} strategy searches one index, but {len(retrievers)} were given",
            fix="give one index, or use --strategy route or agentic to choose between several",
        )
    value = next(iter(retrievers.values()))
    return value[0] if isinstance(value, tuple) else value


class Sources(RunnableSerializable[Any, Found]):
    """A sources step, ``question -> (documents, trace)``; this base is the plain one.

    The plain step searches the question itself. A strategy changes :meth:`plan` (the model's
    part: what to search for one question) and :meth:`search` (every plan's searches in one
    batch), or :meth:`find_many` when finding is a loop (multi-hop).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    #: The registered strategy name (:data:`orchestrator.chains.strategies.RAG_STRATEGIES`).
    strategy: ClassVar[str] = "plain"

    retriever: Runnable[str, list[Document]]
    """What the step searches (for ``route``: every route, fused)."""

    @classmethod
    def over(cls, llm: Runnable[Any, Any], retrievers: Any, **options: Any) -> Sources:
        """This step over ``retrievers`` (one, or a one-entry mapping), with ``llm`` if the
        step calls a model; ``options`` are its own fields."""
        fields = {**options, "retriever": single_retriever(cls.strategy, retrievers)}
        if "llm" in cls.model_fields:
            fields["llm"] = llm
        return cls(**fields)

    @property
    def default_k(self) -> int:
        """Sources per question when the chain sets no ``k``: the retriever's, else 4."""
        return int(getattr(self.retriever, "k", None) or DEFAULT_K)

    def k_or_default(self, k: int | None) -> int:
        """``k``, or :attr:`default_k` when it is ``None``."""
        return k if k is not None else self.default_k

    def plan(self, question: str, config: RunnableConfig | None = None) -> Trace:
        """What to search for ``question``: at least ``{"queries": [...]}``."""
        return {"queries": [question]}

    def search(
        self, plans: Sequence[Trace], k: int | None, config: RunnableConfig | None = None
    ) -> list[list[Document]]:
        """Top ``k`` for each plan's first query, in one batch. One plan goes through the
        retriever's own ``invoke`` (callbacks; with ``k`` unset, the retriever's ``k``)."""
        if len(plans) == 1:
            options = {"k": k} if k is not None else {}
            return [list(self.retriever.invoke(plans[0]["queries"][0], config, **options))]
        queries = [p["queries"][0] for p in plans]
        return search_many_docs(self.retriever, queries, self.k_or_default(k))

    def find_many(
        self,
        questions: Sequence[str],
        k: int | None,
        keep: Keep = list,
        config: RunnableConfig | None = None,
    ) -> list[Found]:
        """For each question: up to ``k`` documents (``None``: :attr:`default_k`) that
        ``keep`` passes, and the trace. The model plans the questions together (see
        :meth:`together`), then every plan is searched in one batch."""
        plans = self.together(lambda q: self.plan(q, config), questions, config)
        lists = self.search(plans, k, config)
        return [(keep(docs), plan) for plan, docs in zip(plans, lists, strict=True)]

    def together(
        self, work: Callable[[T], R], items: Sequence[T], config: RunnableConfig | None
    ) -> list[R]:
        """``work`` for independent items (one question each), as many at a time as the
        step's model decodes together, results in order; a step without a model (the plain
        one) does them in turn."""
        llm = getattr(self, "llm", None)  # the field of the steps that call a model
        limit = 1 if llm is None else parallel_calls(llm, config)
        return map_together(work, items, limit=limit)

    def find(
        self, question: str, k: int | None, keep: Keep = list, config: RunnableConfig | None = None
    ) -> Found:
        """:meth:`find_many` for one question."""
        return self.find_many([question], k, keep, config)[0]

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Found:
        reject_call_options(kwargs, type(self).__name__)
        return self.find(question_text(input), None, list, config)
