"""Fixtures for retrieval: a SID-ready tiny LM and LLaVA, and small indexes on the tiny embedder."""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def images():
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (120, 120, 120)]
    return [Image.new("RGB", (40 + 4 * i, 36), c) for i, c in enumerate(colours)]
