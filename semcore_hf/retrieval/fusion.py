"""How SemCORE combines the generation score of a candidate with its Generative Semantic Verification (GSV) score.

    final(q, t) = gen(q, sid(t)) + weight * log P(yes | q, t)

`gen` is the generation score of the target's SID (the log-probability per token, or in total, of the SID given the
query; `SemCORERetriever(score=...)`), `log P(yes | q, t) = log sigmoid(gsv)` is the log-probability the model
gives to "yes" over "no" on the verification prompt (`GSVScorer`: `gsv = log P(yes) - log P(no)`). Both terms are
log-probabilities of the same model, so their sum is a product of two likelihoods, defined for any number of
candidates (two included) and computed per target; nothing is normalised over the candidate list, so collision
members, which share one SID and one `gen`, do not distort anyone's score. Ties (in particular the members of a
collision group when `weight` is 0) are broken by the GSV score, so GSV always orders a collision group.

`weight` is chosen on a validation split (`semcore_hf.evaluation.tune_gsv_weight`), not by hand; 0 keeps the
generation order and lets GSV only order collision groups.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def fuse_scores(
    generation_scores: Sequence[float] | torch.Tensor, gsv_scores: Sequence[float] | torch.Tensor, weight: float
) -> torch.Tensor:
    """`gen + weight * log sigmoid(gsv)` for each candidate (float64).

    Args:
        generation_scores (`Sequence[float]` or `torch.Tensor`): the generation score of each candidate's SID.
        gsv_scores (`Sequence[float]` or `torch.Tensor`): the GSV log-odds of each candidate.
        weight (`float`): the weight of the verification term, >= 0.

    Returns:
        `torch.Tensor`: the final score of each candidate.
    """
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
        raise ValueError(f"The GSV weight must be a number >= 0, got {weight!r}.")
    g = torch.as_tensor(generation_scores, dtype=torch.float64)
    v = torch.as_tensor(gsv_scores, dtype=torch.float64)
    if g.shape != v.shape:
        raise ValueError(f"{g.numel()} generation scores but {v.numel()} GSV scores.")
    return g + float(weight) * torch.nn.functional.logsigmoid(v)


def fused_order(
    generation_scores: Sequence[float] | torch.Tensor, gsv_scores: Sequence[float] | torch.Tensor, weight: float
) -> tuple[list[int], torch.Tensor]:
    """The candidates' order by `fuse_scores`, best first, ties broken by GSV, then by the input order.

    Returns:
        `(order, fused)`: positions best first, and the fused score of each candidate (in input order).
    """
    fused = fuse_scores(generation_scores, gsv_scores, weight)
    v = torch.as_tensor(gsv_scores, dtype=torch.float64)
    order = sorted(range(len(fused)), key=lambda i: (-float(fused[i]), -float(v[i]), i))
    return order, fused
