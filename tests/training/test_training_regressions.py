"""Regressions of the training glue: mixed image/text task configs, a stale SID-ready base model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semcore_hf.cli.main import main

RECIPE = str(Path(__file__).resolve().parents[2] / "recipes" / "t2i_causal_lm_lora.yaml")


def test_mixing_image_and_text_configs_is_refused(karpathy_corpus, tiny_st_dir, tmp_path):
    from trl import ScriptArguments

    from semcore_hf.training.sft import _load_training_data

    src, gen = karpathy_corpus
    argv = ["build-sids", "--source", str(src), "--output-dir", str(tmp_path), "--generated-captions", str(gen)]
    argv += ["--embedding-model", tiny_st_dir, "--num-clusters", "2", "--direction", "both", "--tasks", "t2i", "i2t"]
    assert main(argv) == 0
    args = ScriptArguments(dataset_name=str(tmp_path / "dataset"), dataset_config="t2i,i2t")
    # TRL cannot batch rows with and without images together: refuse instead of silently dropping the images.
    with pytest.raises(ValueError, match="images"):
        _load_training_data(args, None)


def test_rerun_with_another_base_model_does_not_train_the_stale_one(tiny_lm_dir, text_sids, tmp_path):
    from semcore_hf import _testing

    other = tmp_path / "other_lm"
    _testing.build_causal_lm(_testing.build_tokenizer(None), other, hidden_size=32)
    out = tmp_path / "out"

    def run(model_dir):
        argv = ["train", "--config", RECIPE, "--model_name_or_path", str(model_dir), "--output_dir", str(out)]
        argv += ["--use_cpu", "true", "--bf16", "false", "--max_steps", "1", "--use_peft", "false"]
        argv += ["--per_device_train_batch_size", "2", "--save_strategy", "no", "--report_to", "none"]
        argv += ["--dataset_name", str(text_sids / "dataset"), "--dataset_config", "t2i"]
        assert main(argv) == 0
        return json.loads((out / "config.json").read_text())["hidden_size"]

    assert run(tiny_lm_dir) == 64
    assert run(other) == 32
