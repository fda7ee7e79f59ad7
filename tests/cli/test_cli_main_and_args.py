"""The `semcore-hf` entry point, and the one parser every sub-command but `demo` uses (HfArgumentParser + --config)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from semcore_hf.cli._args import positive_int
from semcore_hf.cli.main import COMMANDS, main


def test_no_command_prints_help_and_returns_1(capsys):
    assert main([]) == 1
    out = capsys.readouterr().out
    assert "usage: semcore-hf" in out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["frobnicate"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_sub_command_help_lists_its_own_flags(capsys):
    with pytest.raises(SystemExit) as e:
        main(["build-sids", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: semcore-hf build-sids" in out
    assert "--num-clusters" in out and "--resolve-collisions" in out and "--direction" in out


def test_missing_required_flag_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["retrieve", "--index", "x", "--query", "q"])
    assert e.value.code == 2
    assert "--model" in capsys.readouterr().err


@dataclass
class Opts:
    count: int = field(default=3, metadata={"help": "how many", "type": positive_int, "aliases": ["-c"]})
    ratio: float = 0.5
    flag: bool = False
    on: bool = True
    pair: tuple[int, int] = (1, 2)
    name: str | None = None
    label: str = field(default="x", metadata={"choices": ["x", "y"]})
    sizes: list[int] = field(default_factory=lambda: [1], metadata={"type": positive_int})
    words: str | list[str] | None = None


def _parser():
    from semcore_hf.cli._parser import CommandParser

    return CommandParser([Opts], prog="semcore-hf test", field_types={"words": lambda v: v.split(",")})


def _parse(*argv):
    (opts,), flags = _parser().parse_command(list(argv))
    return opts, flags


def test_unset_flags_keep_the_dataclass_defaults():
    opts, flags = _parse()
    assert opts == Opts() and flags.config is None and flags.debug is None


def test_every_field_kind_round_trips():
    argv = ["--count", "5", "--ratio", "0.25", "--flag", "--no-on", "--pair", "3", "4", "--name", "n", "--label", "y"]
    opts, _ = _parse(*argv, "--sizes", "2", "3", "--words", "a,b")
    assert opts == Opts(5, 0.25, True, False, (3, 4), "n", "y", [2, 3], ["a", "b"])
    assert isinstance(opts.pair, tuple) and isinstance(opts.count, int) and isinstance(opts.ratio, float)
    # both spellings of a flag, and the alias
    assert _parse("--no_on", "-c", "7")[0] == Opts(count=7, on=False)


def test_bad_values_are_one_line_errors_naming_the_flag_as_typed(capsys):
    for argv, expected in (
        (["--count", "0"], "argument --count: expected a positive integer, got '0'"),
        (["-c", "0"], "argument -c: expected a positive integer"),
        (["--sizes", "1", "0"], "argument --sizes: expected a positive integer"),
        (["--pair", "1"], "argument --pair: expected 2 arguments"),
        (["--label", "z"], "argument --label: invalid choice"),
    ):
        with pytest.raises(SystemExit) as e:
            _parse(*argv)
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2 and len(err.splitlines()) == 1 and err.startswith("semcore-hf test: error: ")
        assert expected in err, err


def test_config_yaml_sets_values_and_flags_override_it(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("count: 9\npair: [5, 6]\nlabel: y\nsizes: [4]\n")
    assert _parse("--config", str(config))[0] == Opts(count=9, pair=(5, 6), label="y", sizes=[4])
    assert _parse("--config", str(config), "--count", "2")[0].count == 2
    for text, expected in (
        ("count: 0\n", "argument --config: count in"),
        ("cuont: 3\n", "unknown keys ['cuont']"),
        ("label: z\n", "'z' is not one of ['x', 'y']"),
        ("- a list\n", "must hold a mapping"),
    ):
        config.write_text(text)
        with pytest.raises(SystemExit):
            _parse("--config", str(config))
        err = capsys.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(SystemExit):
        _parse("--config", str(tmp_path / "missing.yaml"))
    assert "argument --config: no such file" in capsys.readouterr().err


def test_a_required_flag_may_come_from_the_config(tmp_path, capsys):
    from semcore_hf.cli.retrieve import make_parser

    config = tmp_path / "retrieve.yaml"
    config.write_text(f"model: {tmp_path}\nquery: [a dog]\nk: 3\n")
    (args, _search), _ = make_parser("semcore-hf retrieve").parse_command(["--config", str(config), "-k", "2"])
    assert (args.model, args.query, args.k) == (str(tmp_path), ["a dog"], 2)


def test_sid_config_flags_map_onto_the_config():
    from semcore_hf.cli.build_sids import make_parser
    from semcore_hf.identifiers import SIDConfig

    argv = ["--source", ".", "--output_dir", "o", "--num-clusters", "2", "--global-words", "1", "--resolve-collisions"]
    argv += ["--keyphrase-ngram-range", "1", "3", "--stop-words", "english", "--no-normalize-embeddings"]
    argv += ["--embedding-model", "some/model"]
    (_, cfg), _ = make_parser("semcore-hf build-sids").parse_command(argv)
    expected = SIDConfig(
        embedding_model="some/model",
        num_clusters=2,
        global_words=1,
        resolve_collisions=True,
        keyphrase_ngram_range=(1, 3),
        stop_words="english",
        normalize_embeddings=False,
    )
    assert cfg == expected
    (_, default), _ = make_parser("semcore-hf build-sids").parse_command(["--source", ".", "--output_dir", "o"])
    assert default == SIDConfig()


def test_build_sids_task_choices_are_the_data_tasks():
    from semcore_hf.cli.build_sids import _TASKS
    from semcore_hf.data.prompts import TASKS

    assert _TASKS == TASKS


def test_every_command_but_demo_parses_with_hf_argument_parser_and_config():
    import importlib

    for name, (module_name, _) in COMMANDS.items():
        module = importlib.import_module(module_name)
        if name == "demo":
            assert hasattr(module, "add_arguments")
            continue
        parser = module.make_parser(f"semcore-hf {name}")
        assert "HfArgumentParser" in [c.__name__ for c in type(parser).__mro__], name
        assert "--config" in parser._option_string_actions, name


def test_train_help_lists_trl_and_semcore_flags(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--max_steps", "--lora_r", "--lora_modules_to_save", "--dataset_name", "--model_kind", "--sid_index"):
        assert flag in out, flag
    assert "--recall_eval_source" in out and "--config" in out


def test_env_prints_the_versions(capsys):
    from importlib import metadata

    assert main(["env", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["packages"]["transformers"] == metadata.version("transformers")
    assert report["packages"]["semcore_hf"] == metadata.version("semcore_hf")
    assert {"python", "platform", "cuda_available"} <= set(report)
    assert main(["env"]) == 0
    assert "- torch: " in capsys.readouterr().out


def test_retrieve_and_evaluate_share_the_search_flags(tmp_path):
    """One `SearchArguments` group: the same flags, help and defaults in both commands, also from a --config."""
    from semcore_hf.cli._args import SearchArguments
    from semcore_hf.cli.evaluate import make_parser as evaluate_parser
    from semcore_hf.cli.retrieve import make_parser as retrieve_parser

    configs = {"retrieve": "query: [a dog]\n", "evaluate": f"source: {tmp_path}\n"}
    for name, parser in (("retrieve", retrieve_parser), ("evaluate", evaluate_parser)):
        config = tmp_path / f"{name}.yaml"
        config.write_text(f"model: {tmp_path}\nnum_beams: 7\n" + configs[name])
        flags = ["--config", str(config), "--max-num-beams", "40", "--batch-size", "3"]
        parsed, _ = parser(f"semcore-hf {name}").parse_command(flags)
        search = next(p for p in parsed if isinstance(p, SearchArguments))
        assert (search.num_beams, search.max_num_beams, search.batch_size, search.certify) == (7, 40, 3, None)
        assert search.autocast == "none"
