"""SIDTrie load-time integrity: truncated, mismatched or inconsistent files are refused, naming the file."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from semcore_hf import _io
from semcore_hf.decoding import SIDTrie

V, END = 20, 19
SEQS = [[1, 2, END], [1, 3, END], [4, END], [5, 6, 7, END]]


@pytest.fixture
def saved(tmp_path):
    d = tmp_path / "trie"
    SIDTrie.build(SEQS, V, tokenizer_fingerprint="fp").save_pretrained(d)
    return d


def _meta(d):
    return json.loads((d / "sid_trie.json").read_text())


def _rewrite(d, meta_changes=None, **array_changes) -> None:
    """Change arrays / metadata and record the new hash, as a consistent-looking but wrong save would."""
    arrays = load_file(str(d / "sid_trie.safetensors"))
    arrays.update(array_changes)
    save_file(arrays, str(d / "sid_trie.safetensors"))
    meta = _meta(d)
    meta.update(meta_changes or {})
    meta["sha256"]["sid_trie.safetensors"] = hashlib.sha256((d / "sid_trie.safetensors").read_bytes()).hexdigest()
    (d / "sid_trie.json").write_text(json.dumps(meta))


def test_round_trip_records_hash_and_manifest(saved):
    meta = _meta(saved)
    assert meta["format_version"] == 2
    assert (
        meta["sha256"]["sid_trie.safetensors"]
        == hashlib.sha256((saved / "sid_trie.safetensors").read_bytes()).hexdigest()
    )
    assert _io.artefact_kinds(saved) == {"sid_trie"}
    loaded = SIDTrie.from_pretrained(saved)
    assert loaded.token_sequences()[0] == SIDTrie.build(SEQS, V).token_sequences()[0]


def test_format_1_is_still_read(saved):
    meta = _meta(saved)
    del meta["sha256"]
    meta["format_version"] = 1
    (saved / "sid_trie.json").write_text(json.dumps(meta))
    assert SIDTrie.from_pretrained(saved).num_sids == len(SEQS)


@pytest.mark.parametrize("name", ["sid_trie.json", "sid_trie.safetensors"])
def test_a_truncated_file_is_named(saved, name):
    data = (saved / name).read_bytes()
    (saved / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"{name} in .*trie is truncated or corrupt"):
        SIDTrie.from_pretrained(saved)


def test_arrays_of_another_save_are_refused(tmp_path, saved):
    SIDTrie.build([[1, 2, END], [1, 3, END], [4, END], [5, 8, 7, END]], V).save_pretrained(tmp_path / "other")
    shutil.copy(tmp_path / "other" / "sid_trie.safetensors", saved / "sid_trie.safetensors")
    with pytest.raises(ValueError, match="sid_trie.safetensors in .* does not belong with sid_trie.json"):
        SIDTrie.from_pretrained(saved)


def _good():
    t = SIDTrie.build(SEQS, V)
    return {k: getattr(t, k).copy() for k in ("indptr", "child_token", "leaf_node", "leaf_row", "depth_fanout")}


def _swap_two(a):
    a = a.copy()
    a[[1, 2]] = a[[2, 1]]
    return a


@pytest.mark.parametrize(
    "changes, meta_changes, match",
    [
        (lambda g: {"indptr": _swap_two(g["indptr"])}, None, "indptr is not a monotone offset array"),
        (lambda g: {"indptr": g["indptr"][:-1]}, None, "records num_nodes=.* but the arrays hold"),
        (lambda g: {}, {"num_sids": 7}, "records num_sids=7 but the arrays hold 4"),
        (lambda g: {"child_token": _swap_two(g["child_token"])}, None, "not sorted by token"),
        (lambda g: {"child_token": g["child_token"] + V}, None, r"child_token holds ids outside \[0, 20\)"),
        (lambda g: {"leaf_row": np.zeros(4, np.int32)}, None, "leaf_row holds negative or repeated"),
        (lambda g: {"leaf_node": g["leaf_node"][::-1].copy()}, None, "leaf_node is not the sorted list"),
        (lambda g: {"depth_fanout": g["depth_fanout"] - 1}, None, "depth_fanout .* differs"),
        (lambda g: {"indptr": g["indptr"].astype(np.float32)}, None, "'indptr' is float32 .* not a 1-d integer"),
        (lambda g: {}, {"end_token_id": 99}, r"end_token_id 99 is outside \[0, 20\)"),
    ],
)
def test_inconsistent_arrays_are_refused(saved, changes, meta_changes, match):
    _rewrite(saved, meta_changes, **changes(_good()))
    with pytest.raises(ValueError, match=match) as err:
        SIDTrie.from_pretrained(saved)
    assert "sid_trie.safetensors and sid_trie.json in" in str(err.value)


def test_other_files_in_the_folder_are_kept(saved):
    (saved / "tokenizer.json").write_text("{}")
    SIDTrie.build(SEQS[:2], V).save_pretrained(saved)
    assert (saved / "tokenizer.json").read_text() == "{}" and SIDTrie.from_pretrained(saved).num_sids == 2
