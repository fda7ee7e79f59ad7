"""Every shipped recipe parses with TRL's own `trl sft` parser (only TRL's keys) and with `semcore-hf train`'s, and
loads its data mixture."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest
import yaml

RECIPES = Path(__file__).resolve().parents[2] / "recipes"

# recipe file -> (output_dir, use_peft)
EXPECTED = {
    "t2i_causal_lm_full.yaml": ("outputs/t2i_full", False),
    "t2i_causal_lm_lora.yaml": ("outputs/t2i_lora", True),
    "vlm_both_directions_lora.yaml": ("outputs/vlm_both_lora", True),
    "demo_t2i_smollm2_cpu.yaml": ("outputs/demo/model", False),
}
RECIPE_FILES = sorted(glob.glob(str(RECIPES / "*.yaml")))


@pytest.fixture
def bf16_ok(monkeypatch):
    """Recipes ask for bf16 (GPU); let TrainingArguments accept it on this CPU-only machine: YAML parses verbatim."""
    import transformers.training_args as ta

    monkeypatch.setattr(ta, "is_torch_bf16_gpu_available", lambda *a, **k: True)


def _parse(path, *extra):
    from semcore_hf.training import make_parser

    return make_parser().parse_args_and_config(["--config", str(path), *extra], return_remaining_strings=True)


def test_the_known_recipes_exist():
    names = {os.path.basename(p) for p in RECIPE_FILES}
    assert {"t2i_causal_lm_full.yaml", "t2i_causal_lm_lora.yaml", "vlm_both_directions_lora.yaml"} <= names


@pytest.mark.parametrize("path", RECIPE_FILES, ids=os.path.basename)
def test_trl_sft_parses_the_recipe_as_it_is(path, bf16_ok):
    """`trl sft --config <recipe>` hands every key its dataclasses do not know to `accelerate launch`, which then
    fails (`unrecognized arguments: --model_kind`): a recipe may hold TRL's keys only."""
    from trl.scripts.sft import make_parser as trl_sft_parser

    *_, config_remaining, cli_remaining = trl_sft_parser().parse_args_and_config(
        ["--config", str(path)], return_remaining_strings=True, separate_remaining_strings=True
    )
    assert config_remaining == [] and cli_remaining == [], f"{path} has keys trl sft does not know"


@pytest.mark.parametrize("path", RECIPE_FILES, ids=os.path.basename)
def test_recipe_parses_for_semcore_hf_train(path, bf16_ok):
    sid_args, script_args, sft_args, model_args, dataset_args, remaining = _parse(path)
    assert remaining == [], f"{path} has keys no dataclass knows: {remaining}"
    raw = yaml.safe_load(open(path))
    assert sid_args.model_kind == "auto"  # read from the model's config: recipes carry no semcore-only key
    assert model_args.model_name_or_path == raw["model_name_or_path"]
    if not os.path.basename(path).startswith("demo_"):  # `semcore-hf demo` fills in its own paths
        assert model_args.model_name_or_path.startswith("outputs/sid_ready/")  # `semcore-hf prepare-model` writes it
    assert sft_args.output_dir == raw["output_dir"]
    # a recipe trains from `datasets:` or from `dataset_name`, never neither
    assert bool(dataset_args.datasets) or bool(script_args.dataset_name)
    name = os.path.basename(path)
    if name in EXPECTED:
        assert (sft_args.output_dir, model_args.use_peft) == EXPECTED[name]
    if model_args.use_peft:
        # the SID tokens' rows are new: TRL's option for new tokens trains the embedding layers too
        assert set(model_args.lora_modules_to_save) == {"embed_tokens", "lm_head"}
        assert model_args.lora_target_modules


@pytest.mark.parametrize("path", RECIPE_FILES, ids=os.path.basename)
def test_recipe_memorize_entries_cover_every_split(path, bf16_ok):
    _, script_args, _, _, dataset_args, _ = _parse(path)
    for entry in dataset_args.datasets:
        if entry.name.startswith("memorize"):
            assert set(entry.split.split("+")) == {"train", "validation", "test"}, entry
        else:
            assert entry.split == "train", entry
    if script_args.dataset_config and script_args.dataset_config != "caption":  # `caption`: a VLM's alignment stage
        assert any(c.strip().startswith("memorize") for c in script_args.dataset_config.split(","))


def test_vlm_recipe_disables_truncation(bf16_ok):
    _, _, sft_args, _, _, _ = _parse(RECIPES / "vlm_both_directions_lora.yaml")
    assert sft_args.max_length is None


def test_command_line_overrides_the_yaml(bf16_ok):
    sid_args, _, sft_args, model_args, _, remaining = _parse(
        RECIPES / "t2i_causal_lm_lora.yaml", "--lora_r", "4", "--max_steps", "7", "--model_kind", "causal_lm"
    )
    assert remaining == []
    assert (model_args.lora_r, sft_args.max_steps, sid_args.model_kind) == (4, 7, "causal_lm")
    assert model_args.lora_alpha == 64  # untouched YAML value


def test_unknown_recipe_key_is_rejected(tmp_path):
    from semcore_hf.training import make_parser

    bad = tmp_path / "bad.yaml"
    bad.write_text("model_name_or_path: x\nuse_cpu: true\nnot_a_real_option: 3\n")
    with pytest.raises(ValueError, match="not_a_real_option"):
        make_parser().parse_args_and_config(["--config", str(bad)])


@pytest.mark.parametrize("name", ["t2i_causal_lm_lora.yaml", "t2i_causal_lm_full.yaml"])
def test_text_recipe_mixture_loads_built_dataset(name, text_sids, bf16_ok):
    """The recipe's own `datasets:` mixture (path redirected to a built dataset) trains on t2i train + all memorize +
    verify_t2i train."""
    from trl import ScriptArguments

    from semcore_hf.training.sft import _load_training_data

    _, script_args, _, _, dataset_args, _ = _parse(RECIPES / name)
    assert script_args.dataset_name is None
    for entry in dataset_args.datasets:
        assert entry.path == "outputs/sids/dataset"
        entry.path = str(text_sids / "dataset")
    train, _ = _load_training_data(ScriptArguments(), dataset_args)
    # t2i train: 4 images x 3 captions; memorize_t2i: every one of the 8 images; verify_t2i: 1 positive + 1 negative
    # per train caption
    assert len(train) == 12 + 8 + 24
    assert {e.name for e in dataset_args.datasets} == {"t2i", "memorize_t2i", "verify_t2i"}
    assert {"prompt", "completion"} <= set(train.column_names)
