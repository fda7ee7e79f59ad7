"""SIDIndex load-time integrity (each bad part is named), `target_modality`, and format 1 still read."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from semcore_hf import _io
from semcore_hf._testing import local_hub
from semcore_hf.identifiers import SIDConfig, SIDIndex
from semcore_hf.identifiers import index as index_module


def _small(tag: str = "a", n: int = 6, k: int = 2, **overrides) -> SIDIndex:
    kwargs = dict(
        config=SIDConfig(embedding_model=f"model-{tag}", num_clusters=k),
        sids=[f"{tag}{i} g | p{i}" for i in range(n)],
        target_ids=[f"{tag}-{i}" for i in range(n)],
        target_sid=np.arange(n),
        target_cluster=np.arange(n) % k,
        centroids=np.eye(k, 4, dtype=np.float32) * (1 + ord(tag[0]) - ord("a")),
        global_ids=[f"{tag} g{j}" for j in range(k)],
        cluster_words=[[f"w{j}"] for j in range(k)],
        target_modality="image",
    )
    kwargs.update(overrides)
    return SIDIndex(**kwargs)


def _tables(d):
    return json.loads((d / "sid_index.json").read_text())


def _rewrite_arrays(d, **changes) -> None:
    """Change arrays and record the new file's hash, as a consistent-looking but wrong save would."""
    arrays = load_file(str(d / "sid_index.safetensors"))
    arrays.update(changes)
    save_file(arrays, str(d / "sid_index.safetensors"))
    tables = _tables(d)
    tables["files"]["sid_index.safetensors"]["sha256"] = hashlib.sha256(
        (d / "sid_index.safetensors").read_bytes()
    ).hexdigest()
    (d / "sid_index.json").write_text(json.dumps(tables))


@pytest.fixture
def saved(tmp_path):
    d = tmp_path / "idx"
    _small().save_pretrained(d)
    return d


def test_format_records_modality_and_hashes(saved):
    tables = _tables(saved)
    assert tables["format_version"] == index_module.FORMAT_VERSION >= 2 and tables["target_modality"] == "image"
    for name in ("sid_index.safetensors", "sid_index_config.json"):
        assert tables["files"][name]["sha256"] == hashlib.sha256((saved / name).read_bytes()).hexdigest()
    manifest = json.loads((saved / _io.MANIFEST_FILE).read_text())
    assert manifest["artefacts"]["sid_index"] == {
        "format_version": index_module.FORMAT_VERSION,
        "files": ["README.md", "sid_index.json", "sid_index.safetensors", "sid_index_config.json"],
    }
    loaded = SIDIndex.from_pretrained(saved)
    assert loaded.target_modality == "image" and loaded.sids == _small().sids
    assert "text-to-image" in (saved / "README.md").read_text()


def test_format_1_is_still_read(saved):
    tables = _tables(saved)
    for key in ("files", "target_modality"):
        del tables[key]
    tables["format_version"] = 1
    (saved / "sid_index.json").write_text(json.dumps(tables))
    loaded = SIDIndex.from_pretrained(saved)
    assert loaded.target_modality is None and loaded.target_ids == _small().target_ids


def test_a_newer_format_is_refused(saved):
    tables = _tables(saved)
    tables["format_version"] = 99
    (saved / "sid_index.json").write_text(json.dumps(tables))
    with pytest.raises(ValueError, match="format 99; upgrade semcore_hf"):
        SIDIndex.from_pretrained(saved)


@pytest.mark.parametrize("name", ["sid_index.json", "sid_index_config.json", "sid_index.safetensors"])
def test_a_truncated_part_is_named(saved, name):
    data = (saved / name).read_bytes()
    (saved / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"{name} in .*idx is truncated or corrupt"):
        SIDIndex.from_pretrained(saved)


def test_a_config_that_is_not_a_sidconfig_is_named(saved):
    tables = _tables(saved)
    (saved / "sid_index_config.json").write_text('{"no_such_field": 1}')
    tables["files"]["sid_index_config.json"]["sha256"] = hashlib.sha256(
        (saved / "sid_index_config.json").read_bytes()
    ).hexdigest()
    (saved / "sid_index.json").write_text(json.dumps(tables))
    with pytest.raises(ValueError, match="sid_index_config.json in .* is not a valid SIDConfig"):
        SIDIndex.from_pretrained(saved)


@pytest.mark.parametrize("part", ["sid_index.safetensors", "sid_index_config.json"])
def test_parts_of_different_saves_are_refused(tmp_path, saved, part):
    other = tmp_path / "other"
    _small("b").save_pretrained(other)  # same sizes: without hashes the mix would load cleanly
    shutil.copy(other / part, saved / part)
    with pytest.raises(ValueError, match=rf"{part} in .* does not belong with sid_index.json"):
        SIDIndex.from_pretrained(saved)


def test_parts_from_two_hub_revisions_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_TOKEN", "hf_dummy")
    root = tmp_path / "hub"
    with local_hub(str(root)) as commits:
        _small("a").push_to_hub("user/rev1")
        _small("b").push_to_hub("user/rev2")
    assert _io.MANIFEST_FILE not in commits[0][2]  # the local manifest is not published

    def fake_download(repo_id, filename, revision=None, **kwargs):
        # an old cache: the arrays of one revision, the tables of another
        repo = "user/rev2" if filename == "sid_index.safetensors" else repo_id
        return str(root / "models" / repo / filename)

    monkeypatch.setattr(index_module, "hf_hub_download", fake_download)
    assert SIDIndex.from_pretrained("user/rev2").sids == _small("b").sids
    with pytest.raises(ValueError, match="sid_index.safetensors in user/rev1 does not belong with sid_index.json"):
        SIDIndex.from_pretrained("user/rev1")


@pytest.mark.parametrize(
    "change, match",
    [
        ({"target_sid": np.array([0, 1, 2, 3, 4, 9])}, r"target_sid holds 9 for target 'a-5', outside the 6 sids"),
        ({"target_sid": np.array([0, 1, 2, 3, 4, -1])}, "target_sid holds -1"),
        ({"target_cluster": np.array([0, 1, 0, 1, 0, 2])}, "target_cluster holds 2 .* outside the 2 clusters"),
        ({"target_sid": np.arange(5)}, "6 target ids but 5 target rows"),
        ({"target_sid": np.arange(6, dtype=np.float32)}, "'target_sid' should be a 1-d integer array"),
        ({"centroids": np.eye(3, 4, dtype=np.float32)}, r"global_ids \(2\), cluster_words \(2\) and centroids \(3\)"),
    ],
)
def test_inconsistent_arrays_are_refused(saved, change, match):
    _rewrite_arrays(saved, **change)
    with pytest.raises(ValueError, match=match):
        SIDIndex.from_pretrained(saved)


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("target_ids", ["a-0", "a-1", "a-2", "a-3", "a-4", "a-0"], r"Duplicate target ids: \['a-0'\]"),
        ("sids", ["s", "s", "t", "u", "v", "w"], r"Duplicate SIDs: \['s'\]"),
        ("global_ids", ["only one"], r"global_ids \(1\)"),
        ("target_modality", "audio", "target_modality must be 'image'"),
        ("sids", None, r"sid_index.json in .* is truncated or corrupt: .*\['sids'\] are missing"),
    ],
)
def test_inconsistent_tables_are_refused(saved, key, value, match):
    tables = _tables(saved)
    if value is None:
        del tables[key]
    else:
        tables[key] = value
    (saved / "sid_index.json").write_text(json.dumps(tables))
    with pytest.raises(ValueError, match=match):
        SIDIndex.from_pretrained(saved)


def test_constructor_validation():
    with pytest.raises(ValueError, match="target_modality must be"):
        _small(target_modality="images")
    with pytest.raises(ValueError, match="Duplicate SIDs"):
        _small(sids=["x"] * 6)
    with pytest.raises(ValueError, match=r"centroids must be a \(K, d\) matrix"):
        _small(centroids=np.zeros(2, dtype=np.float32))
    assert _small(target_modality=None).target_modality is None


def test_builder_records_target_modality_and_add_keeps_it(make_builder, captions, tiny_st, tmp_path):
    with pytest.raises(ValueError, match="target_modality must be"):
        make_builder(embedder=None).build(captions[:8], target_modality="caption")  # before loading any embedder
    idx = make_builder(num_clusters=2).build(captions[:8], show_progress=False, target_modality="text")
    assert idx.target_modality == "text"
    grown = copy.deepcopy(idx)
    grown.add(["new"], ["a dog jumps into a lake"], embedder=tiny_st)
    assert grown.target_modality == "text"
    grown.save_pretrained(tmp_path / "i2t")
    loaded = SIDIndex.from_pretrained(tmp_path / "i2t")
    assert loaded.target_modality == "text" and "image-to-text" in (tmp_path / "i2t" / "README.md").read_text()
    assert make_builder(num_clusters=2).build(captions[:8], show_progress=False).target_modality is None


def test_saving_keeps_users_files_and_refuses_a_models_readme(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "qwen2"}')
    _small().save_pretrained(d)
    _small("b").save_pretrained(d)
    assert (d / "config.json").read_text() == '{"model_type": "qwen2"}'
    assert SIDIndex.from_pretrained(d).sids == _small("b").sids
    other = tmp_path / "with_card"
    other.mkdir()
    (other / "README.md").write_text("# my model\n")
    with pytest.raises(_io.ArtefactConflictError, match=r"README\.md"):
        _small().save_pretrained(other)
    assert [p.name for p in other.iterdir()] == ["README.md"]


def test_an_index_saved_before_manifests_is_replaced(tmp_path, saved):
    (saved / _io.MANIFEST_FILE).unlink()  # an index folder written by an older semcore_hf
    (saved / "notes.txt").write_text("mine")
    _small("b").save_pretrained(saved)
    assert SIDIndex.from_pretrained(saved).sids == _small("b").sids and (saved / "notes.txt").read_text() == "mine"
