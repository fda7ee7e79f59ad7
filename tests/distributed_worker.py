"""One process of a `torchrun --nproc-per-node 2` test run (gloo on CPU); the tests in `test_distributed.py` launch it.

    torchrun --nproc-per-node 2 tests/distributed_worker.py MODE OUT_DIR

Every process writes `OUT_DIR/rank<r>.json`: what it computed sharded and, where the mode has one, what it computed
alone in the same process (so both saw the same thread settings).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class BatchSensitiveRetriever:
    """Rankings that depend on which queries share a batch: a shard border inside a batch would change them."""

    num_targets = 5

    def __init__(self, fail_on_rank: int | None = None):
        self.fail_on_rank = fail_on_rank
        self.seen = 0

    def retrieve(self, queries, k=10, num_beams=None, batch_size=8, direction=None, gsv_weight=None, **kw):
        import torch.distributed as dist

        if self.fail_on_rank is not None and dist.get_rank() == self.fail_on_rank:
            raise ValueError("query 3 is bad")
        self.seen += len(queries)
        out = []
        for start in range(0, len(queries), batch_size):
            batch = queries[start : start + batch_size]
            for q in batch:
                h = hashlib.sha256(("|".join(batch) + "#" + q).encode()).digest()
                order = sorted(range(self.num_targets), key=lambda t: h[t])
                out.append([{"target_id": f"t{t}", "sid": f"s{t}", "score": -i} for i, t in enumerate(order[:k])])
        return out


def _query_set(n: int):
    from semcore_hf.evaluation import QuerySet

    ids = [f"q{i}" for i in range(n)]
    return QuerySet("t2i", ids, [f"query {i}" for i in range(n)], [[f"t{i % 5}"] for i in range(n)], ["t0"])


def _harness(out: dict) -> None:
    from semcore_hf.evaluation import evaluate_retriever

    for n, batch in ((13, 4), (3, 8), (16, 2)):  # uneven shards; a process with no batch; many batches
        qs = _query_set(n)
        retriever = BatchSensitiveRetriever()
        sharded = evaluate_retriever(retriever, qs, k=(1, 3), batch_size=batch, show_progress=False)
        alone = evaluate_retriever(BatchSensitiveRetriever(), qs, k=(1, 3), batch_size=batch, shard=False)
        for res in (sharded, alone):
            res.pop("seconds_per_query")
        out[f"{n}x{batch}"] = {"sharded": sharded, "alone": alone, "seen": retriever.seen}
    try:
        evaluate_retriever(BatchSensitiveRetriever(fail_on_rank=1), _query_set(9), batch_size=2)
    except Exception as e:  # every process must raise, none may hang in the collective
        out["error"] = f"{type(e).__name__}: {e}"


def _embedding(out: dict) -> None:
    import numpy as np

    from semcore_hf.identifiers import SIDBuilder, SIDConfig

    class Counting:
        """Deterministic per text; counts the texts this process embedded."""

        def __init__(self):
            self.count = 0

        def get_sentence_embedding_dimension(self):
            return 8

        def encode(self, texts, **kwargs):
            self.count += len(texts)
            rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:8], dtype=np.uint8) for t in texts]
            return np.asarray(rows, dtype=np.float32).reshape(len(texts), 8)

    words = "dog cat red ball park grass beach three four clock boat lake".split()
    texts = [" ".join(words[(i * j) % len(words)] for j in range(1, 6)) + f" {i}" for i in range(70)]
    base = dict(embedding_model="x", num_clusters=3, kmeans_n_init=1, embedding_chunk_size=16)
    embedder = Counting()
    sharded = SIDBuilder(SIDConfig(**base, embedding_distributed=True), embedder=embedder).build(
        texts, show_progress=False
    )
    alone = SIDBuilder(SIDConfig(**base), embedder=Counting()).build(texts, show_progress=False)
    out["same_sids"] = sharded.sids == alone.sids and sharded.target_sid.tolist() == alone.target_sid.tolist()
    out["same_centroids"] = bool(np.array_equal(sharded.centroids, alone.centroids))
    out["embedded_here"] = embedder.count


def main() -> None:
    mode, out_dir = sys.argv[1], Path(sys.argv[2])
    import torch.distributed as dist

    dist.init_process_group("gloo")
    out: dict = {"rank": dist.get_rank(), "world": dist.get_world_size()}
    {"harness": _harness, "embedding": _embedding}[mode](out)
    (out_dir / f"rank{out['rank']}.json").write_text(json.dumps(out))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
