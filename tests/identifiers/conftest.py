"""Fixtures for the identifiers tests: a small Flickr-like caption corpus and builders on the tiny embedder."""

from __future__ import annotations

import numpy as np
import pytest

CAPTIONS = [
    "a brown dog runs across the green grass",
    "a black dog catches a red frisbee in the park",
    "two dogs play with a ball on the beach",
    "a puppy sleeps on a blue blanket",
    "a white cat sits on a wooden chair",
    "a cat looks out of the window at the birds",
    "a kitten plays with a ball of yarn",
    "three cats lie on a sofa in the sun",
    "a man rides a bicycle down a busy street",
    "a woman rides a red bike past a cafe",
    "a cyclist in a yellow jacket climbs a hill",
    "two people ride motorcycles on a dirt road",
    "a boy surfs a large wave in the ocean",
    "a surfer paddles out into the blue sea",
    "children swim in a lake on a sunny day",
    "a sailboat floats on a calm lake at sunset",
    "a chef cooks pasta in a busy kitchen",
    "a plate of fruit sits on a wooden table",
    "a woman slices bread at the counter",
    "a family eats pizza at a restaurant",
    "a man plays the guitar on a stage",
    "a girl sings into a microphone at a concert",
    "a band performs in front of a crowd",
    "an old man plays the piano in a hall",
    "a clock tower shows three o'clock",
    "a clock tower shows four o'clock",
    "a red train arrives at the station",
    "a bus waits at a stop in the rain",
    "a snowboarder jumps over a snowy ridge",
    "a skier races down a steep mountain slope",
]


@pytest.fixture(scope="session")
def captions() -> list[str]:
    return list(CAPTIONS)


@pytest.fixture
def make_builder(tiny_st, tiny_st_dir):
    """`make_builder(**config_overrides)` -> an `SIDBuilder` on the tiny sentence-transformer (injected)."""
    from semcore_hf.identifiers import SIDBuilder, SIDConfig

    def factory(embedder=tiny_st, **overrides):
        overrides.setdefault("num_clusters", 4)
        overrides.setdefault("embedding_model", tiny_st_dir)
        overrides.setdefault("kmeans_n_init", 2)
        return SIDBuilder(SIDConfig(**overrides), embedder=embedder)

    return factory


@pytest.fixture(scope="session")
def built_index(tiny_st, tiny_st_dir):
    """One index over `CAPTIONS` (K=4), built once per session; tests must not mutate it."""
    from semcore_hf.identifiers import SIDBuilder, SIDConfig

    cfg = SIDConfig(embedding_model=tiny_st_dir, num_clusters=4, kmeans_n_init=2)
    return SIDBuilder(cfg, embedder=tiny_st).build(CAPTIONS, target_ids=[f"t{i}" for i in range(len(CAPTIONS))])


def _assert_same_index(a, b):
    assert a.sids == b.sids
    assert a.target_ids == b.target_ids
    assert a.global_ids == b.global_ids
    assert a.cluster_words == b.cluster_words
    np.testing.assert_array_equal(a.target_sid, b.target_sid)
    np.testing.assert_array_equal(a.target_cluster, b.target_cluster)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    assert a.target_sid.dtype == np.int64 and a.target_cluster.dtype == np.int64 and a.centroids.dtype == np.float32
    assert a.config.to_dict() == b.config.to_dict()


@pytest.fixture(scope="session")
def assert_same_index():
    """`assert_same_index(a, b)`: every table, array and the config of two indexes are identical."""
    return _assert_same_index
