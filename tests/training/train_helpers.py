"""Helpers of the training tests: `semcore-hf train` argv on the tiny models, and a run that records its trainer."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
RECIPE = str(RECIPES / "t2i_causal_lm_lora.yaml")
N_TRAIN_ROWS = 12 + 8  # t2i train (4 images x 3 captions) + memorize_t2i over every split (8 images)


def rows_recipe(folder: Path) -> str:
    """The LoRA recipe without TRL's whole-layer `lora_modules_to_save`: `semcore-hf train` then trains only the
    new tokens' rows (peft `trainable_token_indices`)."""
    recipe = yaml.safe_load(Path(RECIPE).read_text())
    recipe.pop("lora_modules_to_save")
    path = folder / "lora_rows.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def train_argv(model_dir, out, dataset_dir, *extra, recipe: str = RECIPE) -> list[str]:
    return [
        "train", "--config", recipe, "--model_name_or_path", str(model_dir), "--output_dir", str(out),
        "--use_cpu", "true", "--bf16", "false", "--per_device_train_batch_size", "2", "--save_strategy", "no",
        "--dataset_name", str(dataset_dir), "--dataset_config", "t2i,memorize_t2i", "--learning_rate", "0.01",
        "--report_to", "none", *extra,
    ]  # fmt: skip


def run_recording(argv):
    """Run `main(argv)` and return (rc, the SFTTrainer it built)."""
    import trl

    from semcore_hf.cli.main import main

    seen = []

    class Recording(trl.SFTTrainer):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            seen.append(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(trl, "SFTTrainer", Recording)
        rc = main(argv)
    assert len(seen) == 1
    return rc, seen[0]
