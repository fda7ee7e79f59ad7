import re

import datasets
import numpy as np
import pytest

from semcore_hf.identifiers import SIDConfig
from semcore_hf.identifiers.sid_format import split_sid

WORD = re.compile(r"^[a-z0-9]+(?:['-][a-z0-9]+)*$")


def test_index_contract(built_index, captions):
    idx = built_index
    assert len(idx) == len(captions)
    assert idx.num_sids == len(idx.sids) == len(set(idx.sids))
    assert idx.centroids.shape == (4, 32)
    assert len(idx.global_ids) == len(idx.cluster_words) == 4
    for t in idx.target_ids:
        sid = idx.sid_of(t)
        assert t in idx.targets_of(sid)
        assert idx.targets_of_row(idx.sid_row(sid)) == idx.targets_of(sid)
        g, phrases = idx.split_sid(sid)
        assert (g, phrases) == split_sid(sid)
        assert g == idx.global_ids[idx.target_cluster[idx.target_ids.index(t)]]
        assert 1 <= len(phrases) <= idx.config.lexical_phrases
        for word in g.split() + [w for p in phrases for w in p.split()]:
            assert WORD.match(word), word
    with pytest.raises(KeyError):
        idx.sid_of("nope")


def test_global_ids_unique_and_m_words(built_index):
    assert len(set(built_index.global_ids)) == len(built_index.global_ids)
    assert all(len(g.split()) == 2 for g in built_index.global_ids)
    for g, words in zip(built_index.global_ids, built_index.cluster_words):
        assert set(g.split()) <= set(words)


def test_build_is_deterministic(make_builder, captions, built_index, assert_same_index):
    again = make_builder().build(captions, target_ids=[f"t{i}" for i in range(len(captions))], show_progress=False)
    assert_same_index(again, built_index)


def test_semantic_dedup_no_phrase_contains_a_global_word(built_index, captions):
    for i, t in enumerate(built_index.target_ids):
        g, phrases = split_sid(built_index.sid_of(t))
        words = [w for p in phrases for w in p.split()]
        assert not set(g.split()) & set(words)
        assert len(words) == len(set(words)), "a chosen phrase repeats a word of another phrase"
        text_words = set(re.findall(r"[a-z0-9]+(?:['-][a-z0-9]+)*", captions[i].lower()))
        assert set(words) <= text_words  # keyphrases come from the caption


def test_dedup_extra_words_bans_more_cluster_words(make_builder, captions):
    idx = make_builder(dedup_extra_words=3).build(captions, show_progress=False)
    for i, t in enumerate(idx.target_ids):
        c = idx.target_cluster[i]
        banned = set(idx.global_ids[c].split()) | set(
            [w for w in idx.cluster_words[c] if w not in idx.global_ids[c].split()][:3]
        )
        _, phrases = split_sid(idx.sid_of(t))
        assert not banned & {w for p in phrases for w in p.split()}


def test_number_words_survive(make_builder):
    texts = ["a clock tower shows three o'clock", "a clock tower shows four o'clock", "a dog on the grass"] * 1
    texts += ["a cat on a sofa", "a red car on the road", "a man on a bike"]
    idx = make_builder(num_clusters=2).build(texts, show_progress=False)
    assert idx.sid_of("0") != idx.sid_of("1")
    assert "three" in idx.sid_of("0") and "four" in idx.sid_of("1")
    # scikit-learn's plain English list deletes them: the two clocks collide
    eng = make_builder(num_clusters=2, stop_words="english").build(texts, show_progress=False)
    assert eng.sid_of("0") == eng.sid_of("1")
    assert eng.collision_groups()[eng.sid_of("0")] == ["0", "1"]


def test_duplicate_texts_form_one_collision_group(make_builder, captions):
    texts = captions + [captions[0], captions[0]]
    for resolve in (False, True):
        idx = make_builder(resolve_collisions=resolve).build(texts, show_progress=False)
        n = len(captions)
        assert idx.sid_of("0") == idx.sid_of(str(n)) == idx.sid_of(str(n + 1))
        groups = idx.collision_groups()
        assert groups[idx.sid_of("0")] == ["0", str(n), str(n + 1)]
        rep = idx.collision_report()
        assert rep["num_groups"] >= 1 and rep["size_histogram"].get("3") == 1
        assert rep["fraction_in_groups"] == pytest.approx(rep["targets_in_groups"] / len(texts))


def test_resolve_collisions_separates_distinct_texts(make_builder):
    # identical keyphrases at n=1 but different next-best phrases
    texts = [
        "a dog with a red frisbee near a lake",
        "a dog with a red frisbee near a barn",
        "a dog with a red frisbee near a tree",
        "a cat on a sofa",
        "a cat on a sofa",
        "a bus in the rain",
    ]
    plain = make_builder(num_clusters=2, lexical_phrases=1).build(texts, show_progress=False)
    resolved = make_builder(num_clusters=2, lexical_phrases=1, resolve_collisions=True, max_extra_phrases=3).build(
        texts, show_progress=False
    )
    assert plain.collision_report()["targets_in_groups"] > resolved.collision_report()["targets_in_groups"]
    # identical texts cannot be separated; they keep one SID
    assert resolved.sid_of("3") == resolved.sid_of("4")
    assert sorted(resolved.collision_groups()[resolved.sid_of("3")]) == ["3", "4"]
    # whatever got separated is now unique and only extends the original SID
    for t in ["0", "1", "2"]:
        g, p = split_sid(resolved.sid_of(t))
        g0, p0 = split_sid(plain.sid_of(t))
        assert g == g0 and p[: len(p0)] == p0


def test_collision_report_shape(built_index):
    rep = built_index.collision_report()
    assert set(rep) == {
        "num_targets",
        "num_sids",
        "num_groups",
        "targets_in_groups",
        "fraction_in_groups",
        "largest_group",
        "size_histogram",
        "groups_identical_texts",
        "groups_different_texts",
        "targets_in_groups_of_different_texts",
        "sids_with_empty_lexical_id",
        "global_word_coverage",
    }
    assert rep["groups_identical_texts"] + rep["groups_different_texts"] == rep["num_groups"]
    assert rep["num_targets"] == len(built_index) and rep["num_sids"] == built_index.num_sids
    assert rep["num_groups"] == len(built_index.collision_groups())


def test_minibatch_kmeans_path(make_builder, captions, caplog, assert_same_index):
    import logging

    with caplog.at_level(logging.INFO, logger="semcore_hf.identifiers.builder"):
        a = make_builder(minibatch_threshold=5, minibatch_batch_size=16).build(captions, show_progress=True)
    assert "MiniBatchKMeans" in caplog.text
    b = make_builder(minibatch_threshold=5, minibatch_batch_size=16).build(captions, show_progress=False)
    assert_same_index(a, b)
    assert len(set(a.global_ids)) == 4


def test_build_from_dataset_matches_list(make_builder, captions, built_index):
    ds = datasets.Dataset.from_dict(
        {"caption": captions, "image_id": [f"t{i}" for i in range(len(captions))], "other": list(range(len(captions)))}
    )
    idx = make_builder(batch_size=7).build(ds, text_column="caption", id_column="image_id", show_progress=False)
    assert idx.target_ids == built_index.target_ids
    np.testing.assert_array_equal(idx.target_cluster, built_index.target_cluster)
    assert idx.global_ids == built_index.global_ids
    assert idx.sids == built_index.sids
    np.testing.assert_allclose(idx.centroids, built_index.centroids, atol=1e-5)


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("bad", ["", "   ", None])
def test_empty_text_names_position_and_id(make_builder, captions, bad):
    texts = list(captions)
    texts[5] = bad
    with pytest.raises(ValueError, match=r"position\(s\) 5 \(id 'img5'\).*non-empty caption"):
        make_builder().build(texts, target_ids=[f"img{i}" for i in range(len(texts))], show_progress=False)


def test_empty_text_in_dataset(make_builder, captions):
    texts = list(captions)
    texts[2] = " "
    ds = datasets.Dataset.from_dict({"text": texts})
    with pytest.raises(ValueError, match=r"position\(s\) 2"):
        make_builder().build(ds, show_progress=False)


def test_duplicate_target_ids(make_builder, captions):
    ids = [f"t{i}" for i in range(len(captions))]
    ids[3] = "t0"
    with pytest.raises(ValueError, match="Duplicate target ids.*'t0'"):
        make_builder().build(captions, target_ids=ids, show_progress=False)


def test_too_many_clusters(make_builder, captions):
    with pytest.raises(
        ValueError, match=r"num_clusters=50 is larger than the number of targets \(30\).*num_clusters="
    ):
        make_builder(num_clusters=50).build(captions, show_progress=False)


def test_missing_dataset_column(make_builder, captions):
    ds = datasets.Dataset.from_dict({"caption": captions})
    with pytest.raises(ValueError, match=r"Column 'text' not found.*\['caption'\]"):
        make_builder().build(ds, show_progress=False)
    with pytest.raises(ValueError, match=r"Column 'id' not found"):
        make_builder().build(ds, text_column="caption", id_column="id", show_progress=False)


def test_wrong_number_of_ids(make_builder, captions):
    with pytest.raises(ValueError, match="target ids for 30 texts"):
        make_builder().build(captions, target_ids=["a"], show_progress=False)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_clusters": 0},
        {"global_words": -1},
        {"lexical_phrases": 1.5},
        {"keyphrase_ngram_range": (2, 1)},
        {"stop_words": "french"},
        {"embedding_model": ""},
        {"seed": -3},
    ],
)
def test_config_validation(kwargs):
    with pytest.raises(ValueError, match="SIDConfig"):
        SIDConfig(**kwargs)


def test_config_round_trip():
    cfg = SIDConfig(num_clusters=7, keyphrase_ngram_range=[1, 3], stop_words=["a", "the"], resolve_collisions=True)
    assert cfg.keyphrase_ngram_range == (1, 3)
    again = SIDConfig.from_dict(cfg.to_dict())
    assert again == cfg
    with pytest.raises(ValueError, match="Unknown SIDConfig keys"):
        SIDConfig.from_dict({"num_clusterz": 3})
