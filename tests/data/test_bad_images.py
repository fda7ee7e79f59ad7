"""Bad images and bad arguments fail before any work, naming the culprit: a truncated JPEG (which PIL's `verify()`
passes), and every `build_sid_dataset` / `SIDDatasetConfig` argument, checked before the source is loaded."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset, Features, Image, List, Value
from PIL import Image as PILImage
from sid_data_helpers import FakeIndex

from semcore_hf.data import SIDDatasetConfig, build_sid_dataset, load_image_caption_source

CAPTIONS = {"im0": "a photo of a red square", "im1": "a photo of a blue circle", "im2": "a green field"}


def _jpeg_bytes(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)  # noise: many JPEG blocks
    buf = io.BytesIO()
    PILImage.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _truncated(data: bytes) -> bytes:
    cut = data[: len(data) // 2]
    with PILImage.open(io.BytesIO(cut)) as im:
        im.verify()  # the premise: PIL's verify() does not notice
    return cut


def _write_folder(root: Path, bad: str = "im1") -> Path:
    (root / "images").mkdir(parents=True)
    lines = []
    for k, (image_id, caption) in enumerate(CAPTIONS.items()):
        data = _jpeg_bytes(k)
        (root / "images" / f"{image_id}.jpg").write_bytes(_truncated(data) if image_id == bad else data)
        lines.append(json.dumps({"file_name": f"images/{image_id}.jpg", "image_id": image_id, "captions": [caption]}))
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return root


def _write_karpathy(root: Path) -> Path:
    _write_folder(root)
    images = [
        {"filename": f"{i}.jpg", "filepath": "images", "split": "train", "sentences": [{"raw": c}]}
        for i, c in CAPTIONS.items()
    ]
    (root / "dataset_tiny.json").write_text(json.dumps({"images": images}))
    return root / "dataset_tiny.json"


def _hf_dataset(root: Path, embedded: bool) -> Dataset:
    _write_folder(root)
    paths = [str(root / "images" / f"{i}.jpg") for i in CAPTIONS]
    if embedded:  # images held as bytes inside the dataset
        images = [{"bytes": Path(p).read_bytes(), "path": None} for p in paths]
        feats = Features({"image": Image(), "image_id": Value("string"), "captions": List(Value("string"))})
        return Dataset.from_dict(
            {"image": images, "image_id": list(CAPTIONS), "captions": [[c] for c in CAPTIONS.values()]},
            features=feats,
        )
    return Dataset.from_dict(
        {"image": paths, "image_id": list(CAPTIONS), "captions": [[c] for c in CAPTIONS.values()]}
    )


@pytest.mark.parametrize("kind", ["folder", "karpathy", "hf_paths", "hf_bytes"])
def test_truncated_jpeg_is_caught_when_loading(tmp_path, kind):
    if kind == "folder":
        source = _write_folder(tmp_path / "src")
    elif kind == "karpathy":
        source = _write_karpathy(tmp_path / "src")
    else:
        source = _hf_dataset(tmp_path / "src", embedded=kind == "hf_bytes")
    with pytest.raises(ValueError, match=r"Image 'im1' cannot be read from .*truncated") as e:
        load_image_caption_source(source)
    if kind != "hf_bytes":
        assert "im1.jpg" in str(e.value)
    # the cheap check only stats the files (the decoding is then left to build_sid_dataset)
    rows = load_image_caption_source(source, check_images="exists")
    assert sorted(rows["train"]["image_id"]) == sorted(CAPTIONS)


def test_truncated_jpeg_is_caught_by_build_sid_dataset(tmp_path):
    rows = load_image_caption_source(_write_folder(tmp_path / "src"), check_images="exists")
    index = FakeIndex(list(CAPTIONS), [0, 1, 0])
    build_sid_dataset(rows, t2i_index=index, tasks=["t2i"], cache_dir=tmp_path / "c")  # text rows: no image opened
    with pytest.raises(ValueError, match=r"Image 'im1' cannot be read from .*im1\.jpg.*truncated"):
        build_sid_dataset(rows, t2i_index=index, tasks=["memorize_t2i"], cache_dir=tmp_path / "c")
    assert not [f for f in (tmp_path / "c").rglob("*.arrow") if "memorize_t2i" in str(f)]  # nothing written


def test_valid_images_of_every_mode_pass(tmp_path):
    root = tmp_path / "src"
    (root / "images").mkdir(parents=True)
    lines = []
    for mode, ext in [("RGB", "jpg"), ("L", "jpg"), ("CMYK", "jpg"), ("RGBA", "png"), ("P", "png"), ("RGB", "webp")]:
        name = f"{mode}.{ext}"
        PILImage.new(mode, (20, 10)).save(root / "images" / name)
        lines.append(json.dumps({"file_name": f"images/{name}", "image_id": name, "captions": ["an image"]}))
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    (root / "images" / "RGB.jpg").write_bytes(_truncated(_jpeg_bytes(3)))
    with pytest.raises(ValueError, match="'RGB.jpg'"):
        load_image_caption_source(root)
    (root / "images" / "RGB.jpg").write_bytes(_jpeg_bytes(3))
    assert load_image_caption_source(root)["train"].num_rows == 6


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"tasks": ["t2i", "frobnicate"], "t2i_index": "idx"}, ValueError, r"Unknown task\(s\) \['frobnicate'\]"),
        ({"tasks": "t2i", "t2i_index": "idx"}, TypeError, "list of task names"),
        ({"tasks": [], "t2i_index": "idx"}, ValueError, "tasks is empty"),
        ({"tasks": ["t2i"], "i2t_index": "idx"}, ValueError, "Task 't2i' needs `t2i_index`"),
        ({"tasks": ["verify_i2t"], "t2i_index": "idx"}, ValueError, "Task 'verify_i2t' needs `i2t_index`"),
        ({"tasks": ["i2t"], "i2t_index": "idx", "text_only": True}, ValueError, "no text_only variant"),
        ({"t2i_index": "idx", "num_negatives": 0}, ValueError, "num_negatives must be a positive integer"),
        ({"t2i_index": "idx", "num_negatives": 1.5}, ValueError, "num_negatives must be a positive integer"),
        ({"t2i_index": "idx", "seed": -1}, ValueError, "seed must be a non-negative integer"),
        ({"t2i_index": "idx", "prompt_content": "html"}, ValueError, "prompt_content must be one of"),
        ({"t2i_index": "idx", "check_images": "yes"}, ValueError, "check_images must be True or False"),
        ({}, ValueError, "nothing to build"),
    ],
)
def test_build_sid_dataset_checks_arguments_before_loading(tmp_path, kwargs, error, match):
    # The source and the index paths do not exist: an argument error must come before they are read.
    with pytest.raises(error, match=match):
        build_sid_dataset(str(tmp_path / "missing.json"), cache_dir=tmp_path / "c", **kwargs)


def test_sid_dataset_config_checks_arguments_before_loading(tmp_path):
    missing = str(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="Task 't2i' needs `t2i_index`"):
        SIDDatasetConfig(name="t2i", source=missing, i2t_index="idx")
    with pytest.raises(ValueError, match="num_negatives"):
        SIDDatasetConfig(name="verify_t2i", source=missing, t2i_index="idx", num_negatives=0)
    with pytest.raises(ValueError, match="seed"):
        SIDDatasetConfig(name="t2i", source=missing, t2i_index="idx", seed=-3)
    with pytest.raises(FileNotFoundError, match="missing.json"):  # good arguments: the source is read next
        SIDDatasetConfig(name="t2i", source=missing, t2i_index="idx")
