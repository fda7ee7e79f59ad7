import math

import numpy as np
import scipy.sparse as sp

from semcore_hf.identifiers import ctfidf
from semcore_hf.identifiers.text import SEMCORE_STOP_WORDS, make_vectorizer, resolve_stop_words


def test_ctfidf_matches_hand_computed_example():
    # vocabulary [cat, dog, grass]; cluster 0: dog x2, grass x1; cluster 1: cat x1, grass x1
    docs = sp.csr_matrix(np.array([[0, 1, 1], [0, 1, 0], [1, 0, 0], [0, 0, 1]]))
    labels = np.array([0, 0, 1, 1])
    counts = ctfidf.cluster_term_counts(docs, labels, 2)
    np.testing.assert_array_equal(counts.toarray(), [[0, 2, 1], [1, 0, 1]])
    w = ctfidf.ctfidf(counts).toarray()
    # f = [1, 2, 2]; A = 5 words / 2 clusters = 2.5
    expected = np.array(
        [
            [0.0, 2 * math.log(1 + 2.5 / 2), 1 * math.log(1 + 2.5 / 2)],
            [1 * math.log(1 + 2.5 / 1), 0.0, 1 * math.log(1 + 2.5 / 2)],
        ]
    )
    np.testing.assert_allclose(w, expected, rtol=1e-12)
    words = ctfidf.top_words(ctfidf.ctfidf(counts), np.array(["cat", "dog", "grass"], dtype=object), 5)
    assert words == [["dog", "grass"], ["cat", "grass"]]


def test_top_words_ties_are_alphabetical():
    w = sp.csr_matrix(np.array([[1.0, 1.0, 2.0]]))
    assert ctfidf.top_words(w, np.array(["zebra", "ant", "cow"], dtype=object), 3) == [["cow", "ant", "zebra"]]


def test_unique_global_ids_replace_last_word_first():
    words = [["dog", "grass", "park"], ["dog", "grass", "ball"], ["dog", "grass"], ["x"]]
    ids = ctfidf.unique_global_ids(words, 2, np.array([10, 5, 1, 1]))
    assert ids[0] == "dog grass"  # the largest cluster chooses first
    assert ids[1] == "dog ball"  # the last word is replaced by the next best one
    assert ids[2] == "dog 2"  # no combination left: words plus the cluster number
    assert ids[3] == "x 3"
    assert len(set(ids)) == len(ids)


def test_stop_word_policy_keeps_number_and_spatial_words():
    for w in ["one", "three", "four", "twelve", "twenty", "first", "behind", "front", "top", "under", "fire"]:
        assert w not in SEMCORE_STOP_WORDS
    for w in ["the", "a", "of", "and", "is"]:
        assert w in SEMCORE_STOP_WORDS
    assert "three" in resolve_stop_words("english")
    assert resolve_stop_words(None) == frozenset()
    vec = make_vectorizer(SEMCORE_STOP_WORDS, (1, 1))
    vec.fit(["The clock shows three o'clock, behind the Café"])
    assert list(vec.get_feature_names_out()) == ["behind", "cafe", "clock", "o'clock", "shows", "three"]
