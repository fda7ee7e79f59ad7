"""Source loading and normalisation: Karpathy JSON, image folders, HF datasets; targets; every bad input."""

from __future__ import annotations

import json
import warnings

import pytest
from datasets import Dataset, DatasetDict, Image, Value
from sid_data_helpers import CAPTIONS_PER_IMAGE, CORPUS, GENERATED, SPLIT_SIZES, make_karpathy, write_images

from semcore_hf.data import i2t_targets, load_image_caption_source, t2i_targets
from semcore_hf.data.sources import SOURCE_FEATURES


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


# ------------------------------------------------------------------------------------------------------ Karpathy


def test_karpathy_splits_and_rows(source):
    assert list(source) == ["train", "validation", "test"]
    assert {s: len(ds) for s, ds in source.items()} == SPLIT_SIZES
    for split, ds in source.items():
        assert ds.features == SOURCE_FEATURES
        assert set(ds["split"]) == {split}
    row = source["train"][0]
    assert row["image_id"] == "img0"
    assert row["captions"] == CORPUS["img0"][1]  # stripped ("raw" has a trailing space)
    assert row["generated_caption"] == GENERATED["img0"]
    assert row["image"].size == (16, 12)
    assert source["validation"]["image_id"][:] == ["img4", "img5"]


def test_karpathy_restval_kept_and_imgid(karpathy_json):
    dd = load_image_caption_source(karpathy_json, restval_to_train=False, image_id_column="imgid", check_images=False)
    assert {s: len(ds) for s, ds in dd.items()} == {"train": 2, "validation": 2, "test": 2, "restval": 2}
    assert dd["train"]["image_id"][:] == ["0", "1"]
    assert dd["train"][0]["generated_caption"] is None


def test_karpathy_image_root(tmp_path):
    path = make_karpathy(tmp_path / "a")
    data = json.loads(path.read_text())
    for img in data["images"]:
        del img["filepath"]
    other = tmp_path / "meta.json"
    other.write_text(json.dumps(data))
    dd = load_image_caption_source(other, image_root=tmp_path / "a" / "images")
    assert len(dd["train"]) == 4
    with pytest.raises(FileNotFoundError, match="img0.jpg"):
        load_image_caption_source(other)  # images are not next to the JSON


# ------------------------------------------------------------------------------------------------------ folders


def test_image_folder_root_metadata(tmp_path):
    write_images(tmp_path, ["a.png", "b.png", "c.png"])
    _jsonl(
        tmp_path / "metadata.jsonl",
        [
            {"file_name": "a.png", "caption": "a red square", "generated_caption": "red"},
            {"file_name": "b.png", "captions": ["blue one", "blue two"]},
            {"file_name": "c.png", "caption": "green", "split": "val"},
        ],
    )
    with pytest.raises(
        ValueError, match="caption"
    ):  # mixed keys need an explicit column list... or autodetect per line
        load_image_caption_source(tmp_path, caption_column="captions")
    dd = load_image_caption_source(tmp_path)
    assert {s: len(ds) for s, ds in dd.items()} == {"train": 2, "validation": 1}
    assert dd["train"]["image_id"][:] == ["a", "b"]
    assert dd["train"]["captions"][:] == [["a red square"], ["blue one", "blue two"]]
    assert dd["train"]["generated_caption"][:] == ["red", None]


def test_image_folder_split_subfolders(tmp_path):
    for split in ("train", "test"):
        write_images(tmp_path / split, [f"{split}_0.jpg", f"{split}_1.jpg"])
        _jsonl(
            tmp_path / split / "captions.jsonl",
            [{"file_name": f"{split}_{k}.jpg", "text": [f"{split} caption {k}"]} for k in range(2)],
        )
    dd = load_image_caption_source(tmp_path)
    assert list(dd) == ["train", "test"]
    assert dd["test"]["image_id"][:] == ["test_0", "test_1"]
    assert dd["test"][1]["captions"] == ["test caption 1"]


# ------------------------------------------------------------------------------------------------------ HF datasets


def test_hf_dataset_image_feature_and_caption_list(tmp_path):
    write_images(tmp_path, ["0.jpg", "1.jpg"])
    ds = Dataset.from_dict(
        {"img": [str(tmp_path / "0.jpg"), str(tmp_path / "1.jpg")], "sentences": [["x one", "x two"], ["y"]]}
    ).cast_column("img", Image())
    dd = load_image_caption_source(ds, image_column="img", split="test")
    assert list(dd) == ["test"]
    assert dd["test"]["image_id"][:] == ["test-0", "test-1"]  # no id column: split-row ids
    assert dd["test"]["captions"][:] == [["x one", "x two"], ["y"]]
    assert dd["test"][0]["image"].size == (16, 12)


def test_hf_dataset_in_memory_images_several_caption_columns_and_split_column():
    from PIL import Image as PILImage

    ds = Dataset.from_dict(
        {
            "image": [PILImage.new("RGB", (8, 8), (k * 50, 0, 0)) for k in range(3)],
            "cap_a": ["one", "two", "three"],
            "cap_b": ["uno", "dos", "tres"],
            "id": [10, 11, 12],
            "which": ["train", "val", "train"],
        }
    )
    dd = load_image_caption_source(ds, caption_column=["cap_a", "cap_b"], image_id_column="id", split_column="which")
    assert {s: len(x) for s, x in dd.items()} == {"train": 2, "validation": 1}
    assert dd["train"]["image_id"][:] == ["10", "12"]
    assert dd["validation"][0]["captions"] == ["two", "dos"]
    assert dd["validation"][0]["split"] == "validation"
    assert dd["train"][1]["image"].getpixel((0, 0)) == (100, 0, 0)


def test_hf_paths_with_image_root_datasetdict_and_save_to_disk(tmp_path):
    write_images(tmp_path / "imgs", ["p.jpg", "q.jpg"])
    dsd = DatasetDict(
        {
            "train": Dataset.from_dict({"image": ["p.jpg"], "caption": ["pp"], "image_id": ["p"]}),
            "val": Dataset.from_dict({"image": ["q.jpg"], "caption": ["qq"], "image_id": ["q"]}),
        }
    )
    dd = load_image_caption_source(dsd, image_root=tmp_path / "imgs", generated_captions={"q": "gen q"})
    assert list(dd) == ["train", "validation"]
    assert dd["validation"][0]["generated_caption"] == "gen q"
    dsd.save_to_disk(str(tmp_path / "disk"))
    again = load_image_caption_source(tmp_path / "disk", image_root=tmp_path / "imgs")
    assert again["train"]["image_id"][:] == ["p"]
    # already-normalised data goes through unchanged
    assert load_image_caption_source(dd)["validation"]["captions"][:] == [["qq"]]


# ------------------------------------------------------------------------------------------------------ targets


def test_targets(source):
    ids, texts = t2i_targets(source)
    assert ids == list(CORPUS) and texts == [GENERATED[i] for i in CORPUS]
    ids, texts = i2t_targets(source)
    assert len(ids) == len(CORPUS) * CAPTIONS_PER_IMAGE
    assert ids[:4] == ["img0#0", "img0#1", "img0#2", "img1#0"]
    assert texts[3] == CORPUS["img1"][1][0]
    assert i2t_targets(source, splits=["test"])[0][0] == "img6#0"


def test_t2i_first_caption_warns_unless_train_only(source):
    with pytest.warns(UserWarning, match="leak"):
        ids, texts = t2i_targets(source, text="first_caption")
    assert texts[0] == CORPUS["img0"][1][0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ids, _ = t2i_targets(source, text="first_caption", splits=("train",))
    assert ids == ["img0", "img1", "img2", "img3"]


def test_t2i_generated_missing(karpathy_json):
    dd = load_image_caption_source(karpathy_json, generated_captions={"img0": "x"})
    with pytest.raises(ValueError, match=r"7 image\(s\) have no generated caption .*img1.*caption_images"):
        t2i_targets(dd)


# ------------------------------------------------------------------------------------------------------ bad input


def test_missing_columns_name_missing_and_available(tmp_path):
    ds = Dataset.from_dict({"picture": ["x.jpg"], "caption": ["c"]})
    with pytest.raises(ValueError, match=r"\['image'\] not found; available: \['picture', 'caption'\]"):
        load_image_caption_source(ds)
    ds = Dataset.from_dict({"image": ["x.jpg"], "label": ["c"]})
    with pytest.raises(ValueError, match=r"no caption column found .*available: \['image', 'label'\]"):
        load_image_caption_source(ds)
    with pytest.raises(ValueError, match=r"\['desc'\] not found; available"):
        load_image_caption_source(ds, caption_column="desc")
    with pytest.raises(ValueError, match=r"\['uid'\] not found"):
        load_image_caption_source(ds, caption_column="label", image_id_column="uid")


def test_empty_captions_raise_or_drop(tmp_path):
    write_images(tmp_path, ["a.jpg", "b.jpg"])
    _jsonl(
        tmp_path / "metadata.jsonl",
        [{"file_name": "a.jpg", "captions": ["fine", "   "]}, {"file_name": "b.jpg", "captions": [""]}],
    )
    with pytest.raises(ValueError, match=r"Image 'a' .*empty or whitespace-only caption at index 1.*drop_empty"):
        load_image_caption_source(tmp_path)
    with pytest.warns(UserWarning, match="dropped 2 empty caption"):
        dd = load_image_caption_source(tmp_path, drop_empty=True)
    assert dd["train"]["image_id"][:] == ["a"] and dd["train"]["captions"][:] == [["fine"]]
    ds = Dataset.from_dict({"image": [str(tmp_path / "a.jpg")], "caption": [" "], "image_id": ["z"]})
    with pytest.raises(ValueError, match="Image 'z'"):
        load_image_caption_source(ds)


def test_missing_image_file_names_path(tmp_path):
    path = make_karpathy(tmp_path)
    (tmp_path / "images" / "img5.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"img5.*images/img5\.jpg"):
        load_image_caption_source(path)
    ds = Dataset.from_dict({"image": ["nope.jpg"], "caption": ["c"]})
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        load_image_caption_source(ds, image_root=tmp_path)


def test_duplicate_image_ids(tmp_path):
    write_images(tmp_path / "train", ["x.jpg"])
    write_images(tmp_path / "test", ["x.jpg"])
    for split in ("train", "test"):
        _jsonl(tmp_path / split / "metadata.jsonl", [{"file_name": "x.jpg", "caption": "c"}])
    with pytest.raises(ValueError, match=r"duplicate image id.*\['x'\].*image_id_column"):
        load_image_caption_source(tmp_path)


def test_bad_layouts(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_image_caption_source(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="metadata.jsonl or captions.jsonl"):
        load_image_caption_source(tmp_path / "empty")
    (tmp_path / "x.json").write_text(json.dumps({"annotations": []}))
    with pytest.raises(ValueError, match="not a Karpathy-style JSON.*'images'"):
        load_image_caption_source(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps({"images": [{"filename": "a.jpg", "sentences": []}]}))
    with pytest.raises(ValueError, match=r"missing key\(s\) \['split'\]"):
        load_image_caption_source(tmp_path / "y.json")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "metadata.jsonl").write_text('{"file_name": "a.jpg"\n')
    with pytest.raises(ValueError, match=r"metadata.jsonl:1: invalid JSON"):
        load_image_caption_source(tmp_path / "bad")
    (tmp_path / "bad" / "metadata.jsonl").write_text('{"caption": "c"}\n')
    with pytest.raises(ValueError, match="missing key 'file_name'"):
        load_image_caption_source(tmp_path / "bad")
    ds = Dataset.from_dict({"image": [1], "caption": ["c"]}).cast_column("image", Value("int64"))
    with pytest.raises(ValueError, match="must be an Image feature or paths"):
        load_image_caption_source(ds)
