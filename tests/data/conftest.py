"""Fixtures of the data tests: a tiny Karpathy-style corpus with real image files, and SID indexes built on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sid_data_helpers import GENERATED, make_karpathy


@pytest.fixture(scope="session")
def karpathy_json(tmp_path_factory) -> Path:
    """Read-only: tests that move or break files build their own with `make_karpathy`."""
    return make_karpathy(tmp_path_factory.mktemp("karpathy"))


@pytest.fixture(scope="session")
def source(karpathy_json):
    from semcore_hf.data import load_image_caption_source

    return load_image_caption_source(karpathy_json, generated_captions=GENERATED)


@pytest.fixture(scope="session")
def indexes(source, tiny_st, tiny_st_dir):
    """Real (t2i_index, i2t_index) built with SIDBuilder on the tiny sentence-transformer, K=2."""
    from semcore_hf.data import i2t_targets, t2i_targets
    from semcore_hf.identifiers import SIDBuilder, SIDConfig

    def build(ids, texts):
        cfg = SIDConfig(embedding_model=tiny_st_dir, num_clusters=2, kmeans_n_init=1, lexical_phrases=2)
        return SIDBuilder(cfg, embedder=tiny_st).build(texts, ids, show_progress=False)

    return build(*t2i_targets(source)), build(*i2t_targets(source))


@pytest.fixture(scope="session")
def built(source, indexes, tmp_path_factory):
    """Every task, built once (VLM variant); tests must not mutate it."""
    from semcore_hf.data import build_sid_dataset

    t2i_index, i2t_index = indexes
    return build_sid_dataset(
        source, t2i_index=t2i_index, i2t_index=i2t_index, cache_dir=tmp_path_factory.mktemp("cache")
    )
