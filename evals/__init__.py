"""Evaluation: IR metrics equal to trec_eval's, Ragas with a local judge, suites and reports.

    from evals import evaluate_run
    evaluate_run(qrels, run, ["map", "ndcg_cut_10", "recip_rank", "P_10", "recall_100"])
    # {"per_query": {qid: {measure: value}}, "mean": {measure: value}}

The metrics and TREC file helpers import nothing heavy; the Ragas path (``LlamaJudge``,
``evaluate_rag``) and reports load on first use.
"""

from __future__ import annotations

from evals.metrics import MEASURES, evaluate_run, precision_recall_points
from evals.trec import read_qrels, read_run, write_qrels, write_run
from orchestrator.lazy import lazy_getattr

_LAZY = {
    "evaluate_retriever": "evals.retrieval",
    "retrieve_run": "evals.retrieval",
    "RetrievalEvaluation": "evals.retrieval",
    "LlamaJudge": "evals.judge",
    "local_embeddings": "evals.judge",
    "import_ragas": "evals.judge",
    "load_qa": "evals.qa",
    "QASample": "evals.qa",
    "answer_samples": "evals.qa",
    "to_evaluation_dataset": "evals.qa",
    "evaluate_rag": "evals.rag",
    "RAG_METRICS": "evals.rag",
    "RagEvaluation": "evals.rag",
    "load_suite": "evals.suite",
    "Suite": "evals.suite",
    "run_suite": "evals.runner",
    "gate": "evals.runner",
    "write_reports": "evals.report",
}


__getattr__ = lazy_getattr("evals", _LAZY)


__all__ = [
    "MEASURES",
    "evaluate_run",
    "precision_recall_points",
    "read_qrels",
    "read_run",
    "write_qrels",
    "write_run",
    *sorted(_LAZY),
]
