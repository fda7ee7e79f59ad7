"""The `semcore-hf` entry point, and the dataclass <-> argparse helpers the sub-commands share."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import pytest

from semcore_hf.cli._args import add_dataclass_arguments, dataclass_from_args
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
    count: int = field(default=3, metadata={"help": "how many"})
    ratio: float = 0.5
    flag: bool = False
    on: bool = True
    pair: tuple[int, int] = (1, 2)
    name: str | None = None
    label: str = "x"


def _parser(prefix=""):
    p = argparse.ArgumentParser()
    add_dataclass_arguments(p, Opts, prefix=prefix)
    return p


def test_unset_flags_keep_the_dataclass_defaults():
    args = _parser().parse_args([])
    assert all(v is None for v in vars(args).values())  # nothing is forced on the dataclass
    assert dataclass_from_args(Opts, args) == Opts()


def test_every_field_kind_round_trips():
    argv = ["--count", "5", "--ratio", "0.25", "--flag", "--no-on", "--pair", "3", "4", "--name", "n", "--label", "y"]
    got = dataclass_from_args(Opts, _parser().parse_args(argv))
    assert got == Opts(count=5, ratio=0.25, flag=True, on=False, pair=(3, 4), name="n", label="y")
    assert isinstance(got.pair, tuple) and isinstance(got.count, int) and isinstance(got.ratio, float)


def test_partial_flags_and_overrides():
    got = dataclass_from_args(Opts, _parser().parse_args(["--no-flag", "--pair", "7", "8"]), count=9)
    assert got == Opts(count=9, flag=False, pair=(7, 8))


def test_bad_values_are_argparse_errors(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["--count", "many"])
    with pytest.raises(SystemExit):
        _parser().parse_args(["--pair", "1"])  # a 2-tuple needs two values


def test_prefix_and_skip():
    p = argparse.ArgumentParser()
    add_dataclass_arguments(p, Opts, prefix="gsv-", skip=("label",))
    args = p.parse_args(["--gsv-count", "2", "--gsv-name", "z"])
    assert args.gsv_count == 2 and not hasattr(args, "gsv_label")
    with pytest.raises(SystemExit):
        p.parse_args(["--gsv-label", "y"])
    assert dataclass_from_args(Opts, args, prefix="gsv-") == Opts(count=2, name="z")


def test_help_shows_the_field_help_and_default():
    text = _parser().format_help()
    assert "how many (default: 3)" in text
    assert "--no-on" in text


def test_sid_config_flags_map_onto_the_config():
    from semcore_hf.identifiers import SIDConfig

    p = argparse.ArgumentParser()
    add_dataclass_arguments(p, SIDConfig)
    argv = ["--num-clusters", "2", "--global-words", "1", "--resolve-collisions", "--keyphrase-ngram-range", "1", "3"]
    argv += ["--stop-words", "english", "--no-normalize-embeddings", "--embedding-model", "some/model"]
    cfg = dataclass_from_args(SIDConfig, p.parse_args(argv))
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
    assert dataclass_from_args(SIDConfig, p.parse_args([])) == SIDConfig()
