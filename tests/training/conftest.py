"""Fixtures of the training tests: the tiny Karpathy corpus and a text-only T2I SID dataset built once by the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))

from sid_data_helpers import GENERATED, make_karpathy  # noqa: E402


@pytest.fixture(scope="session")
def train_corpus(tmp_path_factory):
    """`(karpathy_json, generated_captions_json)` of the tiny corpus (read-only)."""
    root = tmp_path_factory.mktemp("train_corpus")
    src = make_karpathy(root)
    gen = root / "generated.json"
    gen.write_text(json.dumps(GENERATED))
    return src, gen


@pytest.fixture(scope="session")
def text_sids(train_corpus, tiny_st_dir, tmp_path_factory):
    """`semcore-hf build-sids --text-only --tasks t2i memorize_t2i`, run once; returns the output folder."""
    from semcore_hf.cli.main import main

    src, gen = train_corpus
    out = tmp_path_factory.mktemp("text_sids")
    argv = ["build-sids", "--source", str(src), "--output-dir", str(out), "--generated-captions", str(gen)]
    argv += ["--embedding-model", tiny_st_dir, "--num-clusters", "2", "--global-words", "1", "--text-only"]
    argv += ["--tasks", "t2i", "memorize_t2i"]
    assert main(argv) == 0
    return out
