"""Saving (Parquet with embedded images + card), `load_dataset` by config name, atomicity, and a mocked Hub push."""

from __future__ import annotations

import os
import shutil

import datasets
import pytest
import yaml
from sid_data_helpers import GENERATED, local_hub, make_karpathy

from semcore_hf.data import build_sid_dataset, load_image_caption_source, push_sid_dataset_to_hub, save_sid_dataset


def _rows(ds):
    """Rows with images as raw bytes, comparable across storage."""
    if "images" in ds.column_names:
        ds = ds.cast_column("images", datasets.List(datasets.Image(decode=False)))
    rows = ds.to_list()
    for r in rows:
        for im in r.get("images", []):
            path = im.pop("path", None)
            if im["bytes"] is None:  # path-based (as built): read the file, as embedding does
                with open(path, "rb") as f:
                    im["bytes"] = f.read()
    return rows


@pytest.fixture
def movable(tmp_path, indexes):
    """Tasks built on image files that the test may move or delete afterwards."""
    path = make_karpathy(tmp_path / "src")
    dd = load_image_caption_source(path, generated_captions=GENERATED)
    out = build_sid_dataset(
        dd,
        t2i_index=indexes[0],
        i2t_index=indexes[1],
        tasks=["t2i", "i2t", "verify_t2i"],
        cache_dir=tmp_path / "cache",
    )
    return out, tmp_path / "src" / "images"


def test_parquet_round_trip_embeds_images(movable, tmp_path):
    out, images = movable
    expected = {t: {s: _rows(ds) for s, ds in dd.items()} for t, dd in out.items()}
    save_sid_dataset(out, tmp_path / "out")
    shutil.rmtree(images)  # embedded: the data must not need the original files any more
    for task in out:
        for split in out[task]:
            assert len(list((tmp_path / "out" / task).glob(f"{split}-*.parquet"))) == 1
        loaded = datasets.load_dataset(str(tmp_path / "out"), name=task)
        assert list(loaded) == ["train", "validation", "test"]
        assert loaded["train"].features == out[task]["train"].features
        assert {s: _rows(ds) for s, ds in loaded.items()} == expected[task]
    im = datasets.load_dataset(str(tmp_path / "out"), name="i2t", split="test")[0]["images"][0]
    assert im.size == (16, 12)
    disk = datasets.load_from_disk(str(tmp_path / "out" / "arrow" / "i2t"))
    assert disk["test"][0]["images"][0].size == (16, 12)
    # the card's configs block, with a default config
    card = (tmp_path / "out" / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert [c["config_name"] for c in meta["configs"]] == ["t2i", "i2t", "verify_t2i"]
    assert meta["configs"][0]["default"] is True
    assert len(datasets.load_dataset(str(tmp_path / "out"), split="train")) == 12  # default: t2i


def test_save_is_atomic(movable, tmp_path):
    out, images = movable
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    os.remove(images / "img3.jpg")  # parquet embedding of i2t fails on it
    with pytest.raises(FileNotFoundError):
        save_sid_dataset(out, tmp_path / "out")
    assert sorted(os.listdir(tmp_path / "out")) == ["keep.txt"]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".out.tmp")]


def test_push_mocked_and_reload(movable, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_TOKEN", "hf_dummy")
    out, _ = movable
    save_sid_dataset(out, tmp_path / "out")
    with local_hub(tmp_path / "hub") as commits:
        push_sid_dataset_to_hub(tmp_path / "out", "user/semcore-data", private=True)
        push_sid_dataset_to_hub({"t2i": out["t2i"]}, "user/semcore-t2i")
    repo = tmp_path / "hub" / "datasets" / "user" / "semcore-data"
    pushed = commits[0][2]
    assert "README.md" in pushed and any(p.startswith("i2t/test-") and p.endswith(".parquet") for p in pushed)
    assert not [p for p in pushed if p.startswith("arrow")]  # the save_to_disk copy stays local
    for task in out:
        loaded = datasets.load_dataset(str(repo), name=task)
        assert {s: _rows(ds) for s, ds in loaded.items()} == {s: _rows(ds) for s, ds in out[task].items()}
    only = datasets.load_dataset(str(tmp_path / "hub" / "datasets" / "user" / "semcore-t2i"), name="t2i")
    assert _rows(only["test"]) == _rows(out["t2i"]["test"])


def test_push_and_save_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="not a save_sid_dataset folder"):
        push_sid_dataset_to_hub(tmp_path, "user/x")
    with pytest.raises(ValueError, match="empty"):
        save_sid_dataset({}, tmp_path / "o")
    with pytest.raises(TypeError, match="DatasetDict"):
        save_sid_dataset({"t2i": datasets.Dataset.from_dict({"a": [1]})}, tmp_path / "o")


def test_rebuilt_folder_never_loads_stale_cached_rows(movable, tmp_path):
    # `datasets` caches a local folder by its name + the card's `configs:` block, not by the data: two builds with
    # the same layout under folders of the same name must still load their own rows (content-hashed file names).
    out, _ = movable
    cache = tmp_path / "hf_cache"
    small = {"t2i": datasets.DatasetDict({s: ds.select(range(1)) for s, ds in out["t2i"].items()})}
    save_sid_dataset(out, tmp_path / "a" / "data", save_arrow=False)
    save_sid_dataset(small, tmp_path / "b" / "data", save_arrow=False)
    for folder, expected in ((tmp_path / "a" / "data", out), (tmp_path / "b" / "data", small)):
        loaded = datasets.load_dataset(str(folder), name="t2i", cache_dir=str(cache))
        assert {s: len(d) for s, d in loaded.items()} == {s: len(d) for s, d in expected["t2i"].items()}
    # rebuilding in place: the old Parquet files go, the new rows load
    save_sid_dataset(small, tmp_path / "a" / "data", save_arrow=False)
    assert len(list((tmp_path / "a" / "data").glob("*/*.parquet"))) == len(small["t2i"])
    loaded = datasets.load_dataset(str(tmp_path / "a" / "data"), name="t2i", cache_dir=str(cache))
    assert {s: len(d) for s, d in loaded.items()} == {s: len(d) for s, d in small["t2i"].items()}
