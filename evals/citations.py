"""Citation recall and citation precision of RAG answers, as in ALCE.

ALCE (Gao et al. 2023, "Enabling Large Language Models to Generate Text with Citations",
EMNLP 2023) checks an answer's ``[n]`` citations statement by statement:

- the answer is split into statements (sentences); each statement cites the passages whose
  numbers it carries (``[1]``, ``[2][3]``; the number ``n`` is the ``n``-th retrieved context);
- **citation recall** of an answer = the fraction of its statements whose cited passages,
  concatenated, entail the statement (a statement without citations scores 0);
- **citation precision** of an answer = the fraction of its citations that are relevant. A
  citation of passage ``p`` in a statement whose cited set entails it is relevant when (a)
  ``p`` alone entails the statement, or (b) removing ``p`` makes the remaining cited passages
  no longer entail it; a citation in a statement its cited set does not entail is not
  relevant. An answer with no citation scores 0.

Two further ALCE rules are kept: a statement citing a number outside the retrieved contexts
scores recall 0 and its citations are not counted for precision; and the mean over answers is
of these per-answer values.

**Entailment.** ALCE judges entailment with TRUE (a T5-11B NLI model). No NLI model is
available offline here, so two substitutes are offered, each under its own metric name:

- ``citation_recall`` / ``citation_precision``: the local judge (the RAG judge's GGUF) answers
  "does the passage support the claim?" under a grammar built from a ``yes``/``no`` enum, so
  the verdict always parses (:class:`JudgeEntailment`);
- ``citation_recall_lexical`` / ``citation_precision_lexical``: the non-LLM baseline
  (:func:`lexical_entails`): the statement "is entailed" when the ROUGE-1 recall of the
  statement against the passage (the share of its stemmed words found in the passage,
  ``rouge-score``) is at least :data:`LEXICAL_THRESHOLD`. It rewards copying and cannot see
  negation or paraphrase; it is a floor to compare the judge with, not a verdict.

Statements are split with ``sentencex`` (a maintained rule-based sentence segmenter). A piece
that holds nothing but citation markers (``... in 1992. [2]``) is joined to the statement
before it, so a citation written after the full stop still counts for its sentence.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, Field

from orchestrator.errors import DataError
from orchestrator.extras import require

#: ``premise, statement -> does the premise entail the statement?``
Entails = Callable[[str, str], bool]

#: ROUGE-1 recall a statement needs against the passages to count as entailed (lexical
#: baseline). Chosen, not tuned: most of a statement's words must occur in what it cites.
LEXICAL_THRESHOLD = 0.7

_MARKER = re.compile(r"\[(\d+)\]")
_SPACED_MARKER = re.compile(r"\s*\[\d+\]")
_ONLY_MARKERS = re.compile(r"^(?:\s*\[\d+\])+\s*[.!?;:,]?\s*$")


@dataclass(frozen=True)
class Statement:
    """One answer sentence: its text without markers and the passage numbers it cites."""

    text: str
    cited: tuple[int, ...]


@dataclass(frozen=True)
class CitationScores:
    """Per-answer ALCE values and the counts they come from."""

    recall: float
    precision: float
    statements: int
    supported: int
    citations: int
    relevant: int


@dataclass(frozen=True)
class Score:
    """What a metric's ``ascore`` returns: the value (read by ``evals.rag``) and its parts."""

    value: float
    detail: dict[str, Any]


@cache
def _segmenter() -> Any:
    return require("sentencex", extra="eval", purpose="splitting answers into statements")


def sentences(text: str) -> list[str]:
    """``text`` split into sentences by ``sentencex`` (English rules), blank pieces dropped."""
    pieces = _segmenter().segment("en", text)
    return [p.strip() for p in pieces if p.strip()]


def split_statements(answer: str) -> list[Statement]:
    """The answer's statements with their cited numbers (first-citation order, no repeats).

    A piece that is only citation markers joins the statement before it (or, at the very
    start, the one after it)."""
    merged: list[str] = []
    pending = ""
    for piece in sentences(answer):
        if _ONLY_MARKERS.match(piece):
            if merged:
                merged[-1] = f"{merged[-1]} {piece}"
            else:
                pending = f"{pending} {piece}".strip()
            continue
        merged.append(f"{pending} {piece}".strip() if pending else piece)
        pending = ""
    if pending and not merged:
        merged.append(pending)
    out = []
    for text in merged:
        cited = tuple(dict.fromkeys(int(n) for n in _MARKER.findall(text)))
        plain = " ".join(_SPACED_MARKER.sub("", text).split())
        out.append(Statement(text=plain, cited=cited))
    return out


def _joint(contexts: Sequence[str], numbers: Sequence[int]) -> str:
    return "\n".join(contexts[n - 1].strip() for n in numbers)


def _relevant(
    statement: str, cited: tuple[int, ...], contexts: Sequence[str], entails: Entails
) -> int:
    """How many of ``cited`` (whose joint set entails ``statement``) are relevant (ALCE)."""
    if len(cited) == 1:
        return 1
    relevant = 0
    for number in cited:
        if entails(_joint(contexts, [number]), statement):  # (a) enough on its own
            relevant += 1
            continue
        rest = [n for n in cited if n != number]
        if not entails(_joint(contexts, rest), statement):  # (b) needed by the others
            relevant += 1
    return relevant


def citation_scores(answer: str, contexts: Sequence[str], entails: Entails) -> CitationScores:
    """ALCE citation recall and precision of one answer over its numbered ``contexts``.

    Raises :class:`DataError` for an answer with no statement (nothing to score)."""
    statements = split_statements(answer)
    if not statements:
        raise DataError(
            "the answer has no statement to check citations of",
            fix="score answers with text; an empty answer has no citation recall",
        )
    supported = citations = relevant = 0
    for statement in statements:
        cited = statement.cited
        if not cited or any(not 1 <= n <= len(contexts) for n in cited):
            continue  # no citation, or one to a passage that was not retrieved: recall 0
        citations += len(cited)
        if not statement.text or not entails(_joint(contexts, cited), statement.text):
            continue
        supported += 1
        relevant += _relevant(statement.text, cited, contexts, entails)
    return CitationScores(
        recall=supported / len(statements),
        precision=relevant / citations if citations else 0.0,
        statements=len(statements),
        supported=supported,
        citations=citations,
        relevant=relevant,
    )


@cache
def _rouge() -> Any:
    module = require("rouge_score.rouge_scorer", extra="eval", purpose="the lexical baseline")
    return module.RougeScorer(["rouge1"], use_stemmer=True)


def lexical_recall(premise: str, statement: str) -> float:
    """ROUGE-1 recall of ``statement`` against ``premise``: the share of the statement's
    (stemmed, lower-cased) words that the premise contains, counts clipped."""
    return float(_rouge().score(statement, premise)["rouge1"].recall)


def lexical_entails(premise: str, statement: str, threshold: float = LEXICAL_THRESHOLD) -> bool:
    """The non-LLM entailment proxy: :func:`lexical_recall` >= ``threshold``."""
    return lexical_recall(premise, statement) >= threshold


class EntailmentVerdict(BaseModel):
    """The judge's answer; the enum becomes the decoding grammar (only yes or no parse)."""

    supported: Literal["yes", "no"] = Field(description="yes if the passage supports the claim")


ENTAILMENT_PROMPT = (
    "Passage:\n{premise}\n\nClaim: {statement}\n\n"
    "Is the claim fully supported by the passage, with nothing in the claim that the passage "
    'does not say? Answer {{"supported": "yes"}} or {{"supported": "no"}}.'
)


class JudgeEntailment:
    """Entailment by the local judge (any object with ``generate(prompt, model)``, such as
    ``evals.judge.LlamaJudge``), remembered per (passage, statement): recall and precision ask
    the same questions, and the judge decodes greedily, so a repeat would give the same
    verdict."""

    def __init__(self, judge: Any) -> None:
        self.judge = judge
        self._seen: dict[tuple[str, str], bool] = {}

    def __call__(self, premise: str, statement: str) -> bool:
        key = (premise, statement)
        if key not in self._seen:
            prompt = ENTAILMENT_PROMPT.format(premise=premise, statement=statement)
            verdict = self.judge.generate(prompt, EntailmentVerdict)
            self._seen[key] = verdict.supported == "yes"
        return self._seen[key]


_SHARED: weakref.WeakKeyDictionary[Any, JudgeEntailment] = weakref.WeakKeyDictionary()


def judge_entailment(judge: Any) -> JudgeEntailment:
    """One :class:`JudgeEntailment` per judge, shared by the recall and precision metrics."""
    if judge is None:
        raise DataError("the citation metrics need a judge", fix="pass judge=LlamaJudge(...)")
    try:
        return _SHARED.setdefault(judge, JudgeEntailment(judge))
    except TypeError:  # not weak-referenceable: no sharing
        return JudgeEntailment(judge)


class CitationMetric:
    """``citation_recall`` or ``citation_precision`` under one entailment function, with the
    ``ascore(response=..., retrieved_contexts=...)`` shape ``evals.rag`` calls."""

    def __init__(self, kind: Literal["recall", "precision"], entails: Entails) -> None:
        self.kind = kind
        self.entails = entails

    def score(self, response: str, retrieved_contexts: Sequence[str]) -> Score:
        result = citation_scores(response, retrieved_contexts, self.entails)
        value = result.recall if self.kind == "recall" else result.precision
        return Score(value, dict(vars(result)))

    async def ascore(self, response: str, retrieved_contexts: Sequence[str]) -> Score:
        # The judge is a blocking llama.cpp call: off the event loop, as Ragas' own judges are.
        return await asyncio.to_thread(self.score, response, retrieved_contexts)


def build_citation_metric(name: str, judge: Any) -> CitationMetric:
    """The metric named ``citation_{recall,precision}[_lexical]``."""
    lexical = name.endswith("_lexical")
    kind: Literal["recall", "precision"] = "recall" if "recall" in name else "precision"
    return CitationMetric(kind, lexical_entails if lexical else judge_entailment(judge))
