"""Every task's rows, negatives, determinism, text-only variants, and the builder's bad inputs."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from sid_data_helpers import CAPTIONS_PER_IMAGE, CORPUS, GENERATED, SPLIT_SIZES, FakeIndex, make_karpathy, write_images

from semcore_hf.data import SIDDatasetBuilder, build_sid_dataset, load_image_caption_source, prompts
from semcore_hf.identifiers.sid_format import sid_to_completion

IMAGE_TASKS = {"i2t", "memorize_t2i", "verify_t2i", "verify_i2t"}


def _text(prompt) -> str:
    content = prompt[0]["content"]
    return content if isinstance(content, str) else "".join(p["text"] or "" for p in content)


def _has_image_part(prompt) -> bool:
    content = prompt[0]["content"]
    return not isinstance(content, str) and any(p["type"] == "image" for p in content)


def _meta(dd, split):
    """Columns of a built split without decoding images."""
    return dd[split].remove_columns([c for c in ("images",) if c in dd[split].column_names]).to_list()


def test_all_tasks_columns_and_counts(built):
    # the default: every SID task that needs nothing but the indexes (`caption` needs none, `pseudo_t2i` its queries)
    assert sorted(built) == sorted(t for t in prompts.TASKS if t not in ("caption", "pseudo_t2i"))
    for task, dd in built.items():
        assert list(dd) == ["train", "validation", "test"]
        for split, n_images in SPLIT_SIZES.items():
            n_caps = n_images * CAPTIONS_PER_IMAGE
            expected = {
                "t2i": n_caps,
                "i2t": n_caps,
                "memorize_t2i": n_images,
                "memorize_i2t": n_caps,
                "verify_t2i": 2 * n_caps,  # one positive + one negative per caption
                "verify_i2t": 2 * n_caps,
            }[task]
            assert len(dd[split]) == expected, (task, split)
        cols = dd["train"].column_names
        assert ("images" in cols) == (task in IMAGE_TASKS), task
        assert {"prompt", "completion", "target_id", "sid", "query_id"} <= set(cols)
        assert ("label" in cols) == task.startswith("verify")


def test_t2i_rows(built, source, indexes):
    t2i_index, _ = indexes
    rows = _meta(built["t2i"], "test")
    assert [r["query_id"] for r in rows[:3]] == ["img6#0", "img6#1", "img6#2"]
    for r in rows:
        image_id, j = r["query_id"].split("#")
        caption = CORPUS[image_id][1][int(j)]
        assert r["target_id"] == image_id
        assert r["sid"] == t2i_index.sid_of(image_id)
        assert r["prompt"] == prompts.t2i_prompt(caption)
        assert caption in _text(r["prompt"])
        assert r["completion"] == [{"role": "assistant", "content": sid_to_completion(r["sid"])}]


def test_i2t_rows(built, indexes):
    _, i2t_index = indexes
    ds = built["i2t"]["train"]
    rows = _meta(built["i2t"], "train")
    for r in rows:
        image_id, j = r["target_id"].split("#")
        assert r["query_id"] == image_id
        assert r["sid"] == i2t_index.sid_of(r["target_id"])
        assert r["completion"][0]["content"] == sid_to_completion(r["sid"])
        assert _text(r["prompt"]) == prompts.I2T_INSTRUCTION and _has_image_part(r["prompt"])
    images = ds[0]["images"]
    assert len(images) == 1 and images[0].size == (16, 12)


def test_memorize_rows(built, indexes):
    t2i_index, i2t_index = indexes
    mem = built["memorize_t2i"]
    # every target image, test images included
    assert sorted(i for s in mem for i in mem[s]["target_id"]) == sorted(CORPUS)
    r = mem["test"][0]
    assert r["target_id"] == "img6" and r["sid"] == t2i_index.sid_of("img6")
    assert _text(r["prompt"]) == prompts.MEMORIZE_IMAGE_INSTRUCTION and len(r["images"]) == 1
    rows = _meta(built["memorize_i2t"], "validation")
    assert rows[1]["target_id"] == "img4#1" and rows[1]["sid"] == i2t_index.sid_of("img4#1")
    assert CORPUS["img4"][1][1] in _text(rows[1]["prompt"])


def _check_negatives(rows, index, own_targets):
    cluster = dict(zip(index.target_ids, np.asarray(index.target_cluster).tolist()))
    n_same = 0
    for r in rows:
        assert r["completion"][0]["content"] == (prompts.YES if r["label"] else prompts.NO)
    i = 0
    while i < len(rows):
        pos, neg = rows[i], rows[i + 1]
        assert pos["label"] == 1 and neg["label"] == 0
        assert neg["target_id"] not in own_targets(pos)  # never the positive
        n_same += cluster[neg["target_id"]] == cluster[pos["target_id"]]
        i += 2
    return n_same


def test_verify_t2i_negatives_same_cluster(built, indexes):
    t2i_index, _ = indexes
    cluster = dict(zip(t2i_index.target_ids, t2i_index.target_cluster.tolist()))
    rows = _meta(built["verify_t2i"], "train")
    train_ids = ["img0", "img1", "img2", "img3"]
    _check_negatives(rows, t2i_index, lambda pos: {pos["target_id"]})
    for pos, neg in zip(rows[::2], rows[1::2]):
        assert pos["query_id"] == neg["query_id"] and pos["query_id"].split("#")[0] == pos["target_id"]
        assert neg["sid"] == t2i_index.sid_of(neg["target_id"])
        same = [t for t in train_ids if cluster[t] == cluster[pos["target_id"]] and t != pos["target_id"]]
        if same:  # same cluster whenever the cluster (in this split) has another member
            assert neg["target_id"] in same
        caption = CORPUS[pos["target_id"]][1][int(pos["query_id"].split("#")[1])]
        assert caption in _text(pos["prompt"]) and caption in _text(neg["prompt"])


def test_verify_i2t_negatives_never_own_captions(built, indexes):
    _, i2t_index = indexes
    rows = _meta(built["verify_i2t"], "train")
    _check_negatives(rows, i2t_index, lambda pos: {f"{pos['query_id']}#{j}" for j in range(CAPTIONS_PER_IMAGE)})
    cluster = dict(zip(i2t_index.target_ids, i2t_index.target_cluster.tolist()))
    train_caps = [f"img{i}#{j}" for i in range(4) for j in range(3)]
    for pos, neg in zip(rows[::2], rows[1::2]):
        own = {f"{pos['query_id']}#{j}" for j in range(3)}
        same = [c for c in train_caps if cluster[c] == cluster[pos["target_id"]] and c not in own]
        if same:
            assert neg["target_id"] in same
        image_id, j = neg["target_id"].split("#")
        assert CORPUS[image_id][1][int(j)] in _text(neg["prompt"])  # the candidate caption is in the prompt


def test_negatives_with_fake_clusters_and_fallback(source, tmp_path):
    ids = list(CORPUS)
    # train images img0..img3: cluster 0 = {img0, img1, img2}, cluster 1 = {img3} (single member -> fallback)
    clusters = [0, 0, 0, 1, 0, 1, 0, 1]
    out = build_sid_dataset(
        source, t2i_index=FakeIndex(ids, clusters), tasks=["verify_t2i"], num_negatives=2, cache_dir=tmp_path
    )
    rows = _meta(out["verify_t2i"], "train")
    assert len(rows) == 4 * 3 * 3
    for k in range(0, len(rows), 3):
        pos, negs = rows[k], rows[k + 1 : k + 3]
        targets = [n["target_id"] for n in negs]
        assert pos["target_id"] not in targets and len(set(targets)) == 2
        if pos["target_id"] in ("img0", "img1", "img2"):
            assert set(targets) == {"img0", "img1", "img2"} - {pos["target_id"]}
        else:  # img3 is alone in its cluster: negatives from the other clusters
            assert set(targets) <= {"img0", "img1", "img2"}


def test_deterministic_given_seed(source, indexes, tmp_path):
    t2i_index, i2t_index = indexes

    def run(seed, cache):
        out = build_sid_dataset(
            source,
            t2i_index=FakeIndex(list(CORPUS), [0] * 8),
            i2t_index=i2t_index,
            tasks=["verify_t2i", "verify_i2t"],
            num_negatives=2,
            seed=seed,
            cache_dir=tmp_path / cache,
        )
        return {t: [r["target_id"] for r in _meta(dd, "train")] for t, dd in out.items()}

    a, b, c = run(0, "a"), run(0, "b"), run(1, "c")
    assert a == b
    assert a != c


def test_text_only_variants(source, indexes, tmp_path):
    t2i_index, i2t_index = indexes
    out = build_sid_dataset(source, t2i_index=t2i_index, i2t_index=i2t_index, text_only=True, cache_dir=tmp_path)
    assert list(out) == ["t2i", "memorize_t2i", "verify_t2i", "memorize_i2t"]
    for dd in out.values():
        assert "images" not in dd["train"].column_names
        r = dd["train"][0]
        assert isinstance(r["prompt"][0]["content"], str)  # plain strings for text-only chat templates
    r = out["memorize_t2i"]["test"][1]
    assert r["target_id"] == "img7" and GENERATED["img7"] in r["prompt"][0]["content"]
    rows = out["verify_t2i"]["train"].to_list()
    neg = rows[1]
    assert neg["prompt"][0]["content"] == prompts.VERIFY_T2I_TEXT_INSTRUCTION.format(
        candidate=GENERATED[neg["target_id"]], query=CORPUS["img0"][1][0]
    )
    vi = build_sid_dataset(source, i2t_index=i2t_index, tasks=["verify_i2t"], text_only=True, cache_dir=tmp_path)
    r = vi["verify_i2t"]["train"][0]
    assert GENERATED["img0"] in r["prompt"][0]["content"] and CORPUS["img0"][1][0] in r["prompt"][0]["content"]


def test_prompt_content_parts_for_text_tasks(source, indexes, tmp_path):
    out = build_sid_dataset(
        source, t2i_index=indexes[0], tasks=["t2i"], text_only=True, prompt_content="parts", cache_dir=tmp_path
    )
    assert out["t2i"]["train"][0]["prompt"] == prompts.t2i_prompt(CORPUS["img0"][1][0])


def test_builder_class_directly(source, indexes, tmp_path):
    builder = SIDDatasetBuilder(
        cache_dir=str(tmp_path), config_name="memorize_i2t", source=source, i2t_index=indexes[1]
    )
    builder.download_and_prepare()
    ds = builder.as_dataset(split="train")
    assert len(ds) == 12 and builder.info.features["sid"].dtype == "string"
    again = SIDDatasetBuilder(cache_dir=str(tmp_path), config_name="memorize_i2t", source=source, i2t_index=indexes[1])
    assert again.config_id == builder.config_id  # same inputs -> same cache entry


def test_builder_from_path_and_index_dir(karpathy_json, indexes, tmp_path):
    indexes[0].save_pretrained(tmp_path / "t2i_index")
    out = build_sid_dataset(
        karpathy_json,
        t2i_index=str(tmp_path / "t2i_index"),
        tasks=["t2i"],
        source_kwargs={"generated_captions": GENERATED},
        cache_dir=tmp_path / "cache",
    )
    assert Counter(out["t2i"]["test"]["target_id"]) == {"img6": 3, "img7": 3}


# ------------------------------------------------------------------------------------------------------ bad input


def test_bad_builder_inputs(source, indexes, tmp_path):
    t2i_index, i2t_index = indexes
    with pytest.raises(ValueError, match="needs `i2t_index`"):
        build_sid_dataset(source, t2i_index=t2i_index, tasks=["i2t"], cache_dir=tmp_path)
    with pytest.raises(ValueError, match="Unknown task"):
        build_sid_dataset(source, t2i_index=t2i_index, tasks=["t2x"], cache_dir=tmp_path)
    with pytest.raises(ValueError, match="no text_only variant"):
        build_sid_dataset(source, i2t_index=i2t_index, tasks=["i2t"], text_only=True, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="nothing to build"):
        build_sid_dataset(source, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="num_negatives"):
        build_sid_dataset(source, t2i_index=t2i_index, tasks=["verify_t2i"], num_negatives=0, cache_dir=tmp_path)
    with pytest.raises(TypeError, match="lacks"):
        build_sid_dataset(source, t2i_index=object(), cache_dir=tmp_path)
    train_only = FakeIndex(["img0", "img1", "img2", "img3"], [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"Target 'img4' \(split 'validation'\) is not in the t2i_index.*index.add"):
        build_sid_dataset(source, t2i_index=train_only, tasks=["t2i"], cache_dir=tmp_path)
    no_gen = load_image_caption_source(source["train"].remove_columns([]).map(lambda r: {"generated_caption": None}))
    with pytest.raises(ValueError, match="has no generated caption"):
        build_sid_dataset(no_gen, t2i_index=t2i_index, tasks=["memorize_t2i"], text_only=True, cache_dir=tmp_path)


def test_unreadable_image_named_before_writing(tmp_path, indexes):
    path = make_karpathy(tmp_path / "src")
    (tmp_path / "src" / "images" / "img1.jpg").write_bytes(b"not a jpeg at all")
    dd = load_image_caption_source(path, generated_captions=GENERATED, check_images="exists")  # lazy check
    # text tasks never open images
    build_sid_dataset(dd, t2i_index=indexes[0], tasks=["t2i"], cache_dir=tmp_path / "c")
    with pytest.raises(ValueError, match=r"Image 'img1' cannot be read from .*img1\.jpg"):
        build_sid_dataset(dd, t2i_index=indexes[0], tasks=["memorize_t2i"], cache_dir=tmp_path / "c")
    write_images(tmp_path / "src" / "images", ["img1.jpg"])  # repaired
    (tmp_path / "src" / "images" / "img2.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"img2\.jpg"):
        build_sid_dataset(dd, i2t_index=indexes[1], tasks=["i2t"], cache_dir=tmp_path / "c", check_images=True)


def test_caption_task_needs_no_index_and_teaches_the_human_captions(source, tmp_path):
    built = build_sid_dataset(source, tasks=["caption"], cache_dir=tmp_path / "c")["caption"]
    for split, n_images in SPLIT_SIZES.items():
        assert len(built[split]) == n_images * CAPTIONS_PER_IMAGE
    rows = _meta(built, "train")
    assert all(_text([{"content": r["prompt"][0]["content"]}]) == prompts.CAPTION_INSTRUCTION for r in rows)
    for r in rows:
        image_id, j = r["query_id"], int(r["target_id"].split("#")[1])
        assert r["completion"][0]["content"] == CORPUS[image_id][1][j]
    assert all(len(x) == 1 for x in built["train"]["images"])
    with pytest.raises(ValueError, match="no text_only variant"):
        build_sid_dataset(source, tasks=["caption"], text_only=True)
