import copy
import json
import os

import numpy as np
import pytest

from semcore_hf._testing import local_hub
from semcore_hf.identifiers import SIDIndex
from semcore_hf.identifiers import index as index_module
from semcore_hf.identifiers.sid_format import split_sid

FILES = {"README.md", "sid_index.json", "sid_index.safetensors", "sid_index_config.json"}


def test_save_load_round_trip(built_index, tmp_path, assert_same_index):
    built_index.save_pretrained(tmp_path / "idx")
    assert set(os.listdir(tmp_path / "idx")) == FILES | {".semcore_manifest.json"}
    assert not [p for p in tmp_path.rglob("*") if p.suffix in {".pkl", ".pickle", ".bin", ".pt", ".npy"}]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".idx.")]  # no staging folder or lock left
    loaded = SIDIndex.from_pretrained(tmp_path / "idx")
    assert_same_index(loaded, built_index)
    assert loaded.collision_report() == built_index.collision_report()
    tables = json.loads((tmp_path / "idx" / "sid_index.json").read_text())
    assert tables["collision_report"] == built_index.collision_report()
    card = (tmp_path / "idx" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: semcore_hf") and "sid-index" in card
    for t in built_index.target_ids:
        assert loaded.sid_of(t) == built_index.sid_of(t)


def test_save_keeps_a_models_config_json(built_index, tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "qwen2"}')
    built_index.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text()) == {"model_type": "qwen2"}
    assert FILES <= set(os.listdir(tmp_path))


def test_save_is_atomic(built_index, tmp_path, monkeypatch):
    dest = tmp_path / "idx"
    built_index.save_pretrained(dest)
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    other = copy.deepcopy(built_index)
    other.sids = [s + "x" for s in other.sids]
    other._reindex()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.numpy.save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        other.save_pretrained(dest)
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]  # no temporary folder left behind
    # a fresh destination stays absent
    with pytest.raises(OSError):
        other.save_pretrained(tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_push_to_hub_and_from_pretrained_repo_id(built_index, tmp_path, monkeypatch, assert_same_index):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_TOKEN", "hf_dummy")
    root = tmp_path / "hub"
    with local_hub(str(root)) as commits:
        built_index.push_to_hub("user/sid-index")
    assert commits and commits[0][0] == "user/sid-index"
    repo = root / "models" / "user" / "sid-index"
    assert set(os.listdir(repo)) == FILES

    calls = []

    def fake_download(repo_id, filename, **kwargs):
        calls.append((repo_id, filename))
        return str(root / "models" / repo_id / filename)

    monkeypatch.setattr(index_module, "hf_hub_download", fake_download)
    loaded = SIDIndex.from_pretrained("user/sid-index")
    assert_same_index(loaded, built_index)
    assert {f for _, f in calls} == FILES - {"README.md"}


def test_from_pretrained_missing_file(tmp_path):
    (tmp_path / "sid_index_config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="sid_index.json not found"):
        SIDIndex.from_pretrained(tmp_path)


def test_add_assigns_nearest_centroid_and_updates_tables(built_index, tiny_st, captions):
    idx = copy.deepcopy(built_index)
    n0, sids0 = len(idx), list(idx.sids)
    new_texts = ["a brown dog runs across the green grass", "a grey cat naps on a warm sofa in the sun"]
    sids = idx.add(["n0", "n1"], new_texts, embedder=tiny_st)
    assert len(sids) == 2 and len(idx) == n0 + 2
    assert idx.sids[: len(sids0)] == sids0  # existing SIDs never change rows
    for t, s in zip(["n0", "n1"], sids):
        assert idx.sid_of(t) == s and t in idx.targets_of(s)
        g, phrases = split_sid(s)
        c = idx.target_cluster[idx.target_ids.index(t)]
        assert g == idx.global_ids[c]
        assert not set(g.split()) & {w for p in phrases for w in p.split()}
    emb = tiny_st.encode(new_texts, convert_to_numpy=True)
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    nearest = ((emb[:, None, :] - idx.centroids[None]) ** 2).sum(-1).argmin(1)
    np.testing.assert_array_equal(idx.target_cluster[-2:], nearest)
    # the first new text repeats caption 0: it joins its collision group (when it lands in the same cluster)
    if idx.target_cluster[0] == idx.target_cluster[-2]:
        assert idx.sid_of("n0") == idx.sid_of("t0")
        assert idx.collision_groups()[idx.sid_of("t0")] == ["t0", "n0"]
    assert idx.collision_report()["num_targets"] == n0 + 2
    # for a previously unmodified index the original object is untouched
    assert len(built_index) == n0


def test_add_bad_input(built_index, tiny_st):
    idx = copy.deepcopy(built_index)
    with pytest.raises(ValueError, match="already in the index.*'t1'"):
        idx.add(["t1"], ["a dog"], embedder=tiny_st)
    with pytest.raises(ValueError, match=r"position\(s\) 0 \(id 'z'\)"):
        idx.add(["z"], [" "], embedder=tiny_st)
    with pytest.raises(ValueError, match="Duplicate target ids"):
        idx.add(["z", "z"], ["a dog", "a cat"], embedder=tiny_st)
    with pytest.raises(ValueError, match="1 target ids for 2 texts"):
        idx.add(["z"], ["a dog", "a cat"], embedder=tiny_st)
    assert len(idx) == len(built_index)


def test_add_round_trips(built_index, tiny_st, tmp_path, assert_same_index):
    idx = copy.deepcopy(built_index)
    idx.add(["n0"], ["a surfer rides a wave at sunset"], embedder=tiny_st)
    idx.save_pretrained(tmp_path)
    assert_same_index(SIDIndex.from_pretrained(tmp_path), idx)


def test_add_loads_embedder_from_config(built_index, tiny_st):
    idx = copy.deepcopy(built_index)  # config.embedding_model is the tiny model's folder
    expected = copy.deepcopy(built_index).add(["n0"], ["a cat on a chair"], embedder=tiny_st)
    assert idx.add(["n0"], ["a cat on a chair"]) == expected
