"""`semcore-hf build-sids` on the tiny Karpathy corpus."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from semcore_hf.cli.main import main
from semcore_hf.identifiers import SIDIndex

TASKS = ("t2i", "i2t", "memorize_t2i", "memorize_i2t", "verify_t2i", "verify_i2t")
SPLITS = ("train", "validation", "test")


def test_writes_indexes_dataset_and_report(built_both):
    assert {p.name for p in built_both.iterdir()} >= {"t2i_index", "i2t_index", "dataset", "build_report.json"}
    data = built_both / "dataset"
    assert (data / "README.md").is_file()
    for task in TASKS:
        for split in SPLITS:
            assert len(list((data / task).glob(f"{split}-*.parquet"))) == 1, (task, split)


def test_indexes_reload_with_the_cli_config(built_both, tiny_st_dir):
    t2i = SIDIndex.from_pretrained(str(built_both / "t2i_index"))
    i2t = SIDIndex.from_pretrained(str(built_both / "i2t_index"))
    assert t2i.target_ids == [f"img{i}" for i in range(8)]
    assert len(i2t) == 24 and i2t.target_ids[:3] == ["img0#0", "img0#1", "img0#2"]
    for name, index in (("t2i_index", t2i), ("i2t_index", i2t)):
        cfg = json.loads((built_both / name / "sid_index_config.json").read_text())
        assert cfg["num_clusters"] == 2 and cfg["global_words"] == 1 and cfg["lexical_phrases"] == 2
        assert cfg["resolve_collisions"] is True and cfg["seed"] == 3 and cfg["kmeans_n_init"] == 1
        assert cfg["embedding_model"] == tiny_st_dir
        assert index.config.num_clusters == 2 and index.config.resolve_collisions is True
        assert len(index.global_ids) == 2
        assert all(len(g.split()) == 1 for g in index.global_ids)  # --global-words 1
        for sid in index.sids:
            g, phrases = SIDIndex.split_sid(sid)
            assert g in index.global_ids and phrases


def test_build_report(built_both, tiny_st_dir):
    report = json.loads((built_both / "build_report.json").read_text())
    assert report["num_images"] == 8
    assert report["config"]["num_clusters"] == 2 and report["config"]["embedding_model"] == tiny_st_dir
    for direction, n in (("t2i", 8), ("i2t", 24)):
        rep = report[f"{direction}_collisions"]
        index = SIDIndex.from_pretrained(str(built_both / f"{direction}_index"))
        assert rep == json.loads(json.dumps(index.collision_report()))
        assert 0.0 <= rep["fraction_in_groups"] <= 1.0 and rep["largest_group"] >= 1
        assert rep["num_groups"] == len(index.collision_groups())
        assert index.num_sids <= n
    assert set(report["rows"]) == set(TASKS)
    # the report's row counts are what the Parquet files hold
    for task, splits in report["rows"].items():
        assert set(splits) == set(SPLITS)
        for split, n in splits.items():
            (path,) = (built_both / "dataset" / task).glob(f"{split}-*.parquet")
            assert pq.read_metadata(path).num_rows == n
    assert report["rows"]["t2i"] == {"train": 12, "validation": 6, "test": 6}
    assert report["rows"]["memorize_t2i"] == {"train": 4, "validation": 2, "test": 2}
    assert report["rows"]["i2t"] == {"train": 12, "validation": 6, "test": 6}
    assert set(report["timings_s"]) >= {"load", "t2i_index", "i2t_index", "dataset"}


def test_dataset_loads_by_task_with_images(built_both):
    import datasets

    i2t = datasets.load_dataset(str(built_both / "dataset"), name="i2t", split="test")
    assert len(i2t) == 6 and "images" in i2t.column_names
    assert i2t[0]["completion"][0]["content"].startswith("<sid>")


def test_text_only_t2i_subset(karpathy_corpus, tiny_st_dir, tmp_path, capsys):
    src, gen = karpathy_corpus
    out = tmp_path / "sids"
    argv = ["build-sids", "--source", str(src), "--output-dir", str(out), "--generated-captions", str(gen)]
    argv += ["--embedding-model", tiny_st_dir, "--num-clusters", "2", "--text-only", "--tasks", "t2i"]
    assert main(argv) == 0
    assert "[t2i] 8 targets" in capsys.readouterr().out
    assert not (out / "i2t_index").exists()
    assert sorted(p.name for p in (out / "dataset").iterdir() if p.is_dir() and p.name != "arrow") == ["t2i"]
    cfg = json.loads((out / "t2i_index" / "sid_index_config.json").read_text())
    assert cfg["resolve_collisions"] is False and cfg["global_words"] == 2  # SIDConfig defaults where not set


def test_missing_source_is_a_clear_error(tmp_path, tiny_st_dir, capsys):
    missing = tmp_path / "nope" / "dataset_flickr30k.json"
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:  # a usage error, found while parsing
        main(["build-sids", "--source", str(missing), "--output-dir", str(out), "--embedding-model", tiny_st_dir])
    assert e.value.code == 2 and f"--source: no such file or folder: {missing}" in capsys.readouterr().err
    assert not out.exists()


def test_missing_generated_captions_is_a_clear_error(karpathy_corpus, tmp_path, tiny_st_dir):
    src, _ = karpathy_corpus
    out = tmp_path / "out"
    argv = ["build-sids", "--source", str(src), "--output-dir", str(out), "--embedding-model", tiny_st_dir]
    with pytest.raises(ValueError, match="generated caption"):  # --debug: the error propagates
        main([*argv, "--num-clusters", "2", "--debug"])
    assert not out.exists()


def test_invalid_sid_config_value_is_rejected(karpathy_corpus, tmp_path, tiny_st_dir):
    src, gen = karpathy_corpus
    argv = ["build-sids", "--source", str(src), "--output-dir", str(tmp_path / "o"), "--embedding-model", tiny_st_dir]
    with pytest.raises(ValueError, match="--num-clusters must be a positive integer"):
        main([*argv, "--generated-captions", str(gen), "--num-clusters", "0", "--debug"])
    with pytest.raises(SystemExit):
        main([*argv, "--direction", "sideways"])


def test_pseudo_queries_written_by_an_lm_then_reused(karpathy_corpus, tiny_st_dir, tiny_lm_dir, tmp_path, capsys):
    src, gen = karpathy_corpus
    base = ["build-sids", "--source", str(src), "--generated-captions", str(gen), "--embedding-model", tiny_st_dir]
    base += ["--num-clusters", "2", "--text-only", "--tasks", "t2i", "pseudo_t2i"]
    out = tmp_path / "a"
    assert (
        main([*base, "--output-dir", str(out), "--pseudo-query-model", tiny_lm_dir, "--num-pseudo-queries", "2"]) == 0
    )
    written = json.loads((out / "pseudo_queries.json").read_text())
    assert len(written) == 8 and all(1 <= len(v) <= 2 for v in written.values())
    assert "pseudo_t2i:" in capsys.readouterr().out
    # the file of one run feeds the next: the same rows, no model needed
    again = tmp_path / "b"
    assert main([*base, "--output-dir", str(again), "--pseudo-queries", str(out / "pseudo_queries.json")]) == 0
    for split in SPLITS:
        a = pq.read_table(next((out / "dataset" / "pseudo_t2i").glob(f"{split}*.parquet"))).to_pylist()
        b = pq.read_table(next((again / "dataset" / "pseudo_t2i").glob(f"{split}*.parquet"))).to_pylist()
        assert a == b and len(a) > 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--tasks", "pseudo_t2i"], "--tasks pseudo_t2i needs --pseudo-queries FILE or --pseudo-query-model"),
        (["--tasks", "t2i", "--pseudo-queries", "{q}"], "--tasks pseudo_t2i, which is not requested"),
        (["--tasks", "pseudo_t2i", "--pseudo-queries", "{bad}"], "is not a list"),
    ],
)
def test_pseudo_query_flags_are_checked_first(karpathy_corpus, tiny_st_dir, tmp_path, capsys, extra, message):
    src, gen = karpathy_corpus
    (tmp_path / "q.json").write_text(json.dumps({"x": ["a"]}))
    (tmp_path / "bad.json").write_text(json.dumps({"x": "a"}))
    extra = [e.format(q=tmp_path / "q.json", bad=tmp_path / "bad.json") for e in extra]
    out = tmp_path / "out"
    argv = ["build-sids", "--source", str(src), "--output-dir", str(out), "--generated-captions", str(gen)]
    argv += ["--embedding-model", tiny_st_dir, "--num-clusters", "2", "--text-only", *extra]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not out.exists()
