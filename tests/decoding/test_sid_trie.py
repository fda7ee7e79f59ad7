from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semcore_hf.decoding import SIDTrie

END = 29
V = 30


def _ref_allowed(seqs, prefix):
    out = set()
    for s in seqs:
        if len(s) > len(prefix) and list(s[: len(prefix)]) == list(prefix):
            out.add(s[len(prefix)])
    return sorted(out)


seq_sets = st.lists(st.lists(st.integers(0, 4), min_size=0, max_size=6), min_size=1, max_size=40, unique_by=tuple).map(
    lambda xs: [x + [END] for x in xs]
)


@settings(max_examples=60, deadline=None)
@given(seqs=seq_sets, data=st.data())
def test_allowed_next_matches_reference(seqs, data):
    trie = SIDTrie.build(seqs, V)
    assert trie.num_sids == len(seqs)
    assert trie.end_token_id == END
    for _ in range(10):
        base = data.draw(st.sampled_from(seqs))
        cut = data.draw(st.integers(0, len(base)))
        prefix = base[:cut] + data.draw(st.lists(st.integers(0, V - 1), max_size=2))
        assert trie.allowed_next(prefix) == _ref_allowed(seqs, prefix)
    for row, s in enumerate(seqs):
        assert trie.lookup(s + [0, 0]) == row
    rows = trie.lookup_rows(torch.tensor([s + [END] * (8 - len(s)) for s in seqs]))
    assert rows.tolist() == list(range(len(seqs)))
    keys = trie.edge_keys()
    assert np.all(np.diff(keys) > 0) and len(keys) == len(trie.child_node) == trie.num_nodes - 1
    # per-depth fan-out bounds every node's children
    assert trie.depth_fanout.max() == np.diff(trie.indptr).max()


@settings(max_examples=30, deadline=None)
@given(seqs=seq_sets, split=st.integers(0, 40))
def test_insert_equals_rebuild(seqs, split):
    split = min(split, len(seqs) - 1)
    full = SIDTrie.build(seqs, V, sid_rows=np.arange(len(seqs)) * 3)
    part = SIDTrie.build(seqs[:split], V, sid_rows=np.arange(split) * 3) if split else None
    if part is None:
        return
    part.insert(seqs[split:], np.arange(split, len(seqs)) * 3)
    for name in ("indptr", "child_token", "leaf_node", "leaf_row", "depth_fanout"):
        np.testing.assert_array_equal(getattr(part, name), getattr(full, name))
    got, rows = part.token_sequences()
    assert sorted(map(tuple, got)) == sorted(map(tuple, seqs))


def test_invalid_inputs():
    with pytest.raises(ValueError, match="same token sequence"):
        SIDTrie.build([[1, 2, END], [3, END], [1, 2, END]], V)
    with pytest.raises(ValueError, match="prefix of another"):
        SIDTrie.build([[1, 2], [1, 2, END]], V)
    with pytest.raises(ValueError, match="outside"):
        SIDTrie.build([[1, 2, V]], V)
    with pytest.raises(ValueError, match="empty"):
        SIDTrie.build([[1, END], []], V)
    with pytest.raises(ValueError, match="sid_rows"):
        SIDTrie.build([[1, END]], V, sid_rows=[0, 1])
    trie = SIDTrie.build([[1, END]], V)
    with pytest.raises(ValueError, match="same token sequence"):
        trie.insert([[1, END]], [1])


def test_save_load_and_fingerprint(tmp_path, sid_lm):
    model, tok, ext, sids, seqs = sid_lm
    trie = SIDTrie.from_sids(sids, tok, ext)
    assert trie.tokenizer_fingerprint == ext.fingerprint(tok)
    assert trie.end_token_id == tok.convert_tokens_to_ids("</sid>")
    trie.save_pretrained(tmp_path / "t")
    loaded = SIDTrie.from_pretrained(tmp_path / "t", tokenizer=tok)
    for name in ("indptr", "child_token", "leaf_node", "leaf_row", "depth_fanout"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(trie, name))
    assert (loaded.vocab_size, loaded.end_token_id) == (trie.vocab_size, trie.end_token_id)
    assert loaded.allowed_next(seqs[0][:2]) == trie.allowed_next(seqs[0][:2])

    from semcore_hf import _testing

    other = _testing.build_tokenizer(None, vocab_size=500)
    with pytest.raises(ValueError) as err:
        SIDTrie.from_pretrained(tmp_path / "t", tokenizer=other)
    msg = str(err.value)
    assert trie.tokenizer_fingerprint in msg and ext.fingerprint(other) in msg and "from_sids" in msg
    with pytest.raises(FileNotFoundError):
        SIDTrie.from_pretrained(tmp_path / "missing")


def test_from_sids_names_colliding_sids(sid_lm):
    _, tok, ext, _, _ = sid_lm
    with pytest.raises(ValueError, match="animal dog"):
        SIDTrie.from_sids(["animal dog | grass", "animal dog | grass, "], tok, ext)


def test_to_device_and_memory():
    trie = SIDTrie.build([[1, 2, END], [1, 3, END]], V).to("cpu")
    assert trie.device == torch.device("cpu")
    assert trie.bytes_per_sid > 0 and "bytes_per_sid" in repr(trie)
