"""Regressions of the training glue: text and image tasks in one VLM run, a stale SID-ready base model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from semcore_hf.cli.main import main

RECIPE = str(Path(__file__).resolve().parents[2] / "recipes" / "t2i_causal_lm_lora.yaml")


def test_text_and_image_tasks_train_one_vlm(karpathy_corpus, tiny_st_dir, sid_llava_dir, tmp_path):
    """t2i rows have no image, i2t rows have one: a VLM trains both in one run (one model, both directions)."""
    from trl import ScriptArguments

    from semcore_hf import SemCORERetriever
    from semcore_hf.training.sft import _load_training_data

    src, gen = karpathy_corpus
    argv = ["build-sids", "--source", str(src), "--output-dir", str(tmp_path), "--generated-captions", str(gen)]
    argv += ["--embedding-model", tiny_st_dir, "--num-clusters", "2", "--direction", "both", "--tasks", "t2i", "i2t"]
    assert main(argv) == 0
    args = ScriptArguments(dataset_name=str(tmp_path / "dataset"), dataset_config="t2i,i2t")
    with pytest.raises(ValueError, match="text-only causal LM"):  # a causal LM cannot take the i2t images
        _load_training_data(args, None, "causal_lm")
    train, _ = _load_training_data(args, None, "image_text_to_text")
    images = [len(x) for x in train["images"]]
    assert images.count(0) == 12 and images.count(1) == 12  # 12 text-only t2i rows, 12 i2t rows with their image
    out = tmp_path / "vlm"
    argv = ["train", "--config", RECIPE, "--model_name_or_path", sid_llava_dir, "--output_dir", str(out)]
    argv += ["--dataset_name", str(tmp_path / "dataset"), "--dataset_config", "t2i,i2t", "--max_steps", "2"]
    argv += ["--per_device_train_batch_size", "8", "--use_peft", "false", "--bf16", "false", "--model_kind"]
    argv += ["image_text_to_text", "--use_cpu", "true", "--max_length", "null"]
    assert main(argv) == 0
    from PIL import Image

    image = Image.open(src.parent / "images" / "img6.jpg")
    for direction, query in (("t2i", "a dog"), ("i2t", image)):
        r = SemCORERetriever.from_pretrained(str(out), str(tmp_path / f"{direction}_index"), device="cpu")
        assert len(r.retrieve([query], k=2)[0]) == 2


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

def test_vlm_refuses_group_by_length_before_loading(sid_llava_dir, tmp_path, capsys):
    """TRL tokenises VLM rows in its collator, so group_by_length has no lengths: refused up front, naming the flag."""
    argv = ["train", "--config", RECIPE, "--model_name_or_path", sid_llava_dir, "--output_dir", str(tmp_path / "o")]
    (tmp_path / "data").mkdir()
    argv += ["--dataset_name", str(tmp_path / "data"), "--train_sampling_strategy", "group_by_length"]
    argv += ["--use_peft", "false", "--bf16", "false", "--use_cpu", "true", "--model_kind", "image_text_to_text"]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert "--train_sampling_strategy group_by_length" in err and "random" in err
    assert not (tmp_path / "o").exists()


def test_train_only_projector_updates_the_projector_alone(karpathy_corpus, sid_llava_dir, tmp_path):
    """LLaVA stage 1 (alignment): after training, the projector changed and every other weight is the base's."""
    from safetensors.torch import load_file

    from semcore_hf.data import build_sid_dataset, load_image_caption_source, save_sid_dataset

    src, _ = karpathy_corpus
    rows = load_image_caption_source(str(src))
    save_sid_dataset(build_sid_dataset(rows, tasks=["caption"]), tmp_path / "data", save_arrow=False)
    out = tmp_path / "aligned"
    argv = ["train", "--config", RECIPE, "--model_name_or_path", sid_llava_dir, "--output_dir", str(out)]
    argv += ["--dataset_name", str(tmp_path / "data"), "--dataset_config", "caption", "--max_steps", "2"]
    argv += ["--use_peft", "false", "--bf16", "false", "--use_cpu", "true", "--max_length", "null"]
    argv += ["--learning_rate", "1e-2", "--train_only_projector", "true"]
    assert main(argv) == 0
    before, after = load_file(f"{sid_llava_dir}/model.safetensors"), load_file(f"{out}/model.safetensors")
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and all("multi_modal_projector" in k for k in changed), sorted(changed)[:5]


def test_train_only_projector_refuses_a_text_lm_before_loading(sid_lm_dir, tmp_path, capsys):
    (tmp_path / "data").mkdir()
    argv = ["train", "--config", RECIPE, "--model_name_or_path", sid_lm_dir, "--output_dir", str(tmp_path / "o")]
    argv += ["--dataset_name", str(tmp_path / "data"), "--train_only_projector", "true", "--use_cpu", "true"]
    assert main(argv) != 0
    assert "--train_only_projector true needs a VLM" in capsys.readouterr().err
