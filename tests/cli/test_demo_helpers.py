"""The demo's data helpers on a fake Tux Paint tree (the real stamps are fetched with apt only by the demo)."""

from __future__ import annotations

from PIL import Image

from semcore_hf.cli._assets import iter_tuxpaint_records
from semcore_hf.cli._experiment import relevant_by_caption as _relevant_by_caption
from semcore_hf.cli._experiment import stamp_rows as _stamp_rows
from semcore_hf.evaluation import build_query_set


def _stamp(base, rel, caption, png=True):
    path = base / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".txt").write_text(f"{caption}\nfr.utf8=traduction\n", encoding="utf-8")
    if png:
        Image.new("RGBA", (8, 8), (10, 20, 30, 128)).save(path.with_suffix(".png"))


def _tree(tmp_path):
    base = tmp_path / "stamps"
    _stamp(base, "animals/birds/duck", "A duck.")
    _stamp(base, "animals/birds/duck_2", "A duck.")  # same description: both relevant to the query
    _stamp(base, "food/fruit/apple", "An apple.")
    _stamp(base, "symbols/alphabets/english/a", "The letter a.")  # excluded by the demo
    _stamp(base, "vehicles/boat", "A boat.", png=False)  # SVG-only: skipped
    _stamp(base, "plants/flower", "")  # no description: skipped
    for i in range(12):
        _stamp(base, f"town/house{i}", f"House number {i}.")
    return base


def test_records_skip_stamps_without_png_or_description(tmp_path):
    recs = list(iter_tuxpaint_records(_tree(tmp_path)))
    ids = {r["image_id"] for r in recs}
    assert "vehicles/boat" not in ids and "plants/flower" not in ids
    duck = next(r for r in recs if r["image_id"] == "animals/birds/duck")
    assert duck["caption"] == "A duck." and duck["name"] == "animals birds duck" and duck["category"] == "animals"


def test_stamp_rows_split_by_hash_and_exclude_letters(tmp_path):
    rows = _stamp_rows(str(_tree(tmp_path)), quick=False)
    all_ids = [i for split in rows.values() for i in split["image_id"]]
    assert not any(i.startswith("symbols/alphabets") for i in all_ids)
    assert len(all_ids) == len(set(all_ids)) == 15
    assert set(rows) <= {"train", "validation", "test"} and "train" in rows
    from semcore_hf.cli._experiment import is_held_out, split_of

    for split, ds in rows.items():
        assert all(split_of(i) == split for i in ds["image_id"])
    assert all(split_of(i) == "test" for i in all_ids if is_held_out(i))  # held-out images are test images
    again = _stamp_rows(str(_tree(tmp_path)), quick=False)
    assert {s: d["image_id"] for s, d in again.items()} == {s: d["image_id"] for s, d in rows.items()}
    quick = _stamp_rows(str(_tree(tmp_path)), quick=True)
    assert all(i.split("/")[0] in ("animals", "food", "vehicles") for s in quick.values() for i in s["image_id"])


def test_identical_descriptions_are_all_relevant(tmp_path):
    from datasets import Dataset, DatasetDict

    from semcore_hf.data import load_image_caption_source

    img = tmp_path / "x.png"
    Image.new("RGB", (4, 4)).save(img)
    raw = DatasetDict(
        {
            "test": Dataset.from_list(
                [
                    {"image": str(img), "image_id": "duck", "captions": ["A duck."]},
                    {"image": str(img), "image_id": "duck_2", "captions": ["a duck."]},
                    {"image": str(img), "image_id": "apple", "captions": ["An apple."]},
                ]
            )
        }
    )
    rows = load_image_caption_source(raw, caption_column="captions", image_id_column="image_id")
    qs = _relevant_by_caption(build_query_set(rows, "t2i", "test"), rows)
    assert qs.relevant == [["duck", "duck_2"], ["duck", "duck_2"], ["apple"]]


def test_query_sets_hold_out_images_and_keep_the_splits_apart(tmp_path):
    from semcore_hf.cli._experiment import is_held_out, query_sets, stamp_rows

    base = tmp_path / "stamps"
    for i in range(120):
        _stamp(base, f"town/house{i}", f"House number {i}.")
    rows = stamp_rows(str(base), quick=False)
    held = {str(i) for i in rows["test"]["image_id"] if is_held_out(str(i))}
    val, test, growing = query_sets(rows, held)
    assert held and not held & set(test.gallery) and held <= set(growing.gallery)
    assert set(growing.gallery) == set(test.gallery) | held
    assert all(rel[0] in held for rel in growing.relevant) and not any(r[0] in held for r in test.relevant)
    assert set(val.gallery) == set(rows["validation"]["image_id"]) and not set(val.gallery) & set(test.gallery)


def test_caption_report_counts_distinct_exact_and_overlapping_captions(tmp_path):
    from semcore_hf.cli import _experiment as ex

    rows = _stamp_rows(str(_tree(tmp_path)), quick=False)
    captions = {}
    for ds in rows.values():
        for k, (i, caps) in enumerate(zip(ds["image_id"], ds["captions"])):
            # every other image: its own caption (one with other punctuation); the rest: a wrong, shared caption
            captions[str(i)] = caps[0].upper().rstrip(".") + "!" if k % 2 == 0 else "A rusty anchor."
    report = ex.caption_report(rows, captions, held_out=set())
    for split, ds in rows.items():
        n = len(ds)
        q = report[split]
        assert q["images"] == n
        assert q["exact_match"] == q["shares_a_content_word"] == sum(k % 2 == 0 for k in range(n)) / n
        own = {ds["captions"][k][0].lower() for k in range(0, n, 2)}  # distinct human captions of the even images
        assert q["distinct_generated"] == len(own) + (n > 1)  # + the one shared wrong caption
