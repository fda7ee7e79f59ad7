"""`train --prepared_model_dir` and `prepare_model_for_sids` never delete or overwrite a folder they did not write."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from semcore_hf import _io
from semcore_hf.cli.main import main
from semcore_hf.training import prepare_model_for_sids
from semcore_hf.training import sft as sft_module
from semcore_hf.training.prepare import PREPARED_FROM_FILE, is_prepared_model_dir, prepared_from

RECIPE = str(Path(__file__).resolve().parents[2] / "recipes" / "t2i_causal_lm_lora.yaml")


class _Prepared(Exception):
    """Raised in place of loading the training data: the prepare step is all these tests look at."""


def _argv(base, prepared, out, *extra):
    return [
        "train", "--config", RECIPE, "--model_name_or_path", str(base), "--prepared_model_dir", str(prepared),
        "--output_dir", str(out), "--use_cpu", "true", "--bf16", "false", "--report_to", "none",
        "--dataset_name", str(out.parent), *extra,
    ]  # fmt: skip


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def stop_after_prepare(monkeypatch):
    def stop(*args, **kwargs):
        raise _Prepared

    monkeypatch.setattr(sft_module, "_load_training_data", stop)


@pytest.fixture
def base_copy(tiny_lm_dir, tmp_path):
    """A private copy of the tiny LM (the session fixture is shared and read-only)."""
    dst = tmp_path / "base"
    shutil.copytree(tiny_lm_dir, dst)
    return dst


@pytest.mark.parametrize("which", ["the base model itself", "a folder of the user's"])
def test_train_refuses_a_prepared_model_dir_it_did_not_write(base_copy, tmp_path, stop_after_prepare, which):
    if which == "a folder of the user's":
        target = tmp_path / "mine"
        target.mkdir()
        (target / "notes.txt").write_text("mine")
        (target / "config.json").write_text("{}")
    else:
        target = base_copy
    before = _snapshot(target)
    with pytest.raises(ValueError) as err:
        main([*_argv(base_copy, target, tmp_path / "out"), "--debug"])
    msg = str(err.value)
    assert str(target) in msg and "Choose another --prepared_model_dir or remove it yourself" in msg
    assert _snapshot(target) == before  # nothing deleted, nothing written
    # without --debug: one line, exit status 1, the folder still untouched
    assert main(_argv(base_copy, target, tmp_path / "out")) == 1
    assert _snapshot(target) == before


def test_train_reprepares_its_own_folder_from_another_base_and_keeps_other_files(
    base_copy, tiny_lm_dir, tmp_path, stop_after_prepare
):
    prepared = tmp_path / "sid_ready"
    prepare_model_for_sids(tiny_lm_dir, prepared, model_kind="causal_lm")
    assert is_prepared_model_dir(prepared) and prepared_from(prepared) == tiny_lm_dir
    (prepared / "notes.txt").write_text("mine")
    with pytest.raises(_Prepared):
        main([*_argv(base_copy, prepared, tmp_path / "out"), "--debug"])
    assert prepared_from(prepared) == str(base_copy)
    assert (prepared / "notes.txt").read_text() == "mine"
    # the same base again: reused as it is
    stamp = (prepared / "model.safetensors").stat().st_ino
    with pytest.raises(_Prepared):
        main([*_argv(base_copy, prepared, tmp_path / "out"), "--debug"])
    assert (prepared / "model.safetensors").stat().st_ino == stamp


def test_train_prepares_into_an_empty_folder(base_copy, tmp_path, stop_after_prepare):
    prepared = tmp_path / "empty"
    prepared.mkdir()
    with pytest.raises(_Prepared):
        main([*_argv(base_copy, prepared, tmp_path / "out"), "--debug"])
    assert prepared_from(prepared) == str(base_copy) and _io.artefact_kinds(prepared) == {"sid_ready_model"}


def test_a_folder_prepared_before_manifests_is_recognised(base_copy, tiny_lm_dir, tmp_path):
    prepared = tmp_path / "legacy"
    prepare_model_for_sids(tiny_lm_dir, prepared, model_kind="causal_lm")
    (prepared / _io.MANIFEST_FILE).unlink()  # what an older semcore_hf left
    (prepared / "notes.txt").write_text("mine")
    assert is_prepared_model_dir(prepared)
    prepare_model_for_sids(str(base_copy), prepared, model_kind="causal_lm")
    assert prepared_from(prepared) == str(base_copy) and (prepared / "notes.txt").read_text() == "mine"
    # a user's folder that merely has a file of that name, claimed by another artefact, is not taken for one
    other = tmp_path / "claimed"
    with _io.atomic_artefact(other, "something_else") as tmp:
        (tmp / PREPARED_FROM_FILE).write_text(json.dumps({"base_model": "x"}))
    assert not is_prepared_model_dir(other) and prepared_from(other) is None


def test_preparing_into_the_base_models_own_folder_is_refused(base_copy):
    before = _snapshot(base_copy)
    with pytest.raises(_io.ArtefactConflictError, match=r"config\.json"):
        prepare_model_for_sids(str(base_copy), base_copy, model_kind="causal_lm")
    assert _snapshot(base_copy) == before
