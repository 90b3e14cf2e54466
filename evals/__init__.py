"""Evaluation: IR metrics equal to trec_eval's, Ragas with a local judge, suites and reports.

    from orchestrator.evals import evaluate_run
    evaluate_run(qrels, run, ["map", "ndcg_cut_10", "recip_rank", "P_10", "recall_100"])
    # {"per_query": {qid: {measure: value}}, "mean": {measure: value}}

The metrics and TREC file helpers import nothing heavy; the Ragas path (``LlamaJudge``,
``evaluate_rag`` / ``aevaluate_rag``) and reports load on first use. Importing any of these
modules changes nothing in the process (environment, ``sys.modules`` beyond the import itself,
matplotlib's backend).
"""

from __future__ import annotations

from orchestrator.evals.metrics import MEASURES, evaluate_run, precision_recall_points
from orchestrator.evals.trec import read_qrels, read_run, write_qrels, write_run
from orchestrator.lazy import lazy_getattr

_LAZY = {
    "evaluate_retriever": "orchestrator.evals.retrieval",
    "retrieve_run": "orchestrator.evals.retrieval",
    "RetrievalEvaluation": "orchestrator.evals.retrieval",
    "LlamaJudge": "orchestrator.evals.judge",
    "local_embeddings": "orchestrator.evals.judge",
    "import_ragas": "orchestrator.evals.judge",
    "load_qa": "orchestrator.evals.qa",
    "QASample": "orchestrator.evals.qa",
    "answer_samples": "orchestrator.evals.qa",
    "to_evaluation_dataset": "orchestrator.evals.qa",
    "evaluate_rag": "orchestrator.evals.rag",
    "aevaluate_rag": "orchestrator.evals.rag",
    "RAG_METRICS": "orchestrator.evals.rag",
    "RagEvaluation": "orchestrator.evals.rag",
    "load_suite": "orchestrator.evals.suite",
    "Suite": "orchestrator.evals.suite",
    "run_suite": "orchestrator.evals.runner",
    "gate": "orchestrator.evals.runner",
    "write_reports": "orchestrator.evals.report",
    "compare_items": "orchestrator.evals.compare",
    "paired": "orchestrator.evals.compare",
    "load_items": "orchestrator.evals.items",
    "EvalCache": "orchestrator.evals.cache",
    "evaluate_agent": "orchestrator.evals.agents",
    "load_tasks": "orchestrator.evals.agents",
    "generate_dataset": "orchestrator.evals.generate",
}


__getattr__ = lazy_getattr("orchestrator.evals", _LAZY)


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
