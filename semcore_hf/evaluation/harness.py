"""Retrieval evaluation harness: the standard CMR protocol over a normalised image-caption split.

T2I: every caption of every image of the split is a query; its one relevant target is its image; the gallery is the
split's images (Karpathy protocol: 1K Flickr30K / 5K COCO test images). I2T: every image of the split is a query;
its relevant targets are its captions (5 per image on Flickr30K / COCO); the gallery is the split's captions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from semcore_hf.evaluation.metrics import recall_at_k, tie_aware_recall_at_k

logger = logging.getLogger(__name__)


@dataclass
class QuerySet:
    """Queries, their relevant target ids and the gallery of one direction and split.

    Attributes:
        direction (`str`): `"t2i"` or `"i2t"`.
        query_ids (`list[str]`): a caption id (T2I) or an image id (I2T) per query.
        queries (`list`): caption texts (T2I) or PIL images (I2T).
        relevant (`list[list[str]]`): the relevant target ids of each query.
        gallery (`list[str]`): every target id of the split (what retrieval ranks).
    """

    direction: str
    query_ids: list[str] = field(default_factory=list)
    queries: list[Any] = field(default_factory=list)
    relevant: list[list[str]] = field(default_factory=list)
    gallery: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.queries)

    def head(self, n: int | None) -> QuerySet:
        """The first `n` queries (the gallery is unchanged)."""
        if n is None or n >= len(self):
            return self
        return QuerySet(self.direction, self.query_ids[:n], self.queries[:n], self.relevant[:n], self.gallery)


def build_query_set(rows: Any, direction: str = "t2i", split: str = "test") -> QuerySet:
    """The queries of `split` from a normalised source (`semcore_hf.data.load_image_caption_source`).

    Args:
        rows (`datasets.DatasetDict`): normalised rows (`image_id`, `image`, `captions`, `split`).
        direction (`str`, *optional*, defaults to `"t2i"`): `"t2i"` or `"i2t"`.
        split (`str`, *optional*, defaults to `"test"`): the split to evaluate.
    """
    from semcore_hf.data.sources import caption_id

    if direction not in ("t2i", "i2t"):
        raise ValueError(f"direction must be 't2i' or 'i2t', got {direction!r}.")
    if split not in rows:
        raise ValueError(f"Split {split!r} not in the data (it has {list(rows)}).")
    ds = rows[split]
    qs = QuerySet(direction)
    if direction == "t2i":
        for image_id, caps in zip(ds["image_id"], ds["captions"]):
            qs.gallery.append(str(image_id))
            for j, cap in enumerate(caps):
                qs.query_ids.append(caption_id(str(image_id), j))
                qs.queries.append(cap)
                qs.relevant.append([str(image_id)])
        return qs
    for row in ds:
        ids = [caption_id(str(row["image_id"]), j) for j in range(len(row["captions"]))]
        qs.gallery.extend(ids)
        qs.query_ids.append(str(row["image_id"]))
        qs.queries.append(row["image"])
        qs.relevant.append(ids)
    return qs


def evaluate_retriever(
    retriever: Any,
    query_set: QuerySet,
    k: Sequence[int] = (1, 5, 10),
    num_beams: int | None = None,
    batch_size: int = 8,
    gsv_weight: float | None = None,
    max_num_beams: int | None = None,
    certify: int | None = None,
    show_progress: bool = True,
    shard: bool | None = None,
) -> dict[str, Any]:
    """Run `retriever.retrieve` on every query and score Recall@K / MRR.

    Under `accelerate launch` or `torchrun` (an initialised `torch.distributed` process group of N processes), each
    process retrieves a contiguous 1/N of the queries, cut at batch boundaries so that every batch holds the queries
    it holds in one process, and the results are all-gathered in query order: every process returns exactly what a
    single process returns (timing aside).

    Args:
        retriever (`SemCORERetriever` or any object with the same `retrieve`): restrict it to
            `query_set.gallery` (its `gallery=` argument) for the standard protocol.
        query_set (`QuerySet`): from `build_query_set`.
        k (`Sequence[int]`, *optional*, defaults to `(1, 5, 10)`): the cut-offs.
        num_beams (`int`, *optional*): beams of the constrained search (defaults to `max(k)`).
        batch_size (`int`, *optional*, defaults to 8): queries per `generate` call.
        gsv_weight (`float`, *optional*): GSV weight (see `SemCORERetriever.retrieve`); `None` disables GSV.
        max_num_beams (`int`, *optional*): most beams the exact search may widen to (see
            `SemCORERetriever.retrieve`).
        certify (`int`, *optional*): leading ranks the search must certify before it stops widening.
        show_progress (`bool`, *optional*, defaults to `True`): tqdm over batches (on the first process only).
        shard (`bool`, *optional*): split the queries across the `torch.distributed` processes; by default whenever
            a process group of more than one process is initialised. `False` has every process run every query.

    Returns:
        `dict`: `metrics` (recall@K, mrr, ...), `seconds_per_query`, `exact_fraction` (queries whose whole ranking
        is certified exact), `exact_at_1_fraction` (queries whose first result is), and `predictions` (per query:
        id, ranked target ids, relevant ids).
    """
    # A gallery smaller than the largest cut-off: every target is returned and Recall@K for larger K equals
    # Recall@|gallery|, as in any ranking metric.
    rankable = getattr(retriever, "num_targets", None) or len(query_set.gallery) or max(k)
    kmax = min(max(k), rankable)
    t0 = time.perf_counter()
    kwargs = {k_: v for k_, v in (("max_num_beams", max_num_beams), ("certify", certify)) if v is not None}
    rank, world = _process_group() if shard is not False else (0, 1)
    lo, hi = _shard_bounds(len(query_set), batch_size, rank, world)

    def run() -> list[list[dict[str, Any]]]:
        return retriever.retrieve(
            query_set.queries[lo:hi] if world > 1 else query_set.queries,
            k=kmax,
            num_beams=num_beams or kmax,
            batch_size=batch_size,
            direction=query_set.direction,
            gsv_weight=gsv_weight,
            show_progress=show_progress and rank == 0,
            **kwargs,
        )

    results = run() if world == 1 else _gather_shards(run, rank, world)
    seconds = time.perf_counter() - t0
    ranked = [[r["target_id"] for r in per] for per in results]
    metrics = recall_at_k(ranked, query_set.relevant, k=k)
    index = getattr(retriever, "index", None)
    if index is not None and hasattr(index, "targets_of"):
        # Members of a collision group share one score and nothing orders them: also report the recall expected
        # under a random order of each group (and the optimistic bound), next to the as-returned order above.
        blocks = [_tie_blocks(per, index, getattr(retriever, "gallery", None)) for per in results]
        metrics.update(tie_aware_recall_at_k(blocks, query_set.relevant, k=k))
        metrics["index_collision_fraction"] = index.collision_report()["fraction_in_groups"]
    short = sum(len(r) < kmax for r in ranked)
    if short:
        logger.warning("%d of %d queries got fewer than %d targets: raise num_beams.", short, len(ranked), kmax)
    # Share of queries whose SID ranking the search certified equal to exhaustive scoring (see decoding.search).
    exact = [all(r.get("exact", True) for r in per) for per in results]
    exact_at_1 = [bool(per) and per[0].get("exact", True) for per in results]
    return {
        "metrics": metrics,
        "seconds_per_query": seconds / max(len(query_set), 1),
        "exact_fraction": sum(exact) / max(len(exact), 1),
        "exact_at_1_fraction": sum(exact_at_1) / max(len(exact_at_1), 1),
        "queries_short_of_k": short,
        "predictions": [
            {"query_id": q, "ranked": r, "relevant": rel}
            for q, r, rel in zip(query_set.query_ids, ranked, query_set.relevant)
        ],
    }


def _process_group() -> tuple[int, int]:
    """`(rank, world_size)` of the initialised torch.distributed process group, `(0, 1)` without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _shard_bounds(n: int, batch_size: int, rank: int, world: int) -> tuple[int, int]:
    """The queries `[lo, hi)` of process `rank`: whole batches, as even a share of them as possible."""
    batches = -(-n // batch_size)
    return min(rank * batches // world * batch_size, n), min((rank + 1) * batches // world * batch_size, n)


def _gather_shards(run, rank: int, world: int) -> list[Any]:
    """Every process's `run()`, concatenated in rank order on every process; an error anywhere raises everywhere
    (instead of leaving the other processes waiting in the collective)."""
    import torch.distributed as dist

    try:
        mine: tuple[Any, str | None] = (run(), None)
    except Exception as e:  # re-raised below, after the others know
        mine, error = (None, f"{type(e).__name__}: {e}"), e
    else:
        error = None
    parts: list[Any] = [None] * world
    dist.all_gather_object(parts, mine)
    if error is not None:
        raise error
    failed = [(r, msg) for r, (_, msg) in enumerate(parts) if msg is not None]
    if failed:
        raise RuntimeError(f"Retrieval failed on process {failed[0][0]} of {world}: {failed[0][1]}")
    return [item for part, _ in parts for item in part]


def _tie_blocks(results: list[dict[str, Any]], index: Any, gallery: Any) -> list[list[str]]:
    """Consecutive results of one SID and one score (an unordered collision group), completed to the whole group.

    Results that GSV scored (`gsv_score` set) are ordered individually, so each is a block of its own.
    """
    blocks: list[list[str]] = []
    last = None
    for r in results:
        key = (r["sid"], r["score"]) if r.get("gsv_score") is None else object()
        if key != last:
            if r.get("gsv_score") is None:
                members = [t for t in index.targets_of(r["sid"]) if gallery is None or t in gallery]
                blocks.append(members or [r["target_id"]])
            else:
                blocks.append([r["target_id"]])
            last = key
    return blocks


DEFAULT_GSV_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


def tune_gsv_weight(
    retriever: Any,
    query_set: QuerySet,
    weights: Sequence[float] = DEFAULT_GSV_WEIGHTS,
    k: Sequence[int] = (1, 5, 10),
    num_beams: int | None = None,
    batch_size: int = 8,
    show_progress: bool = True,
    max_num_beams: int | None = None,
) -> dict[str, Any]:
    """Choose the GSV weight on a validation split: the one with the best Recall@1 (then MRR, then the smaller).

    The candidates and their generation and GSV scores are computed once (`retrieve(gsv_weight=0)`); every weight
    then only re-orders them (`semcore_hf.retrieval.fusion.fused_order`), so the grid costs one retrieval.

    Args:
        retriever (`SemCORERetriever`): with a `GSVScorer` (`from_pretrained(..., gsv=True)`), restricted to the
            validation gallery.
        query_set (`QuerySet`): the validation queries (never the test split).
        weights (`Sequence[float]`, *optional*): the grid, each >= 0.
        k (`Sequence[int]`, *optional*, defaults to `(1, 5, 10)`): the cut-offs reported.
        num_beams (`int`, *optional*), batch_size (`int`, *optional*, defaults to 8), max_num_beams (`int`,
            *optional*): as in `evaluate_retriever`.
        show_progress (`bool`, *optional*, defaults to `True`): tqdm over batches.

    Returns:
        `dict`: `best_weight`, `table` (weight -> metrics) and `seconds_per_query` of the GSV retrieval.
    """
    from semcore_hf.retrieval.fusion import fused_order

    if not weights:
        raise ValueError("`weights` is empty: pass at least one candidate weight.")
    rankable = getattr(retriever, "num_targets", None) or len(query_set.gallery) or max(k)
    kmax = min(max(k), rankable)
    t0 = time.perf_counter()
    results = retriever.retrieve(
        query_set.queries,
        k=kmax,
        num_beams=num_beams or kmax,
        batch_size=batch_size,
        direction=query_set.direction,
        gsv_weight=0.0,
        show_progress=show_progress,
        **({} if max_num_beams is None else {"max_num_beams": max_num_beams}),
    )
    seconds = (time.perf_counter() - t0) / max(len(query_set), 1)
    table = {}
    for w in weights:
        ranked = []
        for per in results:
            order, _ = fused_order([r["generation_score"] for r in per], [r["gsv_score"] for r in per], w)
            ranked.append([per[i]["target_id"] for i in order])
        table[float(w)] = recall_at_k(ranked, query_set.relevant, k=k)
    first = min(k)
    best = max(table, key=lambda w: (table[w][f"recall@{first}"], table[w]["mrr"], -w))
    return {"best_weight": best, "table": table, "seconds_per_query": seconds}
