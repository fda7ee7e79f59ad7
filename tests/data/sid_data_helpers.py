"""Helpers of the data tests (imported by name: test folders are not packages): a tiny corpus, fakes, a local Hub."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from semcore_hf._testing import local_hub  # noqa: F401  (re-exported for the data tests)

# image id -> (Karpathy split, ground-truth captions, generated caption)
CORPUS = {
    "img0": (
        "train",
        ["a dog runs on the grass", "a brown dog playing in a park", "dog running outside"],
        "a dog on green grass",
    ),
    "img1": (
        "train",
        ["a cat sleeps on a red sofa", "a cat lying on the couch", "red sofa with a cat"],
        "a cat on a sofa",
    ),
    "img2": (
        "restval",
        ["two children play with a ball", "kids playing ball in the park", "children in a park"],
        "children playing outdoors",
    ),
    "img3": (
        "restval",
        ["a man rides a bicycle down the street", "a cyclist on a busy street", "man on a bike"],
        "a man riding a bike",
    ),
    "img4": (
        "val",
        ["a woman holds an umbrella in the rain", "umbrella on a rainy day", "woman walking in rain"],
        "a woman with an umbrella",
    ),
    "img5": (
        "val",
        ["three boats on a calm lake", "boats floating on blue water", "a lake with boats"],
        "boats on a lake",
    ),
    "img6": (
        "test",
        ["a plate of fruit on a table", "fresh fruit on a wooden table", "a bowl of apples"],
        "fruit on a table",
    ),
    "img7": ("test", ["a dog sits on a sofa", "a puppy on the red couch", "dog resting indoors"], "a dog on a couch"),
}
SPLIT_SIZES = {"train": 4, "validation": 2, "test": 2}  # restval -> train, val -> validation
CAPTIONS_PER_IMAGE = 3
GENERATED = {image_id: gen for image_id, (_, _, gen) in CORPUS.items()}


def write_images(folder: Path, names, size=(16, 12)) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        Image.new("RGB", size, (30 * k % 256, 90, 200 - 20 * k)).save(folder / name)


def make_karpathy(root: Path) -> Path:
    """`root/dataset_tiny.json` (Karpathy layout, with `filepath`) and `root/images/imgN.jpg`."""
    write_images(root / "images", [f"{i}.jpg" for i in CORPUS])
    images = [
        {
            "filename": f"{image_id}.jpg",
            "filepath": "images",
            "imgid": n,
            "split": split,
            "sentences": [{"raw": c + " ", "tokens": c.split()} for c in caps],
        }
        for n, (image_id, (split, caps, _)) in enumerate(CORPUS.items())
    ]
    path = root / "dataset_tiny.json"
    path.write_text(json.dumps({"images": images, "dataset": "tiny"}))
    return path


class FakeIndex:
    """Duck-typed SIDIndex (contract attributes only) with chosen clusters."""

    def __init__(self, target_ids, clusters):
        self.target_ids = [str(t) for t in target_ids]
        self.target_cluster = np.asarray(clusters, dtype=np.int64)
        self.sids = [f"c{c} g | phrase {i}" for i, c in enumerate(self.target_cluster)]
        self.target_sid = np.arange(len(self.target_ids), dtype=np.int64)

    def sid_of(self, target_id):
        return self.sids[self.target_ids.index(target_id)]
