"""Embedding baselines in the same protocol, so generative numbers always come with a reference point."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def dense_text_retrieval(
    embedder,
    queries: Sequence[str],
    target_ids: Sequence[str],
    target_texts: Sequence[str],
    k: int = 10,
    batch_size: int = 64,
) -> list[list[str]]:
    """Two-tower text retrieval with a sentence-transformer: cosine(query, target text), brute force.

    For T2I without a text-aligned vision model this ranks images by their (generated) captions: the same
    information the image SIDs are built from, which makes it the fair dense counterpart of a text-only SemCORE.

    Args:
        embedder (`SentenceTransformer`): the text encoder.
        queries (`Sequence[str]`): query texts.
        target_ids (`Sequence[str]`): gallery target ids.
        target_texts (`Sequence[str]`): one text per target, aligned with `target_ids`.
        k (`int`, *optional*, defaults to 10): targets per query.
        batch_size (`int`, *optional*, defaults to 64): encoding batch size.

    Returns:
        `list[list[str]]`: the top-`k` target ids of each query.
    """
    if len(target_ids) != len(target_texts):
        raise ValueError(f"{len(target_ids)} target ids but {len(target_texts)} target texts.")
    if k > len(target_ids):
        raise ValueError(f"k={k} is larger than the gallery ({len(target_ids)} targets).")
    q = embedder.encode(list(queries), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    t = embedder.encode(list(target_texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    sims = q @ t.T
    top = np.argpartition(-sims, kth=k - 1, axis=1)[:, :k]
    order = np.take_along_axis(sims, top, axis=1).argsort(axis=1)[:, ::-1]
    top = np.take_along_axis(top, order, axis=1)
    return [[target_ids[j] for j in row] for row in top]
