"""Identifier kinds (numeric, atomic, text) through the same builder and index; SID quality fixes (issue 11)."""

from __future__ import annotations

import numpy as np
import pytest

from semcore_hf.identifiers import SIDIndex
from semcore_hf.identifiers.kinds import NumericTree, atomic_tokens, numeric_paths
from semcore_hf.identifiers.sid_format import split_sid


def _ids(n):
    return [f"t{i}" for i in range(n)]


# ---------------------------------------------------------------------------------------------- numeric (GRACE)
def test_numeric_paths_are_unique_tree_paths(make_builder, captions):
    index = make_builder(id_kind="numeric", numeric_branching=3, numeric_leaf_size=4).build(captions, _ids(30))
    assert index.num_sids == len(captions)  # numbered leaves: every target its own path
    tree = index.numeric_tree
    for sid in index.sids:
        glob, lex = split_sid(sid)
        path = [int(glob), *map(int, lex[0].split())] if lex else [int(glob)]
        assert all(0 <= p < max(3, 4) for p in path[:-1])
        # the path leads through the tree to a leaf, whose numbering covers the last digit
        node = 0
        for digit in path[:-1]:
            kids = tree.children(node)
            node = int(kids[tree.label[kids] == digit][0])
        assert tree.leaf_count[node] > path[-1] >= 0
    assert index.collision_report()["num_groups"] == 0


def test_numeric_leaves_respect_the_leaf_size():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(200, 8)).astype(np.float32)
    paths, tree = numeric_paths(emb, branching=4, leaf_size=5, seed=0, n_init=1)
    leaves = tree.leaf_count[tree.leaf_count >= 0]
    assert leaves.sum() == 200 and leaves.max() <= 5  # every target numbered once, a leaf holds <= leaf_size
    assert len({tuple(p) for p in paths}) == 200
    tree.check()
    assert NumericTree.from_arrays(tree.arrays()).leaf_count.tolist() == tree.leaf_count.tolist()


def test_numeric_index_round_trips_and_places_new_targets(make_builder, captions, tmp_path, tiny_st):
    index = make_builder(id_kind="numeric", numeric_branching=3, numeric_leaf_size=4).build(captions, _ids(30))
    index.save_pretrained(tmp_path / "idx")
    loaded = SIDIndex.from_pretrained(tmp_path / "idx")
    assert loaded.sids == index.sids and loaded.numeric_tree.parent.tolist() == index.numeric_tree.parent.tolist()
    new = loaded.add(["n0", "n1"], ["a dog runs on the grass", "a dog runs on the grass"], embedder=tiny_st)
    assert len(set(new)) == 2 and not set(new) & set(index.sids)  # new paths, never an existing one
    # the new target descends to the leaf of the nearest centroids: it shares its prefix with existing targets there
    prefixes = {s.rsplit(" ", 1)[0] for s in index.sids}
    assert all(s.rsplit(" ", 1)[0] in prefixes or " " not in s for s in new)


# ---------------------------------------------------------------------------------------------- atomic / text
def test_atomic_ids_are_one_new_token_per_target(make_builder, captions, tiny_st):
    from semcore_hf import _testing
    from semcore_hf.tokenization import SIDTokenizerExtension

    index = make_builder(id_kind="atomic").build(captions, _ids(30))
    assert index.num_sids == 30 and index.sid_of("t7") == "<sid_atom_7> | "
    tokens = atomic_tokens(index.sids)
    tok = _testing.build_tokenizer(None)
    ext = SIDTokenizerExtension(identifier_tokens=tokens)
    ext.apply(tok)
    seqs = ext.encode(index.sids, tok)
    begin, sep, end = ext.token_ids(tok)
    assert all(s == [begin, tok.convert_tokens_to_ids(t), sep, end] for s, t in zip(seqs, tokens))
    assert index.add(["n0"], ["a red bus"], embedder=tiny_st) == ["<sid_atom_30> | "]


def test_text_ids_are_the_targets_own_words(make_builder, captions):
    index = make_builder(id_kind="text", text_id_max_words=5).build(captions, _ids(30))
    assert index.sid_of("t0") == "a brown dog runs across | "
    assert index.sid_of("t24") != index.sid_of("t25")  # three / four o'clock differ in the fifth word
    dup = make_builder(id_kind="text", num_clusters=2).build(["a dog", "A dog!", "a cat"], _ids(3))
    assert dup.sid_of("t0") == dup.sid_of("t1") != dup.sid_of("t2")  # identical words: one collision group
    rep = dup.collision_report()
    assert rep["groups_identical_texts"] == 1 and rep["groups_different_texts"] == 0


def test_ablations_without_global_or_lexical_id(make_builder, captions):
    no_global = make_builder(use_global_id=False).build(captions, _ids(30))
    assert all(split_sid(s)[0] == "" and split_sid(s)[1] for s in no_global.sids)
    no_lexical = make_builder(use_lexical_id=False).build(captions, _ids(30))
    assert all(split_sid(s)[1] == [] for s in no_lexical.sids)
    assert no_lexical.num_sids == 4  # the cluster alone: one SID per cluster
    with pytest.raises(ValueError, match="both be False"):
        make_builder(use_global_id=False, use_lexical_id=False)


def test_bad_kind_is_refused(make_builder):
    with pytest.raises(ValueError, match="id_kind"):
        make_builder(id_kind="quantum")
    with pytest.raises(ValueError, match="numeric_branching"):
        make_builder(numeric_branching=1)


# ---------------------------------------------------------------------------------------------- issue 11 item 2
def test_texts_made_of_global_words_fall_back_to_their_own_words(make_builder):
    texts = ["dog", "cat", "dog", "a red bus", "a blue bus", "a green bus"]
    index = make_builder(num_clusters=2, global_words=2).build(texts, _ids(6))
    sids = [index.sid_of(t) for t in _ids(6)]
    assert sids[0] == sids[2]  # identical texts share a SID
    assert len({sids[0], sids[1], *sids[3:]}) == 5  # every different text its own SID
    assert all(split_sid(s)[1] for s in sids)  # never an empty lexical ID
    rep = index.collision_report()
    assert rep["sids_with_empty_lexical_id"] == 0
    assert rep["groups_identical_texts"] == 1 and rep["groups_different_texts"] == 0


def test_dedup_never_merges_two_different_texts(make_builder):
    # Whatever the clusters' global words turn out to be, de-duplication alone must never merge different texts:
    # every collision group left holds identical texts.
    texts = ["red dog", "blue dog", "red cat", "blue cat", "red", "blue", "dog", "cat", "red dog"]
    for k in (1, 2, 3):
        index = make_builder(num_clusters=k, global_words=2, lexical_phrases=1).build(texts, _ids(len(texts)))
        rep = index.collision_report()
        assert rep["groups_different_texts"] == 0, (k, index.collision_groups())
        assert rep["groups_identical_texts"] == 1  # the two "red dog"


def test_added_targets_keep_the_rule(make_builder, tiny_st):
    index = make_builder(num_clusters=2, global_words=2).build(["dog", "cat", "a red bus", "a blue bus"], _ids(4))
    new = index.add(["n0", "n1"], ["dog", "dog cat"], embedder=tiny_st)
    assert new[0] == index.sid_of("t0")  # the same text joins its group
    assert new[1] != index.sid_of("t0") and split_sid(new[1])[1]  # a different text never does
    assert index.collision_report()["groups_different_texts"] == 0


def test_report_counts_global_word_coverage(built_index, captions, tmp_path):
    rep = built_index.collision_report()
    words = [set(g.split()) for g in built_index.global_ids]
    covered = sum(
        bool(words[int(c)] & set(t.lower().replace("'", " ").split()))
        for t, c in zip(captions, built_index.target_cluster)
    )
    assert 0 < rep["global_word_coverage"] <= 1
    assert abs(rep["global_word_coverage"] - covered / len(captions)) <= 2 / len(captions)
    built_index.save_pretrained(tmp_path / "i")
    assert SIDIndex.from_pretrained(tmp_path / "i").collision_report() == rep
    card = (tmp_path / "i" / "README.md").read_text()
    assert "different texts" in card and "coverage" in card


# ---------------------------------------------------------------------------------------------- issue 11 item 4
def test_coverage_rule_names_clusters_after_words_most_members_share():
    import scipy.sparse as sp

    from semcore_hf.identifiers.ctfidf import coverage_order

    vocab = np.array(["dog", "puppy", "rare", "grass"])
    # cluster 0: 4 members; "rare" is in 1 member only but ranks first by c-TF-IDF; "dog" is in 3
    docs = [[1, 0, 1, 0], [1, 1, 0, 0], [1, 0, 0, 1], [0, 1, 0, 1]]
    doc_word = sp.csr_matrix(np.array(docs))
    labels = np.zeros(4, dtype=np.int64)
    reordered = coverage_order([["rare", "dog", "puppy", "grass"]], doc_word, labels, vocab, m=2)[0]
    assert reordered[:2] == ["dog", "puppy"]  # dog covers 3; then puppy adds member 3 (grass too: c-TF-IDF order)
    assert sorted(reordered) == sorted(["rare", "dog", "puppy", "grass"])


def test_coverage_rule_raises_the_reported_coverage(make_builder, captions):
    base = make_builder(global_words=1).build(captions, _ids(30)).collision_report()["global_word_coverage"]
    cov = make_builder(global_words=1, global_word_rule="coverage").build(captions, _ids(30))
    assert cov.collision_report()["global_word_coverage"] >= base
    with pytest.raises(ValueError, match="global_word_rule"):
        make_builder(global_word_rule="tfidf")
