"""`semcore-hf retrieve` and `semcore-hf evaluate` on SID-ready (untrained) tiny models: constrained search only
ever yields valid targets, so the outputs' structure is exact even though the rankings are random."""

from __future__ import annotations

import json

import pytest

from semcore_hf.cli.main import main
from semcore_hf.identifiers import SIDIndex


def _json_out(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_retrieve_text_queries_json(sid_lm_dir, built_both, capsys):
    index = SIDIndex.from_pretrained(str(built_both / "t2i_index"))
    queries = ["a dog on the grass", "boats on a lake"]
    argv = ["retrieve", "--model", sid_lm_dir, "--index", str(built_both / "t2i_index"), "-k", "3"]
    argv += ["--device", "cpu", "--json"]
    for q in queries:
        argv += ["--query", q]
    got = _json_out(capsys, argv)
    assert [g["query"] for g in got] == queries
    for g in got:
        assert len(g["results"]) == 3
        ids = [r["target_id"] for r in g["results"]]
        assert len(set(ids)) == 3 and set(ids) <= set(index.target_ids)
        assert all(r["sid"] == index.sid_of(r["target_id"]) for r in g["results"])
        assert all(r["gsv_score"] is None for r in g["results"])


def test_retrieve_queries_file_table(sid_lm_dir, built_both, tmp_path, capsys):
    qf = tmp_path / "queries.txt"
    qf.write_text("a dog on the grass\n\n  a cat on a sofa  \n")
    argv = ["retrieve", "--model", sid_lm_dir, "--index", str(built_both / "t2i_index"), "-k", "2"]
    capsys.readouterr()
    assert main([*argv, "--device", "cpu", "--queries-file", str(qf)]) == 0
    out = capsys.readouterr().out
    assert "a dog on the grass" in out and "a cat on a sofa" in out
    assert out.count("  1. ") == 2 and out.count("  2. ") == 2 and "  3. " not in out


def test_retrieve_image_queries_with_the_vlm(sid_llava_dir, built_both, karpathy_corpus, capsys):
    src, _ = karpathy_corpus
    index = SIDIndex.from_pretrained(str(built_both / "i2t_index"))
    images = [str(src.parent / "images" / "img0.jpg"), str(src.parent / "images" / "img5.jpg")]
    argv = ["retrieve", "--model", sid_llava_dir, "--index", str(built_both / "i2t_index"), "-k", "4"]
    argv += ["--device", "cpu", "--json", "--image", images[0], "--image", images[1]]
    got = _json_out(capsys, argv)
    assert [g["query"] for g in got] == images
    for g in got:
        ids = [r["target_id"] for r in g["results"]]
        assert len(ids) == 4 and len(set(ids)) == 4 and set(ids) <= set(index.target_ids)


def test_retrieve_bad_inputs(sid_lm_dir, built_both, tmp_path):
    base = ["retrieve", "--model", sid_lm_dir, "--index", str(built_both / "t2i_index"), "--device", "cpu"]
    with pytest.raises(SystemExit):  # --query and --image are mutually exclusive
        main([*base, "--query", "q", "--image", "x.jpg"])
    with pytest.raises(ValueError, match="larger than the number of targets"):  # --debug: the error propagates
        main([*base, "--debug", "--query", "q", "-k", "9"])
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="Cannot read"):
        main([*base, "--debug", "--image", str(bad)])


@pytest.fixture(scope="module")
def t2i_eval(sid_lm_dir, built_both, karpathy_corpus, tmp_path_factory):
    src, _ = karpathy_corpus
    out = tmp_path_factory.mktemp("eval_t2i")
    argv = ["evaluate", "--model", sid_lm_dir, "--index", str(built_both / "t2i_index"), "--source", str(src)]
    argv += ["--direction", "t2i", "--split", "test", "-k", "1", "2", "--device", "cpu", "--output-dir", str(out)]
    assert main(argv) == 0
    return out


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_evaluate_writes_metrics_predictions_and_plot(t2i_eval):
    m = json.loads((t2i_eval / "metrics.json").read_text())
    assert m["direction"] == "t2i" and m["split"] == "test"
    assert m["num_queries"] == 6 and m["gallery"] == 2  # 2 test images x 3 captions
    metrics = m["metrics"]
    assert metrics["num_queries"] == 6
    for key in ("recall@1", "recall@2", "mrr"):
        assert 0.0 <= metrics[key] <= 1.0
    # the gallery has 2 images and k=2: every query finds its image within 2
    assert metrics["recall@2"] == 1.0 and metrics["recall@1"] <= metrics["recall@2"]
    assert m["seconds_per_query"] > 0
    preds = _lines(t2i_eval / "predictions.jsonl")
    assert len(preds) == 6
    assert [p["query_id"] for p in preds] == [f"img{i}#{j}" for i in (6, 7) for j in range(3)]
    for p in preds:
        assert sorted(p["ranked"]) == ["img6", "img7"]  # only the split's gallery is ranked
        assert p["relevant"] == [p["query_id"].split("#")[0]]
    hits = [p["ranked"][0] in p["relevant"] for p in preds]
    assert metrics["recall@1"] == pytest.approx(sum(hits) / 6)
    assert (t2i_eval / "recall.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_max_queries_and_full_index(sid_lm_dir, built_both, karpathy_corpus, tmp_path):
    src, _ = karpathy_corpus
    argv = ["evaluate", "--model", sid_lm_dir, "--index", str(built_both / "t2i_index"), "--source", str(src)]
    argv += ["-k", "1", "3", "--device", "cpu", "--output-dir", str(tmp_path), "--max-queries", "4", "--full-index"]
    assert main(argv) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["num_queries"] == 4 and m["metrics"]["num_queries"] == 4 and m["gallery"] == 2
    preds = _lines(tmp_path / "predictions.jsonl")
    assert len(preds) == 4
    index = SIDIndex.from_pretrained(str(built_both / "t2i_index"))
    assert all(len(p["ranked"]) == 3 and set(p["ranked"]) <= set(index.target_ids) for p in preds)


def test_evaluate_i2t_with_the_vlm(sid_llava_dir, built_both, karpathy_corpus, tmp_path):
    src, _ = karpathy_corpus
    argv = ["evaluate", "--model", sid_llava_dir, "--index", str(built_both / "i2t_index"), "--source", str(src)]
    argv += ["--direction", "i2t", "-k", "1", "3", "--device", "cpu", "--output-dir", str(tmp_path)]
    assert main(argv) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["direction"] == "i2t" and m["num_queries"] == 2 and m["gallery"] == 6
    preds = _lines(tmp_path / "predictions.jsonl")
    assert [p["query_id"] for p in preds] == ["img6", "img7"]
    for p in preds:
        assert len(p["ranked"]) == 3 and all(t.split("#")[0] in ("img6", "img7") for t in p["ranked"])
        assert p["relevant"] == [f"{p['query_id']}#{j}" for j in range(3)]


def test_evaluate_default_k_on_a_small_gallery(sid_lm_dir, built_both, karpathy_corpus, tmp_path):
    src, _ = karpathy_corpus
    argv = ["evaluate", "--model", sid_lm_dir, "--index", str(built_both / "t2i_index"), "--source", str(src)]
    assert main([*argv, "--device", "cpu", "--output-dir", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert metrics["recall@10"] == metrics["recall@5"] == 1.0  # both images of the gallery are always retrieved


@pytest.mark.parametrize("beams", [None, "1"])
def test_retrieve_k1_text_and_image_queries(sid_lm_dir, sid_llava_dir, built_both, karpathy_corpus, capsys, beams):
    src, _ = karpathy_corpus
    extra = ["-k", "1", "--device", "cpu", "--json", "--max-num-beams", "64"] + (
        ["--num-beams", beams] if beams else []
    )
    text = _json_out(capsys, ["retrieve", "--model", sid_lm_dir, "--index", str(built_both / "t2i_index"), *extra,
                              "--query", "a dog on the grass", "--query", "boats"])  # fmt: skip
    image = str(src.parent / "images" / "img0.jpg")
    i2t = _json_out(capsys, ["retrieve", "--model", sid_llava_dir, "--index", str(built_both / "i2t_index"), *extra,
                             "--image", image])  # fmt: skip
    for g in text + i2t:
        assert len(g["results"]) == 1 and g["results"][0]["exact"]


@pytest.mark.parametrize("direction", ["t2i", "i2t"])
def test_evaluate_k1_beam1(sid_lm_dir, sid_llava_dir, built_both, karpathy_corpus, tmp_path, direction):
    src, _ = karpathy_corpus
    model = sid_lm_dir if direction == "t2i" else sid_llava_dir
    argv = ["evaluate", "--model", model, "--index", str(built_both / f"{direction}_index"), "--source", str(src)]
    argv += ["--direction", direction, "-k", "1", "--num-beams", "1", "--max-num-beams", "64", "--device", "cpu"]
    assert main([*argv, "--output-dir", str(tmp_path)]) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert {"recall@1", "mrr", "expected_recall@1", "optimistic_recall@1"} <= set(m["metrics"])
    assert not any(key.startswith("recall@") and key != "recall@1" for key in m["metrics"])
    assert m["exact_fraction"] == m["exact_at_1_fraction"] == 1.0
    assert all(len(p["ranked"]) == 1 for p in _lines(tmp_path / "predictions.jsonl"))


def test_retrieve_with_bf16_autocast_tracks_fp32(sid_lm_dir, built_both, capsys):
    argv = ["retrieve", "--model", sid_lm_dir, "--index", str(built_both / "t2i_index"), "-k", "1"]
    argv += ["--device", "cpu", "--json", "--query", "a dog on the grass", "--max-num-beams", "64"]
    (fp32,) = _json_out(capsys, argv)
    (bf16,) = _json_out(capsys, [*argv, "--autocast", "bf16"])
    assert bf16["results"][0]["score"] == pytest.approx(fp32["results"][0]["score"], abs=0.05)
