"""Multi-process training as the accelerate configs promise, on CPU: `torchrun --nproc_per_node 2` (gloo) runs
`semcore-hf train` LoRA on a tiny model with untied embeddings. The SID-ready preparation runs once (main process
first, the other rank reuses it) and the structure tokens' output rows are trained too."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import torch
from safetensors.torch import load_file
from train_helpers import rows_recipe, train_argv

from semcore_hf import _testing
from semcore_hf.tokenization import SIDTokenizerExtension


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_lora_on_untied_embeddings(text_sids, tmp_path):
    from transformers import AutoTokenizer

    from semcore_hf.retrieval import SemCORERetriever

    base = tmp_path / "untied_lm"
    _testing.build_causal_lm(_testing.build_tokenizer(None), base, tie_word_embeddings=False)
    out = tmp_path / "model"
    argv = train_argv(base, out, text_sids / "dataset", "--max_steps", "2", recipe=rows_recipe(tmp_path))
    argv += ["--lora_r", "4", "--lora_alpha", "8", "--lora_target_modules", "q_proj", "v_proj"]
    argv += ["--warmup_steps", "0", "--dataloader_num_workers", "0"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port())]
    cmd += ["-m", "semcore_hf.cli.main", *argv]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-6000:]
    assert log.count("SFT on 2 process(es)") == 2  # both ranks in one DDP run
    assert log.count("SID-ready model written to") == 1  # prepared once, by the main process ...
    assert log.count("Re-using the SID-ready base model") == 1  # ... which the other rank waited for

    ids = SIDTokenizerExtension().token_ids(AutoTokenizer.from_pretrained(str(out)))
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["trainable_token_indices"] == {"embed_tokens": ids, "lm_head": ids}
    prepared = load_file(out / "sid_ready_base" / "model.safetensors")
    saved = load_file(out / "adapter_model.safetensors")
    for layer in ("embed_tokens", "lm_head"):
        delta = next(v for k, v in saved.items() if layer in k and k.endswith("trainable_tokens_delta"))
        rows = next(v for k, v in prepared.items() if k.endswith(f"{layer}.weight"))[ids]
        assert ((delta - rows).abs().amax(dim=1) > 0).all(), f"the SID tokens' {layer} rows were not trained"
    retriever = SemCORERetriever.from_pretrained(str(out), str(text_sids / "t2i_index"), device="cpu")
    head = retriever.model.get_output_embeddings().weight
    assert head is not retriever.model.get_input_embeddings().weight
    torch.testing.assert_close(head[ids], next(v for k, v in saved.items() if "lm_head" in k))
    assert len(retriever.retrieve(["a dog on the grass"], k=2)[0]) == 2
