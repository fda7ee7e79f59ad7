"""Recall@K (and MRR) for cross-modal retrieval with several relevant targets per query, as an `evaluate` metric.

A thin wrapper: the numbers come from `semcore_hf.evaluation.metrics.recall_at_k`, which is the primary API
(`evaluate` is in maintenance mode). Load it offline with `evaluate.load("path/to/recall_at_k")` or
`semcore_hf.evaluation.load_recall_metric()`.
"""

import datasets
import evaluate

from semcore_hf.evaluation.metrics import recall_at_k

_DESCRIPTION = """\
Recall@K for cross-modal retrieval (text-to-image and image-to-text), with the CMR convention: a query is a hit at K
when any of its relevant targets is among its first K retrieved targets, and Recall@K is the fraction of hit queries.
Several relevant targets per query are allowed (image-to-text: the 5 captions of an image). Also returns the mean
reciprocal rank of the first relevant target (MRR, over the whole ranked list and cut at max(K)) and the number of
queries.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[str]]` or `list[list[int]]`):
        One ranked list of target ids per query, best first. Ids inside one list must be distinct.
    references (`list[list[str]]` or `list[list[int]]`):
        The relevant target ids of each query (at least one per query; several allowed).
    k (`int` or `list[int]`, *optional*, defaults to `(1, 5, 10)`):
        The cut-offs K, each >= 1.

Returns:
    `recall@K` (`float`) for each K, `mrr` (`float`), `mrr@M` (`float`, M = max(k)) and `num_queries` (`int`).

Examples:

    >>> import evaluate
    >>> from semcore_hf.evaluation import load_recall_metric
    >>> metric = load_recall_metric()
    >>> metric.compute(predictions=[["b", "a", "c"], ["x", "y", "z"]], references=[["a"], ["q", "z"]], k=[1, 3])
    {'recall@1': 0.0, 'recall@3': 1.0, 'mrr': 0.41666666666666663, 'mrr@3': 0.41666666666666663, 'num_queries': 2}
"""

_CITATION = """\
@article{li2025semcore,
  title   = {{SemCORE}: A Semantic-Enhanced Generative Cross-Modal Retrieval Framework with {MLLMs}},
  author  = {Li, Haoxuan and Bin, Yi and Ma, Yunshan and Wang, Guoqing and Yang, Yang and Ng, See-Kiong and
             Chua, Tat-Seng},
  journal = {arXiv preprint arXiv:2504.13172},
  year    = {2025}
}
"""


def _features(value_type: str) -> datasets.Features:
    return datasets.Features(
        {
            "predictions": datasets.Sequence(datasets.Value(value_type)),
            "references": datasets.Sequence(datasets.Value(value_type)),
        }
    )


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RecallAtK(evaluate.Metric):
    """Recall@K and MRR with several relevant targets per query; see `semcore_hf.evaluation.recall_at_k`."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # String ids (captions / image file names) or integer ids; `evaluate` picks the one the input matches.
            features=[_features("string"), _features("int64")],
            reference_urls=["https://arxiv.org/abs/2504.13172"],
        )

    def _compute(self, predictions, references, k=(1, 5, 10)) -> dict:
        return recall_at_k(list(predictions), list(references), k=k)
