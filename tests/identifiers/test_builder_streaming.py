"""The streaming SID builder (one word pass, vectorised n-grams, candidates embedded in blocks, embeddings written
chunk by chunk into one array) against the simple path it replaced: `CountVectorizer`, `keybert_candidates` +
`score_pairs`, `select_phrases` twice and a words pass per stage."""

from __future__ import annotations

import hashlib

import datasets
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semcore_hf.identifiers import SIDBuilder, SIDConfig, ctfidf, keywords
from semcore_hf.identifiers import builder as builder_module
from semcore_hf.identifiers.text import make_vectorizer, resolve_stop_words, unrepresentable

VOCAB = (
    "a the of on in is dog dogs cat red ball park grass three four o'clock t-shirt café Café woman’s no not "
    "behind front 12 中国 カメラ ñandú it what running runs"
).split()


class HashEmbedder:
    """Deterministic per text, whatever the batch: a sum of fixed random word vectors plus a text-specific part."""

    dim = 16

    def get_sentence_embedding_dimension(self):
        return self.dim

    def _vec(self, s: str, salt: bytes) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(salt + s.encode(), digest_size=8).digest(), "little")
        return np.random.default_rng(seed).standard_normal(self.dim)

    def encode(self, texts, **kwargs):
        out = [sum((self._vec(w, b"w") for w in t.lower().split()), 0.1 * self._vec(t, b"t")) for t in texts]
        return np.asarray(out, dtype=np.float32).reshape(len(out), self.dim)


TEXTS = st.lists(st.lists(st.sampled_from(VOCAB), min_size=1, max_size=9).map(" ".join), min_size=1, max_size=40)
STOPS = st.sampled_from(["semcore", "english", None, ["dog", "the"]])
NGRAMS = st.sampled_from([(1, 1), (1, 2), (2, 3), (1, 3), (3, 3)])


def _same_matrix(a, b):
    assert a.shape == b.shape
    assert (a != b).nnz == 0
    assert a.dtype == b.dtype == np.int64


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=TEXTS, stop=STOPS, ngram=NGRAMS, binary=st.booleans())
def test_corpus_doc_term_equals_count_vectorizer(texts, stop, ngram, binary):
    stop_words = resolve_stop_words(stop)
    corpus = builder_module._Corpus.from_texts(texts)
    vec = make_vectorizer(stop_words, ngram, binary=binary)
    try:
        ref = vec.fit_transform(texts).tocsr()
    except ValueError:  # empty vocabulary: the fast path refuses it the same way
        with pytest.raises(ValueError, match="empty vocabulary"):
            corpus.doc_term(stop_words, ngram, binary=binary)
        return
    got, names = corpus.doc_term(stop_words, ngram, binary=binary)
    assert names.tolist() == vec.get_feature_names_out().tolist()
    _same_matrix(got, ref)


@settings(max_examples=40, deadline=None)
@given(texts=st.lists(st.sampled_from([*VOCAB, "🙂", "!!", " a  dog ", "中国 🙂"]), min_size=1, max_size=30))
def test_corpus_keys_wordless_and_coverage_equal_the_per_text_functions(texts):
    corpus = builder_module._Corpus.from_texts(texts)
    assert corpus.keys.tolist() == [builder_module.text_key(t) for t in texts]
    assert corpus.wordless().tolist() == [p for p, _ in unrepresentable(texts)]
    rng = np.random.default_rng(len(texts))
    labels = rng.integers(0, 3, len(texts))
    global_ids = ["dog red", "中 cat", "o'clock 12"]
    assert corpus.global_word_coverage(labels, global_ids) == builder_module._global_word_coverage(
        texts, labels, global_ids
    )


@pytest.mark.parametrize("block", [1, 3, 1000])
@pytest.mark.parametrize("normalised", [True, False])
def test_candidate_blocks_score_the_same_bits_as_score_pairs(block, normalised, monkeypatch):
    texts = [" ".join(np.random.default_rng(i).choice(VOCAB, 6)) for i in range(60)]
    emb = HashEmbedder()
    doc_emb = emb.encode(texts)
    if normalised:
        doc_emb = doc_emb / np.linalg.norm(doc_emb, axis=1, keepdims=True)
    vec = make_vectorizer(resolve_stop_words("semcore"), (1, 2), binary=True)
    doc_term, candidates, cand_emb = keywords.keybert_candidates(texts, vec, emb, batch_size=8)
    monkeypatch.setattr(keywords, "_CHUNK", 7)  # several pair chunks per block
    got = keywords.score_candidate_blocks(doc_term, doc_emb, candidates, emb, 8, block)
    ref = keywords.score_pairs(doc_term, doc_emb, cand_emb)
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(g, r)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), limit=st.integers(1, 5))
def test_select_phrases_both_equals_two_selections(seed, limit):
    rng = np.random.default_rng(seed)
    candidates = np.asarray(["dog", "dog park", "park", "red", "red ball", "ball", "grass", "a b"], dtype=object)
    pairs = sorted({(int(r), int(c)) for r, c in rng.integers(0, [12, len(candidates)], size=(50, 2))})
    rows, cols = np.asarray(pairs).T
    scores = rng.choice([0.1, 0.5, 0.5, 0.9], len(rows)).astype(np.float32)  # ties: broken by candidate index
    keep = rng.random(len(rows)) < 0.6
    dedup, own = keywords.select_phrases_both(rows, cols, scores, keep, candidates, 13, limit)
    assert dedup == keywords.select_phrases(rows, cols, scores, keep, candidates, 13, limit)
    assert own == keywords.select_phrases(rows, cols, scores, np.ones_like(keep), candidates, 13, limit)


def _reference_index(texts, cfg, embedder):
    """The SID tables as the simple path builds them: one embedder call, CountVectorizer, five words passes."""
    n = len(texts)
    emb = keywords.embed_texts(embedder, texts, cfg.batch_size)
    emb = builder_module._l2(emb) if cfg.normalize_embeddings else emb
    b = SIDBuilder(cfg, embedder=embedder)
    labels, centroids = b._cluster(emb)
    stop = resolve_stop_words(cfg.stop_words)
    vec = make_vectorizer(stop, (1, 1))
    counts = ctfidf.cluster_term_counts(vec.fit_transform(texts).tocsr(), labels, cfg.num_clusters)
    words = ctfidf.top_words(ctfidf.ctfidf(counts), vec.get_feature_names_out(), 50)
    global_ids = ctfidf.unique_global_ids(words, cfg.global_words, np.bincount(labels, minlength=cfg.num_clusters))
    cluster_words = [w[: cfg.cluster_words_top_k] for w in words]
    vec = make_vectorizer(stop, cfg.keyphrase_ngram_range, binary=True)
    doc_term, candidates, cand_emb = keywords.keybert_candidates(texts, vec, embedder, cfg.batch_size)
    rows, cols, scores = keywords.score_pairs(doc_term, emb, cand_emb)
    banned = [g.split() for g in global_ids]
    keep = ~keywords.banned_pairs(candidates, labels, rows, cols, banned)
    limit = cfg.lexical_phrases + cfg.max_extra_phrases
    ranked = keywords.select_phrases(rows, cols, scores, keep, candidates, n, limit)
    own = keywords.select_phrases(rows, cols, scores, np.ones_like(keep), candidates, n, limit)
    keys = [builder_module.text_key(t) for t in texts]
    full = builder_module._assign_sids([global_ids[c] for c in labels], ranked, cfg, own=own, text_keys=keys)
    sids, target_sid = builder_module._sid_table(full)
    coverage = builder_module._global_word_coverage(texts, labels, global_ids)
    return dict(sids=sids, target_sid=target_sid, labels=labels, centroids=centroids, global_ids=global_ids,
                cluster_words=cluster_words, keys=keys, coverage=coverage)  # fmt: skip


def _check_same(index, ref):
    assert index.sids == ref["sids"]
    np.testing.assert_array_equal(index.target_sid, ref["target_sid"])
    np.testing.assert_array_equal(index.target_cluster, ref["labels"])
    np.testing.assert_array_equal(index.centroids, ref["centroids"])
    assert index.global_ids == ref["global_ids"] and index.cluster_words == ref["cluster_words"]
    assert index.target_text_hash.tolist() == ref["keys"]
    assert index.global_word_coverage == ref["coverage"]


CAPTIONS = [
    " ".join(np.random.default_rng(i).choice(VOCAB, np.random.default_rng(i).integers(3, 9))) for i in range(120)
] + ["it is what it is", "the of a", "three o'clock", "four o'clock"]


@pytest.mark.parametrize("resolve", [False, True])
@pytest.mark.parametrize("as_dataset", [False, True])
def test_build_equals_the_simple_path(resolve, as_dataset, monkeypatch):
    cfg = SIDConfig(num_clusters=5, kmeans_n_init=1, batch_size=16, resolve_collisions=resolve, embedding_model="x")
    ref = _reference_index(CAPTIONS, cfg, HashEmbedder())
    # small chunks and blocks: the streaming paths run many rounds on a small corpus
    monkeypatch.setattr(builder_module, "_CANDIDATE_BLOCK", 17)
    monkeypatch.setattr(keywords, "_CHUNK", 31)
    streamed = SIDConfig(**{**cfg.to_dict(), "keyphrase_ngram_range": (1, 2), "embedding_chunk_size": 13})
    data = datasets.Dataset.from_dict({"text": CAPTIONS}) if as_dataset else CAPTIONS
    index = SIDBuilder(streamed, embedder=HashEmbedder()).build(data, show_progress=False)
    _check_same(index, ref)


def test_timings_name_every_stage():
    b = SIDBuilder(SIDConfig(num_clusters=3, kmeans_n_init=1, embedding_model="x"), embedder=HashEmbedder())
    b.build(CAPTIONS[:30], show_progress=False)
    assert set(b.timings) == {"tokenize", "embed", "cluster", "verbalise", "keybert", "assign", "total"}
    assert b.timings["total"] >= sum(v for k, v in b.timings.items() if k != "total") - 1e-6


def test_embedder_returning_the_wrong_shape_is_named():
    class Short(HashEmbedder):
        def encode(self, texts, **kwargs):
            return super().encode(texts)[:-1]

    b = SIDBuilder(SIDConfig(num_clusters=2, kmeans_n_init=1, embedding_model="x"), embedder=Short())
    with pytest.raises(RuntimeError, match=r"shape \(29, 16\) for 30 texts"):
        b.build(CAPTIONS[:30], show_progress=False)


def test_config_embedding_options_validate():
    assert SIDConfig(embedding_devices="cuda:0, cuda:1").embedding_devices == ["cuda:0", "cuda:1"]
    assert SIDConfig(embedding_devices=("cpu",)).embedding_devices == ["cpu"]
    assert SIDConfig.from_dict(SIDConfig(embedding_devices=["cpu", "cpu"]).to_dict()).embedding_devices == [
        "cpu",
        "cpu",
    ]
    with pytest.raises(ValueError, match="embedding_devices"):
        SIDConfig(embedding_devices=[])
    with pytest.raises(ValueError, match="embedding_chunk_size"):
        SIDConfig(embedding_chunk_size=0)


def test_embedding_devices_need_a_sentence_transformer():
    cfg = SIDConfig(num_clusters=2, kmeans_n_init=1, embedding_model="x", embedding_devices=["cpu"])
    with pytest.raises(ValueError, match="start_multi_process_pool"):
        SIDBuilder(cfg, embedder=HashEmbedder()).build(CAPTIONS[:10], show_progress=False)


def test_distributed_embedding_needs_a_process_group():
    cfg = SIDConfig(num_clusters=2, kmeans_n_init=1, embedding_model="x", embedding_distributed=True)
    with pytest.raises(RuntimeError, match="torchrun"):
        SIDBuilder(cfg, embedder=HashEmbedder()).build(CAPTIONS[:10], show_progress=False)


def test_sentence_transformers_pool_gives_the_same_index(tiny_st, tiny_st_dir):
    """Two CPU workers of sentence-transformers' own multi-process pool embed what one process embeds."""
    texts = CAPTIONS[:60]
    base = dict(embedding_model=tiny_st_dir, num_clusters=3, kmeans_n_init=1, embedding_chunk_size=25)
    one = SIDBuilder(SIDConfig(**base), embedder=tiny_st).build(texts, show_progress=False)
    pooled = SIDBuilder(SIDConfig(**base, embedding_devices=["cpu", "cpu"]), embedder=tiny_st)
    two = pooled.build(texts, show_progress=False)
    assert two.sids == one.sids and two.global_ids == one.global_ids
    np.testing.assert_array_equal(two.target_sid, one.target_sid)
    np.testing.assert_allclose(two.centroids, one.centroids, atol=1e-5)
