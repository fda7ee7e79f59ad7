"""The vectorised KeyBERT scoring must pick what `keybert.KeyBERT.extract_keywords` picks."""

import numpy as np
import pytest
from keybert import KeyBERT

from semcore_hf.identifiers import keywords
from semcore_hf.identifiers.text import SEMCORE_STOP_WORDS, make_vectorizer

SUBJECTS = ["a brown dog", "two children", "an old man", "a young woman", "three cats", "a surfer", "a cyclist"]
VERBS = ["runs along", "sits beside", "plays near", "walks across", "jumps over", "rests under"]
PLACES = ["the sandy beach", "a busy street", "the green park", "a wooden bridge", "the snowy mountain", "a red barn"]
EXTRAS = ["at sunset", "in the rain", "with a blue ball", "holding a yellow umbrella", "at four o'clock", ""]


def _docs(n=120):
    rng = np.random.default_rng(0)
    return [
        " ".join(
            x
            for x in (
                SUBJECTS[rng.integers(len(SUBJECTS))],
                VERBS[rng.integers(len(VERBS))],
                PLACES[rng.integers(len(PLACES))],
                EXTRAS[rng.integers(len(EXTRAS))],
            )
            if x
        )
        for _ in range(n)
    ]


@pytest.mark.parametrize("ngram_range", [(1, 1), (1, 2)])
def test_vectorised_keybert_matches_reference(tiny_st, ngram_range):
    docs = _docs()
    top_n = 4
    ref = KeyBERT(model=tiny_st).extract_keywords(
        docs, vectorizer=make_vectorizer(SEMCORE_STOP_WORDS, ngram_range), top_n=top_n
    )
    doc_emb = tiny_st.encode(docs, batch_size=32, convert_to_numpy=True)
    ours = keywords.keybert_scores(
        docs, doc_emb, make_vectorizer(SEMCORE_STOP_WORDS, ngram_range), tiny_st, top_n=top_n, batch_size=32
    )
    assert len(ours) == len(ref) == len(docs)
    exact = 0
    for r, o in zip(ref, ours):
        assert len(r) == len(o)
        # same scores (KeyBERT rounds to 4 decimals) ...
        np.testing.assert_allclose([s for _, s in o], [s for _, s in r], atol=2e-4)
        # ... and the same phrases, up to the order of (near-)tied candidates
        if [k for k, _ in r] == [k for k, _ in o]:
            exact += 1
        else:
            ref_scores = dict(r)
            for k, s in o:
                assert k in ref_scores or abs(s - r[-1][1]) < 2e-4, (k, r, o)
    assert exact >= 0.95 * len(docs)


def test_score_pairs_is_cosine():
    import scipy.sparse as sp

    rng = np.random.default_rng(1)
    doc, cand = rng.normal(size=(3, 5)), rng.normal(size=(4, 5))
    x = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]]))
    rows, cols, scores = keywords.score_pairs(x, doc, cand)
    dn = doc / np.linalg.norm(doc, axis=1, keepdims=True)
    cn = cand / np.linalg.norm(cand, axis=1, keepdims=True)
    np.testing.assert_array_equal(rows, [0, 0, 2, 2, 2, 2])
    np.testing.assert_allclose(scores, (dn @ cn.T)[rows, cols], rtol=1e-5)
