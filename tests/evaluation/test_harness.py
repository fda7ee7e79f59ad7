"""The evaluation harness: query sets of the CMR protocol, scoring any retriever, and the dense text baseline."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))

from sid_data_helpers import CORPUS, make_karpathy  # noqa: E402

from semcore_hf.evaluation import QuerySet, build_query_set, dense_text_retrieval, evaluate_retriever  # noqa: E402


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    from semcore_hf.data import load_image_caption_source

    return load_image_caption_source(make_karpathy(tmp_path_factory.mktemp("harness_corpus")))


def _images_of(split):
    mapped = {"restval": "train", "val": "validation"}
    return [i for i, (s, _, _) in CORPUS.items() if mapped.get(s, s) == split]


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_t2i_query_set(rows, split):
    qs = build_query_set(rows, "t2i", split)
    images = _images_of(split)
    assert qs.direction == "t2i"
    assert qs.gallery == images
    assert len(qs) == 3 * len(images) == len(qs.query_ids) == len(qs.relevant)
    expected_queries = [c for i in images for c in CORPUS[i][1]]
    assert qs.queries == expected_queries  # one query per ground-truth caption, in order
    assert qs.query_ids == [f"{i}#{j}" for i in images for j in range(3)]
    assert qs.relevant == [[i] for i in images for _ in range(3)]


@pytest.mark.parametrize("split", ["train", "test"])
def test_i2t_query_set(rows, split):
    from PIL import Image

    qs = build_query_set(rows, "i2t", split)
    images = _images_of(split)
    assert qs.direction == "i2t"
    assert qs.query_ids == images and len(qs) == len(images)
    assert all(isinstance(q, Image.Image) for q in qs.queries)
    assert qs.relevant == [[f"{i}#{j}" for j in range(3)] for i in images]
    assert qs.gallery == [f"{i}#{j}" for i in images for j in range(3)]


def test_bad_split_and_direction(rows):
    with pytest.raises(ValueError, match="'dev'"):
        build_query_set(rows, "t2i", "dev")
    with pytest.raises(ValueError, match="direction"):
        build_query_set(rows, "v2t", "test")


def test_head(rows):
    qs = build_query_set(rows, "t2i", "test")
    short = qs.head(4)
    assert len(short) == 4 and short.direction == "t2i"
    assert short.query_ids == qs.query_ids[:4] and short.queries == qs.queries[:4]
    assert short.relevant == qs.relevant[:4] and short.gallery == qs.gallery
    assert qs.head(None) is qs and qs.head(len(qs)) is qs and qs.head(100) is qs
    assert len(qs) == 6  # head never mutates


class FakeRetriever:
    """Returns fixed rankings and records how it was called."""

    def __init__(self, rankings):
        self.rankings = rankings
        self.calls = []

    def retrieve(self, queries, k=10, num_beams=None, batch_size=8, direction=None, gsv_weight=None, **kw):
        self.calls.append(dict(queries=list(queries), k=k, num_beams=num_beams, batch_size=batch_size))
        self.calls[-1].update(direction=direction, gsv_weight=gsv_weight, **kw)
        return [[{"target_id": t, "score": -float(r)} for r, t in enumerate(ranked)] for ranked in self.rankings]


def _query_set():
    return QuerySet(
        "i2t",
        query_ids=["q0", "q1", "q2", "q3"],
        queries=["a", "b", "c", "d"],
        relevant=[["a"], ["a", "z"], ["q"], ["a"]],
        gallery=["a", "b", "c", "x", "y", "z", "q"],
    )


RANKINGS = [["a", "b", "c"], ["b", "z"], ["x", "y", "c"], ["c", "b", "a"]]  # first hits at 1, 2, none, 3


def test_evaluate_retriever_exact_numbers():
    fake = FakeRetriever(RANKINGS)
    res = evaluate_retriever(fake, _query_set(), k=(1, 2, 3), show_progress=False)
    m = res["metrics"]
    assert m["recall@1"] == pytest.approx(1 / 4)
    assert m["recall@2"] == pytest.approx(2 / 4)
    assert m["recall@3"] == pytest.approx(3 / 4)
    assert m["mrr"] == pytest.approx((1 + 1 / 2 + 0 + 1 / 3) / 4)
    assert m["num_queries"] == 4
    assert res["queries_short_of_k"] == 1  # q1 got 2 of 3 targets
    assert res["seconds_per_query"] >= 0
    assert res["predictions"] == [
        {"query_id": q, "ranked": r, "relevant": rel}
        for q, r, rel in zip(["q0", "q1", "q2", "q3"], RANKINGS, _query_set().relevant)
    ]
    (call,) = fake.calls
    assert call["queries"] == ["a", "b", "c", "d"]
    assert call["k"] == 3 and call["num_beams"] == 3  # max(k) by default
    assert call["direction"] == "i2t" and call["gsv_weight"] is None and call["batch_size"] == 8


def test_evaluate_retriever_passes_options_through():
    fake = FakeRetriever(RANKINGS)
    res = evaluate_retriever(fake, _query_set(), k=[2], num_beams=6, batch_size=3, gsv_weight=0.5, show_progress=False)
    assert fake.calls[0]["num_beams"] == 6 and fake.calls[0]["batch_size"] == 3
    assert fake.calls[0]["gsv_weight"] == 0.5 and fake.calls[0]["k"] == 2
    assert res["queries_short_of_k"] == 0
    assert res["metrics"]["recall@2"] == pytest.approx(2 / 4)


def test_evaluate_retriever_counts_every_short_query():
    fake = FakeRetriever([["a"], [], ["q", "x"], ["a", "b", "c"]])
    res = evaluate_retriever(fake, _query_set(), k=(1, 3), show_progress=False)
    assert res["queries_short_of_k"] == 3
    assert res["metrics"]["recall@1"] == pytest.approx(3 / 4)
    assert res["metrics"]["recall@3"] == pytest.approx(3 / 4)


TEXTS = [
    "a brown dog runs across the green grass",
    "a white cat sits on a wooden chair",
    "a man rides a bicycle down a busy street",
    "a sailboat floats on a calm lake at sunset",
    "a plate of fruit sits on a wooden table",
]
IDS = [f"t{i}" for i in range(len(TEXTS))]


def test_dense_text_retrieval_identical_text_ranks_first(tiny_st):
    ranked = dense_text_retrieval(tiny_st, TEXTS, IDS, TEXTS, k=3)
    assert len(ranked) == len(TEXTS)
    for i, row in enumerate(ranked):
        assert row[0] == IDS[i]
        assert len(row) == 3 and len(set(row)) == 3 and set(row) <= set(IDS)


def test_dense_text_retrieval_ranks_by_cosine(tiny_st):
    import numpy as np

    query = ["a dog on the grass"]
    ranked = dense_text_retrieval(tiny_st, query, IDS, TEXTS, k=len(IDS))[0]
    assert sorted(ranked) == sorted(IDS)  # k = gallery: a permutation
    q = tiny_st.encode(query, normalize_embeddings=True)
    t = tiny_st.encode(TEXTS, normalize_embeddings=True)
    sims = (q @ t.T)[0]
    assert ranked == [IDS[j] for j in np.argsort(-sims, kind="stable")]


def test_dense_text_retrieval_errors(tiny_st):
    with pytest.raises(ValueError, match="larger than the gallery"):
        dense_text_retrieval(tiny_st, ["q"], IDS, TEXTS, k=len(IDS) + 1)
    with pytest.raises(ValueError, match="target texts"):
        dense_text_retrieval(tiny_st, ["q"], IDS, TEXTS[:-1], k=2)
