"""Sharded evaluation and distributed embedding with 2 CPU processes (gloo) under `torchrun`: exactly what one
process computes. The processes run `tests/distributed_worker.py`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).resolve().parent / "distributed_worker.py"


def _torchrun(mode: str, out: Path) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(WORKER)]
    proc = subprocess.run([*cmd, mode, str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


def test_sharded_evaluation_equals_one_process(tmp_path):
    ranks = _torchrun("harness", tmp_path)
    assert [r["world"] for r in ranks] == [2, 2]
    for case in ("13x4", "3x8", "16x2"):
        alone = ranks[0][case]["alone"]
        assert len(alone["predictions"]) == int(case.split("x")[0])
        for r in ranks:
            assert r[case]["sharded"] == alone  # metrics, predictions in query order, exact fractions
        seen = [r[case]["seen"] for r in ranks]
        assert sum(seen) == len(alone["predictions"])  # each query retrieved once, by one process
    assert [r["13x4"]["seen"] for r in ranks] == [8, 5]  # whole batches of 4: 2 + 2 (the last one short)
    assert [r["3x8"]["seen"] for r in ranks] == [0, 3]  # one batch: one process has nothing to do
    # an error on one process is raised on every process instead of leaving the other one waiting
    assert ranks[1]["error"] == "ValueError: query 3 is bad"
    assert ranks[0]["error"] == "RuntimeError: Retrieval failed on process 1 of 2: ValueError: query 3 is bad"


def test_distributed_embedding_builds_the_same_index(tmp_path):
    ranks = _torchrun("embedding", tmp_path)
    for r in ranks:
        assert r["same_sids"] and r["same_centroids"]
    total = sum(r["embedded_here"] for r in ranks)
    assert all(abs(r["embedded_here"] - total / 2) <= 2 for r in ranks)  # each process embedded half the texts


@pytest.mark.parametrize("world, n, batch", [(2, 13, 4), (3, 3, 8), (4, 17, 2), (1, 5, 3)])
def test_shard_bounds_cut_whole_batches(world, n, batch):
    from semcore_hf.evaluation.harness import _shard_bounds

    bounds = [_shard_bounds(n, batch, r, world) for r in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))  # contiguous, in rank order
    assert all(lo % batch == 0 for lo, _ in bounds)  # every shard starts on a batch border
    sizes = [-(-(hi - lo) // batch) for lo, hi in bounds]
    assert max(sizes) - min(sizes) <= 1  # batches spread evenly
