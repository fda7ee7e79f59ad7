"""Evaluation: Recall@K / MRR with several relevant targets per query, its `evaluate` module, and plots."""

from __future__ import annotations

from pathlib import Path

from semcore_hf.evaluation.baselines import dense_text_retrieval
from semcore_hf.evaluation.harness import QuerySet, build_query_set, evaluate_retriever, tune_gsv_weight
from semcore_hf.evaluation.metrics import recall_at_k, tie_aware_recall_at_k
from semcore_hf.evaluation.plots import plot_recall_curves

__all__ = [
    "RECALL_METRIC_PATH",
    "QuerySet",
    "build_query_set",
    "dense_text_retrieval",
    "evaluate_retriever",
    "load_recall_metric",
    "plot_recall_curves",
    "recall_at_k",
    "tie_aware_recall_at_k",
    "tune_gsv_weight",
]

__all__ += ["SIDRetrievalEvaluator"]


def __getattr__(name: str):
    # The evaluator is a transformers.TrainerCallback (importing it costs torch): loaded on first use only.
    if name == "SIDRetrievalEvaluator":
        from semcore_hf.evaluation.evaluator import SIDRetrievalEvaluator

        return SIDRetrievalEvaluator
    raise AttributeError(f"module 'semcore_hf.evaluation' has no attribute {name!r}")


#: Folder of the local `evaluate` module (`recall_at_k/recall_at_k.py`: the script name must equal the folder name).
RECALL_METRIC_PATH = str(Path(__file__).resolve().parent / "recall_at_k")


def load_recall_metric(**kwargs):
    """Load the `recall_at_k` `evaluate` metric from this package (offline; never touches the Hub).

    Args:
        **kwargs:
            Passed to `evaluate.load` (e.g. `experiment_id`, `num_process`, `process_id` for distributed use).

    Returns:
        `evaluate.EvaluationModule`: the `RecallAtK` metric; `compute(predictions=..., references=..., k=[1, 5, 10])`.
    """
    import evaluate  # lazy: importing evaluate costs ~1 s and is only needed here

    return evaluate.load(RECALL_METRIC_PATH, **kwargs)
