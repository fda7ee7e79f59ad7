"""Recall@K and MRR for cross-modal retrieval with several relevant targets per query.

The cross-modal retrieval (CMR) convention: a query is a hit at K when *any* of its relevant targets is among the
first K retrieved ones (I2T has 5 relevant captions per image; T2I usually one image per caption). Recall@K is the
fraction of queries that are hits. MRR is the mean over queries of 1 / rank of the first relevant target (0 when none
was retrieved).

Two equivalent paths compute the first-hit rank of every query:

- a plain Python path for ragged lists of ids of any hashable type (strings, ints, ...);
- a vectorised numpy path, taken when `predictions` and `references` are both 2-D integer arrays (or tensors), e.g.
  the top-k matrix of a retriever. Rows are padded with a negative value (`-1`), which never counts as an id.

Both return exactly the same numbers (property-tested).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["recall_at_k", "tie_aware_recall_at_k"]

# Chunk of queries compared at once on the vectorised path: bounds the (chunk, L, R) boolean temporary.
_CHUNK_ELEMENTS = 1 << 24


def recall_at_k(
    predictions: Sequence[Sequence[Hashable]] | np.ndarray | Any,
    references: Sequence[Sequence[Hashable]] | np.ndarray | Any,
    k: int | Iterable[int] = (1, 5, 10),
) -> dict[str, float]:
    """Recall@K (hit if any relevant target is in the top K) and MRR over a set of queries.

    Args:
        predictions (`list[list[Hashable]]` or 2-D integer `np.ndarray` / `torch.Tensor`):
            One ranked list of target ids per query, best first. Ids inside one list must be distinct (a retriever
            returns distinct targets). Lists may be shorter than K (even empty): missing ranks are misses. As an
            integer array, negative entries are padding.
        references (`list[list[Hashable]]` or 2-D integer `np.ndarray` / `torch.Tensor`):
            The relevant target ids of each query; several are allowed (I2T: the 5 captions of an image), at least one
            is required. As an integer array, negative entries are padding.
        k (`int` or iterable of `int`, *optional*, defaults to `(1, 5, 10)`):
            The cut-offs; each must be a positive integer.

    Returns:
        `dict[str, float]`: `"recall@K"` for each K (ascending), `"mrr"` (over the whole ranked list),
        `"mrr@M"` with M = max(k) (ranks beyond M count 0), and `"num_queries"` (an `int`).

    Raises:
        TypeError: `predictions` / `references` (or one of their rows) is not a list-like of ids, or a K is not an int.
        ValueError: the number of queries differs, there are no queries, a query has no relevant id, a ranked list
            repeats an id, or a K is smaller than 1.

    Example:

    ```python
    >>> from semcore_hf.evaluation import recall_at_k
    >>> recall_at_k([["b", "a", "c"], ["x", "y", "z"]], [["a"], ["q", "z"]], k=[1, 3])
    {'recall@1': 0.0, 'recall@3': 1.0, 'mrr': 0.41666666666666663, 'mrr@3': 0.41666666666666663, 'num_queries': 2}

    ```
    """
    ks = _validate_k(k)
    if _is_array(predictions) and _is_array(references):
        ranks = _first_hit_ranks_vectorised(
            _to_int_matrix(predictions, "predictions"), _to_int_matrix(references, "references")
        )
    else:
        ranks = _first_hit_ranks(_to_rows(predictions, "predictions"), _to_rows(references, "references"))
    return _metrics_from_ranks(ranks, ks)


def _metrics_from_ranks(ranks: np.ndarray, ks: list[int]) -> dict[str, float]:
    """`ranks` is the 1-based rank of the first relevant target of each query, 0 when none was retrieved."""
    hit = ranks > 0
    out: dict[str, float] = {f"recall@{kk}": float(np.mean(hit & (ranks <= kk))) for kk in ks}
    reciprocal = np.where(hit, 1.0 / np.maximum(ranks, 1), 0.0)
    out["mrr"] = float(np.mean(reciprocal))
    out[f"mrr@{ks[-1]}"] = float(np.mean(np.where(ranks <= ks[-1], reciprocal, 0.0)))
    out["num_queries"] = int(len(ranks))
    return out


def _validate_k(k: int | Iterable[int]) -> list[int]:
    ks = [k] if isinstance(k, (int, np.integer)) else list(k) if isinstance(k, Iterable) else None
    if ks is None or not ks:
        raise TypeError(f"`k` must be a positive int or a non-empty list of them, got {k!r}.")
    for kk in ks:
        # bool is an int subclass; `k=True` is almost certainly a mistake.
        if isinstance(kk, bool) or not isinstance(kk, (int, np.integer)):
            raise TypeError(f"Every K must be an int, got {kk!r} in k={k!r}.")
        if kk < 1:
            raise ValueError(f"Every K must be >= 1, got {kk} in k={k!r}.")
    return sorted({int(kk) for kk in ks})


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or type(x).__module__.startswith("torch")


def _is_row(x: Any) -> bool:
    # A str is a Sequence too, but a ranked list given as one string is a bug (it would be read char by char).
    return isinstance(x, (list, tuple, np.ndarray)) or (_is_array(x) and getattr(x, "ndim", 0) == 1)


def _to_rows(x: Any, name: str) -> list[Sequence[Hashable]]:
    if _is_array(x):
        x = x.tolist()
    if not isinstance(x, (list, tuple)):
        raise TypeError(f"`{name}` must be a list with one list of target ids per query, got {type(x).__name__}.")
    for i, row in enumerate(x):
        if not _is_row(row):
            raise TypeError(
                f"`{name}[{i}]` must be a list of target ids, got {type(row).__name__} ({row!r:.60}). "
                f"Wrap a single id in a list: [{row!r:.30}]."
            )
    return [row.tolist() if _is_array(row) else row for row in x]


def _first_hit_ranks(predictions: list[Sequence[Hashable]], references: list[Sequence[Hashable]]) -> np.ndarray:
    """Plain path: 1-based rank of the first relevant id per query (0 = none)."""
    _check_lengths(len(predictions), len(references))
    ranks = np.zeros(len(predictions), dtype=np.int64)
    for q, (ranked, relevant) in enumerate(zip(predictions, references)):
        relevant = set(relevant)
        if not relevant:
            raise ValueError(f"Query {q} has no relevant target id in `references`; every query needs at least one.")
        if len(set(ranked)) != len(ranked):
            dup = next(t for i, t in enumerate(ranked) if t in ranked[:i])
            raise ValueError(
                f"`predictions[{q}]` lists target {dup!r} more than once; retrievers must return distinct targets."
            )
        for r, target in enumerate(ranked, start=1):
            if target in relevant:
                ranks[q] = r
                break
    return ranks


def _check_lengths(n_pred: int, n_ref: int) -> None:
    if n_pred != n_ref:
        raise ValueError(f"`predictions` has {n_pred} queries but `references` has {n_ref}; they must match.")
    if n_pred == 0:
        raise ValueError("`predictions` and `references` are empty; there is no query to evaluate.")


def _to_int_matrix(x: Any, name: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        x = x.detach().cpu().numpy()
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer):
        raise TypeError(
            f"As an array, `{name}` must be a 2-D integer matrix (queries x ids, negative = padding), "
            f"got shape {x.shape} and dtype {x.dtype}."
        )
    return x.astype(np.int64, copy=False)


def _first_hit_ranks_vectorised(predictions: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Vectorised path over padded integer matrices; equals `_first_hit_ranks` on the unpadded rows."""
    _check_lengths(predictions.shape[0], references.shape[0])
    valid_ref = references >= 0
    empty = np.flatnonzero(~valid_ref.any(axis=1))
    if empty.size:
        raise ValueError(
            f"Query {int(empty[0])} has no relevant target id in `references`; every query needs at least one."
        )
    valid_pred = predictions >= 0
    # Padding is only allowed at the end of a ranked row, so that column index + 1 is the rank.
    if (valid_pred[:, 1:] & ~valid_pred[:, :-1]).any():
        q = int(np.flatnonzero((valid_pred[:, 1:] & ~valid_pred[:, :-1]).any(axis=1))[0])
        raise ValueError(f"`predictions[{q}]` has an id after padding; pad (negative ids) only at the end of a row.")
    # Duplicates: after sorting each row, equal neighbours that are both real ids.
    srt = np.sort(predictions, axis=1)
    dup = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
    if dup.any():
        q = int(np.flatnonzero(dup.any(axis=1))[0])
        target = int(srt[q, 1:][dup[q]][0])
        raise ValueError(
            f"`predictions[{q}]` lists target {target!r} more than once; retrievers must return distinct targets."
        )
    n, width = predictions.shape
    ranks = np.zeros(n, dtype=np.int64)
    if width == 0:
        return ranks
    step = max(1, _CHUNK_ELEMENTS // max(1, width * references.shape[1]))
    for start in range(0, n, step):
        pred, ref = predictions[start : start + step], references[start : start + step]
        hits = ((pred[:, :, None] == ref[:, None, :]) & (ref[:, None, :] >= 0)).any(axis=2) & (pred >= 0)
        first = hits.argmax(axis=1)
        ranks[start : start + step] = np.where(hits.any(axis=1), first + 1, 0)
    return ranks


def tie_aware_recall_at_k(
    blocks: Sequence[Sequence[Sequence[Hashable]]],
    references: Sequence[Sequence[Hashable]],
    k: int | Iterable[int] = (1, 5, 10),
) -> dict[str, float]:
    """Recall@K and MRR when some ranks are ties: expected under a random order of every tie, and the optimistic bound.

    Where several targets share an identifier (a collision group) and nothing orders them (no GSV), their order in a
    ranked list is arbitrary, and Recall@K at a K that cuts through such a group depends on that arbitrary order.
    This takes each query's ranking as consecutive *blocks* of tied targets and reports, for each K:

    - `expected_recall@K`: the probability of a hit in the top K when each block is put in a uniformly random order
      (hypergeometric: a block of `m` targets holding `r` relevant ones, cut after `j` of its ranks, hits with
      probability `1 - C(m - r, j) / C(m, j)`);
    - `optimistic_recall@K`: a hit whenever a relevant target's block starts within the top K (the best order);
    - `expected_mrr`: E[1 / rank of the first relevant target] under random tie order;
    - `tied_at_1`: the share of queries whose first rank is a tie (the top block has more than one target).

    Args:
        blocks (`list[list[list[Hashable]]]`): per query, its ranked blocks, best first; each block lists the targets
            tied at that rank (a single target is a block of one). Blocks must be complete (a collision group is
            listed whole, even beyond the largest K).
        references (`list[list[Hashable]]`): the relevant target ids of each query.
        k (`int` or iterable of `int`, *optional*, defaults to `(1, 5, 10)`): the cut-offs.

    Returns:
        `dict[str, float]`: the keys above, plus `num_queries`.

    Example:

    ```python
    >>> from semcore_hf.evaluation.metrics import tie_aware_recall_at_k
    >>> tie_aware_recall_at_k([[["a", "b"], ["c"]]], [["b"]], k=[1, 2])["expected_recall@1"]
    0.5

    ```
    """
    from math import comb

    ks = _validate_k(k)
    _check_lengths(len(blocks), len(references))
    exp = {kk: 0.0 for kk in ks}
    opt = {kk: 0.0 for kk in ks}
    mrr = tied = 0.0
    for q, (ranking, relevant) in enumerate(zip(blocks, references)):
        relevant = set(relevant)
        if not relevant:
            raise ValueError(f"Query {q} has no relevant target id in `references`; every query needs at least one.")
        start = 0
        tied += len(ranking) > 0 and len(ranking[0]) > 1
        for block in ranking:
            m = len(block)
            r = sum(t in relevant for t in block)
            if r:
                # the first relevant target lies in this block: rank start + j + 1 with P(first at j)
                for kk in ks:
                    cut = kk - start
                    opt[kk] += cut > 0
                    if cut >= m:
                        exp[kk] += 1.0
                    elif cut > 0:
                        exp[kk] += 1.0 - comb(m - r, cut) / comb(m, cut)
                for j in range(m - r + 1):
                    p_first = comb(m - r, j) / comb(m, j) * r / (m - j)
                    mrr += p_first / (start + j + 1)
                break
            start += m
    n = len(blocks)
    out = {f"expected_recall@{kk}": exp[kk] / n for kk in ks}
    out.update({f"optimistic_recall@{kk}": opt[kk] / n for kk in ks})
    out["expected_mrr"] = mrr / n
    out["tied_at_1"] = tied / n
    out["num_queries"] = n
    return out
