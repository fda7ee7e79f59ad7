"""Fixtures of the training tests: a text-only T2I SID dataset built once by the CLI, and two tiny training runs."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def text_sids(karpathy_corpus, tiny_st_dir, tmp_path_factory):
    """`semcore-hf build-sids --text-only --tasks t2i memorize_t2i verify_t2i`, run once; returns the output folder."""
    from semcore_hf.cli.main import main

    src, gen = karpathy_corpus
    out = tmp_path_factory.mktemp("text_sids")
    argv = ["build-sids", "--source", str(src), "--output-dir", str(out), "--generated-captions", str(gen)]
    argv += ["--embedding-model", tiny_st_dir, "--num-clusters", "2", "--global-words", "1", "--text-only"]
    argv += ["--tasks", "t2i", "memorize_t2i", "verify_t2i"]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="session")
def lora_run(tiny_lm_dir, text_sids, tmp_path_factory):
    """`semcore-hf train` LoRA (+ trainable structure-token rows) for 3 steps, with `--sid_index`: (out, trainer)."""
    from train_helpers import rows_recipe, run_recording, train_argv

    root = tmp_path_factory.mktemp("train_lora")
    out = root / "model"
    argv = train_argv(
        tiny_lm_dir, out, text_sids / "dataset", "--max_steps", "3", "--lora_r", "4", recipe=rows_recipe(root)
    )
    argv += [
        "--lora_alpha",
        "8",
        "--lora_target_modules",
        "q_proj",
        "v_proj",
        "--sid_index",
        str(text_sids / "t2i_index"),
    ]
    rc, trainer = run_recording(argv)
    assert rc == 0
    return out, trainer


@pytest.fixture(scope="session")
def full_run(tiny_lm_dir, text_sids, tmp_path_factory):
    """`semcore-hf train` full fine-tuning for 1 step: (out, trainer)."""
    from train_helpers import run_recording, train_argv

    out = tmp_path_factory.mktemp("train_full") / "model"
    # warmup 0: with the recipe's warmup ratio the single step would run at learning rate 0
    argv = train_argv(tiny_lm_dir, out, text_sids / "dataset", "--max_steps", "1", "--use_peft", "false")
    rc, trainer = run_recording([*argv, "--warmup_steps", "0"])
    assert rc == 0
    return out, trainer
