"""Fixtures for retrieval: a SID-ready tiny LM and LLaVA, and small indexes on the tiny embedder."""

from __future__ import annotations

import shutil

import pytest
from PIL import Image

TEXTS = [
    "a brown dog runs across the green grass",
    "a black dog catches a red frisbee in the park",
    "a white cat sits on a wooden chair",
    "a kitten plays with a ball of yarn",
    "a man rides a bicycle down a busy street",
    "a sailboat floats on a calm lake at sunset",
    "a plate of fruit sits on a wooden table",
    "a white cat sits on a wooden chair",  # duplicate text: a collision group
]
IDS = [f"img{i}" for i in range(len(TEXTS))]


@pytest.fixture(scope="session")
def small_index(tiny_st, tiny_st_dir):
    from semcore_hf.identifiers import SIDBuilder, SIDConfig

    cfg = SIDConfig(embedding_model=tiny_st_dir, num_clusters=3, global_words=1, lexical_phrases=2, kmeans_n_init=1)
    return SIDBuilder(cfg, embedder=tiny_st).build(TEXTS, IDS, show_progress=False)


def _make_sid_ready(src: str, dst, kind: str) -> str:
    from semcore_hf.training import prepare_model_for_sids

    shutil.rmtree(dst, ignore_errors=True)
    prepare_model_for_sids(src, dst, model_kind=kind)
    return str(dst)


@pytest.fixture(scope="session")
def sid_lm_dir(tiny_lm_dir, tmp_path_factory):
    return _make_sid_ready(tiny_lm_dir, tmp_path_factory.mktemp("sid_lm") / "model", "causal_lm")


@pytest.fixture(scope="session")
def sid_llava_dir(tiny_llava_dir, tmp_path_factory):
    return _make_sid_ready(tiny_llava_dir, tmp_path_factory.mktemp("sid_llava") / "model", "image_text_to_text")


@pytest.fixture(scope="session")
def images():
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (120, 120, 120)]
    return [Image.new("RGB", (40 + 4 * i, 36), c) for i, c in enumerate(colours)]
