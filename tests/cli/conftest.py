"""Fixtures of the CLI tests: `build-sids --direction both` run once on the tiny Karpathy corpus."""

from __future__ import annotations

import pytest

BUILD_FLAGS = ["--num-clusters", "2", "--global-words", "1", "--lexical-phrases", "2", "--kmeans-n-init", "1"]
BUILD_FLAGS += ["--resolve-collisions", "--seed", "3"]


@pytest.fixture(scope="session")
def built_both(karpathy_corpus, tiny_st_dir, tmp_path_factory):
    """Output folder of `semcore-hf build-sids --direction both` (every task, images embedded); read-only."""
    from semcore_hf.cli.main import main

    src, gen = karpathy_corpus
    out = tmp_path_factory.mktemp("cli_sids") / "sids"
    argv = ["build-sids", "--source", str(src), "--output-dir", str(out), "--generated-captions", str(gen)]
    argv += ["--embedding-model", tiny_st_dir, "--direction", "both", *BUILD_FLAGS]
    assert main(argv) == 0
    return out
