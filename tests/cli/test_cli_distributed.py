"""`semcore-hf evaluate` launched by `torchrun` over 2 CPU processes (gloo) writes exactly what one process writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _evaluate(argv, out, nproc: int):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc)]
    cmd = [*launcher, "-m", "semcore_hf.cli.main", "evaluate", *argv, "--output-dir", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    predictions = (out / "predictions.jsonl").read_text().splitlines()
    return metrics, predictions, proc.stdout


def test_evaluate_under_torchrun_equals_one_process(sid_lm_dir, built_both, karpathy_corpus, tmp_path):
    src, _ = karpathy_corpus
    argv = ["--model", sid_lm_dir, "--index", str(built_both / "t2i_index"), "--source", str(src)]
    argv += ["--direction", "t2i", "-k", "1", "2", "--device", "cpu", "--batch-size", "2"]
    argv += ["--no_update_model_card", "--no_plot"]  # the model folder is a shared, read-only fixture
    one, one_preds, _ = _evaluate(argv, tmp_path / "one", nproc=1)
    two, two_preds, stdout = _evaluate(argv, tmp_path / "two", nproc=2)
    assert two_preds == one_preds and len(one_preds) == 6  # 3 batches of 2 queries: 1 on one process, 2 on the other
    assert one.pop("num_processes") == 1 and two.pop("num_processes") == 2
    for m in (one, two):
        m.pop("seconds_per_query")
    assert two == one
    assert stdout.count("ms/query") == 1  # only the first process reports


def test_build_sids_under_torchrun_shares_the_embedding(karpathy_corpus, tiny_st_dir, built_both, tmp_path):
    from semcore_hf.identifiers import SIDIndex

    # the flags of the `built_both` fixture (tests/cli/conftest.py), whose indexes this run must reproduce
    flags = ["--num-clusters", "2", "--global-words", "1", "--lexical-phrases", "2", "--kmeans-n-init", "1"]
    flags += ["--resolve-collisions", "--seed", "3"]

    src, gen = karpathy_corpus
    out = tmp_path / "sids"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    argv = ["build-sids", "--source", str(src), "--output-dir", str(out), "--generated-captions", str(gen)]
    argv += ["--embedding-model", tiny_st_dir, "--direction", "both", *flags]
    proc = subprocess.run([*launcher, "-m", "semcore_hf.cli.main", *argv], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("Written to") == 1  # the first process writes; the other one only embedded
    report = json.loads((out / "build_report.json").read_text())
    assert report["config"]["embedding_distributed"] is True
    for direction in ("t2i", "i2t"):
        two, one = (SIDIndex.from_pretrained(str(d / f"{direction}_index")) for d in (out, built_both))
        assert two.sids == one.sids and two.target_ids == one.target_ids and two.global_ids == one.global_ids
