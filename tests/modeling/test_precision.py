"""Reduced-precision inference: the body under autocast, the output head (and so every score) in fp32."""

from __future__ import annotations

import pytest
import torch

from semcore_hf import _testing
from semcore_hf.data.prompts import t2i_prompt
from semcore_hf.modeling import autocast_inference, encode_prompts
from semcore_hf.modeling.precision import resolve_autocast_dtype


@pytest.fixture(scope="module")
def lm():
    tok = _testing.build_tokenizer(None)
    model = _testing.build_causal_lm(tok, hidden_size=32, seed=0).eval()
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(8.0)  # spread logits as a trained model's are
    return model, tok


def _inputs(tok):
    return encode_prompts(tok, [t2i_prompt("a dog on the grass"), t2i_prompt("two red boats")])


def test_body_runs_in_bf16_and_the_head_in_fp32(lm):
    model, tok = lm
    seen = {}
    layer = model.model.layers[0].mlp.down_proj

    def record(module, args, out):
        seen["body"] = out.dtype

    hook = layer.register_forward_hook(record)
    try:
        with torch.inference_mode(), autocast_inference(model, "bf16"):
            logits = model(**_inputs(tok)).logits
    finally:
        hook.remove()
    assert seen["body"] == torch.bfloat16
    assert logits.dtype == torch.float32
    head = model.get_output_embeddings()
    assert not head._forward_hooks and not head._forward_pre_hooks  # nothing left behind


def test_scores_keep_fp32_resolution(lm):
    """Plain bf16 autocast rounds the logits themselves; ours only carries the body's rounding."""
    model, tok = lm
    with torch.inference_mode():
        ref = torch.log_softmax(model(**_inputs(tok)).logits[:, -1].float(), -1)
        with autocast_inference(model, "bf16"):
            ours = torch.log_softmax(model(**_inputs(tok)).logits[:, -1].float(), -1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            plain = torch.log_softmax(model(**_inputs(tok)).logits[:, -1].float(), -1)
    top = ref.topk(50, dim=-1).indices
    distinct = lambda x: len(torch.unique(x.gather(1, top)))  # noqa: E731
    assert distinct(ours) > distinct(plain)
    assert (ours - ref).gather(1, top).abs().max() < (plain - ref).gather(1, top).abs().max()


def test_the_head_leaves_autocast_even_when_it_raises(lm):
    model, tok = lm
    head = model.get_output_embeddings()

    def boom(module, args, output):
        raise RuntimeError("boom")

    h = head.register_forward_hook(boom)
    try:
        with pytest.raises(RuntimeError, match="boom"), torch.inference_mode(), autocast_inference(model, "bf16"):
            model(**_inputs(tok))
    finally:
        h.remove()
    assert not torch.is_autocast_enabled("cpu")
    assert list(head._forward_hooks) == [] and not head._forward_pre_hooks


@pytest.mark.parametrize("value, want", [(None, None), ("none", None), ("fp32", None), ("bf16", torch.bfloat16),
                                         ("FP16", torch.float16), (torch.bfloat16, torch.bfloat16)])  # fmt: skip
def test_resolve(value, want):
    assert resolve_autocast_dtype(value) == want


@pytest.mark.parametrize("bad", ["int8", torch.float64, 3])
def test_resolve_refuses_what_autocast_cannot_run(bad):
    with pytest.raises(ValueError, match="autocast dtype"):
        resolve_autocast_dtype(bad)
