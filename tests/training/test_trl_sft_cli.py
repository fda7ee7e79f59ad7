"""TRL's own CLI runs a shipped recipe as it is: `trl sft --config recipes/t2i_causal_lm_lora.yaml` on a SID-ready
tiny model (`semcore-hf prepare-model` output), in a real process, then the adapter retrieves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from train_helpers import RECIPE

from semcore_hf.tokenization import SIDTokenizerExtension


def test_trl_sft_trains_the_lora_recipe_with_the_sid_token_rows(sid_lm_dir, text_sids, tmp_path):
    from transformers import AutoTokenizer

    from semcore_hf.identifiers import SIDIndex
    from semcore_hf.retrieval import SemCORERetriever

    # the recipe's own relative data paths (outputs/sids/dataset), as after `semcore-hf build-sids`
    (tmp_path / "outputs" / "sids").mkdir(parents=True)
    os.symlink(text_sids / "dataset", tmp_path / "outputs" / "sids" / "dataset")
    out = tmp_path / "out"
    trl = str(Path(sys.executable).parent / "trl")
    cmd = [trl, "sft", "--config", RECIPE, "--model_name_or_path", sid_lm_dir, "--output_dir", str(out)]
    # CPU-sized overrides; every other key (the data mixture, lora_modules_to_save, ...) is the recipe's
    cmd += ["--max_steps", "2", "--per_device_train_batch_size", "4", "--use_cpu", "true", "--bf16", "false"]
    cmd += ["--lora_r", "4", "--lora_alpha", "8", "--lora_target_modules", "q_proj", "v_proj"]
    cmd += ["--learning_rate", "0.01", "--warmup_steps", "0", "--save_strategy", "no", "--dataloader_num_workers", "0"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]

    config = json.loads((out / "adapter_config.json").read_text())
    assert set(config["modules_to_save"]) == {"embed_tokens", "lm_head"}
    assert config["base_model_name_or_path"] == sid_lm_dir
    ids = AutoTokenizer.from_pretrained(str(out)).convert_tokens_to_ids(SIDTokenizerExtension().tokens)
    base = load_file(Path(sid_lm_dir) / "model.safetensors")
    base_rows = next(v for k, v in base.items() if k.endswith("embed_tokens.weight"))[ids]
    saved = load_file(out / "adapter_model.safetensors")
    embed = next(v for k, v in saved.items() if "embed_tokens" in k)
    head = next(v for k, v in saved.items() if "lm_head" in k)
    for weight in (embed, head):  # the trained copies of the (tied) embedding layers
        assert not torch.equal(weight[ids], base_rows), "the SID tokens' rows were not trained"

    index = SIDIndex.from_pretrained(str(text_sids / "t2i_index"))
    retriever = SemCORERetriever.from_pretrained(str(out), index, device="cpu")
    assert retriever.extension == SIDTokenizerExtension()  # found next to the SID-ready base
    # merged: the model reads and writes SID tokens with the trained rows
    torch.testing.assert_close(retriever.model.get_input_embeddings().weight[ids], embed[ids])
    torch.testing.assert_close(retriever.model.get_output_embeddings().weight[ids], head[ids])
    (res_,) = retriever.retrieve(["a dog on the grass"], k=3)
    assert len({r["target_id"] for r in res_}) == 3
    assert all(r["sid"] == index.sid_of(r["target_id"]) for r in res_)
