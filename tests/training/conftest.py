"""Fixtures of the training tests: the tiny Karpathy corpus and a text-only T2I SID dataset built once by the CLI."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def text_sids(karpathy_corpus, tiny_st_dir, tmp_path_factory):
    """`semcore-hf build-sids --text-only --tasks t2i memorize_t2i`, run once; returns the output folder."""
    from semcore_hf.cli.main import main

    src, gen = karpathy_corpus
    out = tmp_path_factory.mktemp("text_sids")
    argv = ["build-sids", "--source", str(src), "--output-dir", str(out), "--generated-captions", str(gen)]
    argv += ["--embedding-model", tiny_st_dir, "--num-clusters", "2", "--global-words", "1", "--text-only"]
    argv += ["--tasks", "t2i", "memorize_t2i"]
    assert main(argv) == 0
    return out
