"""BM25: the analyzer, exact equality with rank-bm25, and incremental add/delete."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rank_bm25 import BM25Okapi

from orchestrator.errors import OptionError
from orchestrator.retrieval.analyzer import Analyzer, AnalyzerConfig
from orchestrator.retrieval.bm25 import BM25Index, BM25Params

WORDS = [f"w{i}" for i in range(12)]
OKAPI = BM25Params(k1=1.5, b=0.75, epsilon=0.25, idf="okapi")  # rank-bm25's defaults
docs_strategy = st.lists(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=25), min_size=1, max_size=40
)


@settings(max_examples=60, deadline=None)
@given(
    docs=docs_strategy,
    query=st.lists(st.sampled_from([*WORDS, "unknown"]), max_size=6),
    k1=st.sampled_from([0.9, 1.2, 1.5]),
    b=st.sampled_from([0.0, 0.4, 0.75, 1.0]),
)
def test_scores_equal_rank_bm25_on_same_tokens(docs, query, k1, b) -> None:
    reference = BM25Okapi(docs, k1=k1, b=b)
    index = BM25Index(params=BM25Params(k1=k1, b=b, idf="okapi"))
    index.add_tokens(docs)
    np.testing.assert_allclose(
        index.get_scores(query), reference.get_scores(query), rtol=1e-12, atol=1e-12
    )


def test_adding_in_batches_equals_building_at_once() -> None:
    docs = [["a", "b"], ["b", "c", "c"], ["a"], ["d", "a", "a"]]
    once = BM25Index(params=OKAPI)
    once.add_tokens(docs)
    parts = BM25Index(params=OKAPI)
    parts.add_tokens(docs[:1])
    parts.add_tokens(docs[1:])
    np.testing.assert_allclose(parts.get_scores(["a", "c"]), once.get_scores(["a", "c"]))


def test_removing_rows_equals_rebuilding_without_them() -> None:
    docs = [["a", "b"], ["b", "c", "c"], ["a"], ["d", "a", "a"], ["e"]]
    index = BM25Index(params=OKAPI)
    index.add_tokens(docs)
    index.remove_rows(np.array([1, 4]))
    rebuilt = BM25Okapi([docs[0], docs[2], docs[3]])
    np.testing.assert_allclose(
        index.get_scores(["a", "b", "c"]), rebuilt.get_scores(["a", "b", "c"]), rtol=1e-12
    )


def test_analyzer_lowercases_drops_stop_words_and_stems() -> None:
    analyzer = Analyzer()
    assert analyzer("The Flows of HEATED plates, and flowing air!") == [
        "flow",
        "heat",
        "plate",
        "flow",
        "air",
    ]
    assert Analyzer(AnalyzerConfig(stopwords="none", language="none"))("The Cats") == [
        "the",
        "cats",
    ]


def test_analyzer_rejects_unknown_options_with_a_hint() -> None:
    with pytest.raises(OptionError, match="did you mean 'english'"):
        AnalyzerConfig(language="englsh")
    with pytest.raises(OptionError, match="stopwords"):
        AnalyzerConfig(stopwords="french-ish")


def test_okapi_idf_is_zero_for_terms_in_half_the_documents_lucene_is_not() -> None:
    docs = [["heat"], ["heat"], ["flow"], ["wing"]]
    okapi, lucene = BM25Index(params=OKAPI), BM25Index(params=BM25Params(idf="lucene"))
    okapi.add_tokens(docs)
    lucene.add_tokens(docs)
    assert okapi.get_scores(["heat"]).max() == 0.0
    assert lucene.get_scores(["heat"])[0] > 0.0


def test_top_k_ranks_matching_chunks_and_skips_non_matches() -> None:
    index = BM25Index()
    index.add(
        [
            "supersonic flow over a wedge",
            "boundary layer heat transfer",
            "heat transfer in supersonic boundary layers",
            "an unrelated note",
        ]
    )
    hits = index.top_k("supersonic heat transfer", k=10)
    assert [h.row for h in hits][:1] == [2]
    assert {h.row for h in hits} == {0, 1, 2}
    assert all(h.score > 0 for h in hits)
    assert index.top_k("nothing matches this", k=3) == []
