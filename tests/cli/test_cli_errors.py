"""CLI errors: one line ``semcore-hf <command>: error: <message>`` naming the flag, exit status 2 for usage errors
(found before any data, model or image is loaded) and 1 for failures while running, a traceback only with --debug."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from semcore_hf.cli.main import main

RECIPE = str(Path(__file__).resolve().parents[2] / "recipes" / "demo_t2i_smollm2_cpu.yaml")


@pytest.fixture
def paths(tmp_path):
    """Existing folders standing in for a model and an index (never loaded by a usage error), a source that fails
    to load (so an argument error must come first), and small files."""
    p = {"dir": tmp_path / "some_dir", "broken": tmp_path / "broken.json", "list": tmp_path / "list.json"}
    p["dir"].mkdir()
    p["broken"].write_text("{ not json")
    p["list"].write_text("[1, 2]")
    (tmp_path / "empty.txt").write_text("\n  \n")
    p["empty"] = tmp_path / "empty.txt"
    p["missing"] = tmp_path / "missing"
    return {k: str(v) for k, v in p.items()}


def _usage_cases(p):
    d = p["dir"]
    retrieve = ["retrieve", "--model", d, "--index", d]
    evaluate = ["evaluate", "--model", d, "--index", d, "--source", d]
    build = ["build-sids", "--source", p["broken"], "--output-dir", p["missing"], "--embedding-model", d]
    return [
        ([*retrieve, "--query", "q", "-k", "0"], "argument -k: expected a positive integer, got '0'"),
        ([*retrieve, "--query", "q", "--num-beams", "0"], "argument --num-beams: expected a positive integer"),
        ([*retrieve, "--query", "q", "--batch-size", "-2"], "argument --batch-size: expected a positive integer"),
        ([*retrieve, "--query", "q", "--gsv-weight", "-2"], "argument --gsv-weight: expected a number >= 0"),
        ([*retrieve, "--query", "q", "--gsv-weight", "nan"], "argument --gsv-weight: expected a number >= 0"),
        ([*retrieve, "--query", "  "], "argument --query: expected a non-empty value"),
        ([*retrieve, "--queries-file", p["missing"]], f"argument --queries-file: no such file: {p['missing']}"),
        ([*retrieve, "--queries-file", p["empty"]], "--queries-file"),
        ([*retrieve, "--image", p["missing"]], "argument --image: no such file"),
        ([*retrieve, "--query", "q", "--candidate-texts", p["missing"]], "argument --candidate-texts: no such file"),
        ([*retrieve, "--query", "q", "--gsv-weight", "0.5", "--candidate-texts", p["list"]], "expected a JSON object"),
        ([*retrieve, "--query", "q", "--candidate-texts", p["broken"]], "--candidate-texts"),
        (["retrieve", "--model", "./no_model", "--index", d, "--query", "q"], "argument --model: no such folder"),
        (["retrieve", "--model", d, "--index", "out/sids/t2i_index", "--query", "q"], "argument --index: no such"),
        (["retrieve", "--model", d, "--index", "my_index/", "--query", "q"], "argument --index: no such folder"),
        (["retrieve", "--model", p["list"], "--index", d, "--query", "q"], "argument --model: not a folder"),
        ([*evaluate, "--max-queries", "0"], "argument --max-queries: expected a positive integer"),
        ([*evaluate, "-k", "1", "0"], "argument -k: expected a positive integer, got '0'"),
        ([*evaluate, "--num-beams", "x"], "argument --num-beams: expected a positive integer, got 'x'"),
        (["evaluate", "--model", d, "--index", d, "--source", p["missing"]], "argument --source: no such file"),
        ([*build, "--tasks", "t2i", "frobnicate"], "argument --tasks: invalid choice: 'frobnicate'"),
        ([*build, "--num-negatives", "0"], "argument --num-negatives: expected a positive integer"),
        ([*build, "--num-clusters", "0"], "--num-clusters must be a positive integer, got 0"),
        ([*build, "--keyphrase-ngram-range", "2", "1"], "--keyphrase-ngram-range must be (min, max)"),
        ([*build, "--direction", "i2t", "--tasks", "t2i"], "--tasks t2i needs the t2i index"),
        ([*build, "--direction", "i2t", "--tasks", "i2t", "--text-only"], "--tasks i2t"),
        ([*build, "--stop-words", "french"], "argument --stop-words: expected one of semcore, english, none or a"),
        ([*build, "--generated-captions", p["missing"]], "argument --generated-captions: no such file"),
        ([*build, "--generated-captions", p["broken"]], "--generated-captions"),
        ([*build, "--caption-images-with", "./no_vlm"], "argument --caption-images-with: no such folder"),
        ([*build[:-1], "./no_embedder"], "argument --embedding-model: no such folder: ./no_embedder"),
        (["build-sids", "--source", p["missing"], "--output-dir", d], "argument --source: no such file or folder"),
        (["train", "--config", p["missing"]], f"argument --config: no such file: {p['missing']}"),
        (["train", "--config", RECIPE, "--no_such_flag", "1"], "--no_such_flag"),
        (["train", "--config", RECIPE, "--max_steps", "many"], "--max_steps"),
        (["train", "--config", RECIPE, "--model_name_or_path", "./no_model"], "--model_name_or_path: no such folder"),
        (["demo", "--num-clusters", "0"], "argument --num-clusters: expected a positive integer"),
        (["demo", "--epochs", "0"], "argument --epochs: expected a positive number"),
        (["demo", "--recipe", p["missing"]], "argument --recipe: no such file"),
        (["--log-level", "LOUD", "retrieve"], "argument --log-level: expected one of DEBUG"),
    ]


def _n_cases():
    return len(_usage_cases({k: "x" for k in ("dir", "broken", "list", "empty", "missing")}))


@pytest.mark.parametrize("case", range(_n_cases()))
def test_usage_errors_are_one_line_naming_the_flag(paths, case, capsys):
    argv, expected = _usage_cases(paths)[case]
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    command = next(a for a in argv if not a.startswith("-") and a != "LOUD")
    prefix = "semcore-hf: error: " if argv[0].startswith("--") else f"semcore-hf {command}: error: "
    assert len(lines) == 1 and lines[0].startswith(prefix), err
    assert expected in lines[0], err


def test_missing_local_model_is_named_not_a_bad_repo_id(paths, capsys):
    for value in ("./missing_model", "../missing_model", "/nonexistent/model", "~/no_such_folder_here", "a/b/c"):
        capsys.readouterr()
        with pytest.raises(SystemExit):
            main(["retrieve", "--model", value, "--index", paths["dir"], "--query", "q"])
        err = capsys.readouterr().err
        assert f"no such folder: {value} (a local path or a Hub id user/name)" in err
        assert "Repo id" not in err


def test_runtime_errors_are_one_line_with_exit_status_1(paths, tiny_st_dir, capsys):
    argv = ["build-sids", "--source", paths["broken"], "--output-dir", paths["missing"]]
    argv += ["--embedding-model", tiny_st_dir]
    capsys.readouterr()
    assert main(argv) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"semcore-hf build-sids: error: {paths['broken']!r} is not valid")
    assert lines[0].endswith("(--debug shows the traceback)")
    # an existing folder that holds no model: loading fails after parsing
    capsys.readouterr()
    assert main(["retrieve", "--model", paths["dir"], "--index", paths["dir"], "--query", "q"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("semcore-hf retrieve: error: ")


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_re_raises(paths, where):
    argv = ["build-sids", "--source", paths["broken"], "--output-dir", paths["missing"]]
    argv = ["--debug", *argv] if where == "before" else [*argv, "--debug"]
    with pytest.raises(ValueError, match="is not valid JSON"):
        main(argv)
    with pytest.raises(ValueError, match="--num-clusters must be a positive integer"):  # usage errors too
        main([*argv, "--num-clusters", "0"])


def test_errors_in_a_real_process_print_one_line_and_import_nothing_heavy(tmp_path):
    # `--help` imports nothing; a sub-command's parser is transformers' HfArgumentParser (transformers' lazy package
    # and PIL, ~1 s), but a usage error never waits for torch, datasets or scikit-learn (several seconds).
    script = (
        "import json, sys\n"
        "from semcore_hf.cli.main import main\n"
        "codes = []\n"
        "bad = ['retrieve', '--model', './missing', '--index', 'x', '--query', 'q', '-k', '3']\n"
        "heavy = {}\n"
        "for argv in ([], ['--help'], bad):\n"
        "    try:\n"
        "        codes.append(main(argv))\n"
        "    except SystemExit as e:\n"
        "        codes.append(e.code)\n"
        "    heavy[len(codes)] = [m for m in ('torch', 'transformers', 'datasets', 'sklearn', 'PIL')\n"
        "                         if m in sys.modules]\n"
        "print(json.dumps({'codes': codes, 'heavy': heavy}))\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out == {"codes": [1, 0, 2], "heavy": {"1": [], "2": [], "3": ["transformers", "PIL"]}}, res.stderr
    assert res.stderr.strip().splitlines() == [
        "semcore-hf retrieve: error: argument --model: no such folder: ./missing (a local path or a Hub id user/name)"
    ]


def test_stop_words_from_a_file(karpathy_corpus, tiny_st_dir, tmp_path):
    src, gen = karpathy_corpus
    words = tmp_path / "stop.txt"
    words.write_text("a\nthe\non\nwith\n")
    out = tmp_path / "out"
    argv = ["build-sids", "--source", str(src), "--output-dir", str(out), "--generated-captions", str(gen)]
    argv += ["--embedding-model", tiny_st_dir, "--num-clusters", "2", "--kmeans-n-init", "1", "--tasks", "t2i"]
    assert main([*argv, "--stop-words", str(words)]) == 0
    cfg = json.loads((out / "t2i_index" / "sid_index_config.json").read_text())
    assert cfg["stop_words"] == ["a", "the", "on", "with"]
