"""Fixtures of the CLI tests: the tiny Karpathy corpus, `build-sids --direction both` run once, SID-ready models."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))

from sid_data_helpers import GENERATED, make_karpathy  # noqa: E402

BUILD_FLAGS = ["--num-clusters", "2", "--global-words", "1", "--lexical-phrases", "2", "--kmeans-n-init", "1"]
BUILD_FLAGS += ["--resolve-collisions", "--seed", "3"]


@pytest.fixture(scope="session")
def cli_corpus(tmp_path_factory):
    """`(karpathy_json, generated_captions_json)` (read-only)."""
    root = tmp_path_factory.mktemp("cli_corpus")
    src = make_karpathy(root)
    gen = root / "generated.json"
    gen.write_text(json.dumps(GENERATED))
    return src, gen


@pytest.fixture(scope="session")
def built_both(cli_corpus, tiny_st_dir, tmp_path_factory):
    """Output folder of `semcore-hf build-sids --direction both` (every task, images embedded); read-only."""
    from semcore_hf.cli.main import main

    src, gen = cli_corpus
    out = tmp_path_factory.mktemp("cli_sids") / "sids"
    argv = ["build-sids", "--source", str(src), "--output-dir", str(out), "--generated-captions", str(gen)]
    argv += ["--embedding-model", tiny_st_dir, "--direction", "both", *BUILD_FLAGS]
    assert main(argv) == 0
    return out
