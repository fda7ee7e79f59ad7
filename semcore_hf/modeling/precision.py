"""Reduced-precision inference whose scores stay fine-grained: the model body under autocast, the output head in fp32.

Under plain bf16 autocast the output head runs in bf16 too, and its logits carry 8 bits of mantissa: a logit near 20
moves in steps of 0.125, so log-probabilities (the SID search's ranking scores, GSV's `log P(yes) - log P(no)`)
collapse onto a few values and ties appear where fp32 has none (measured on the demo's VLM: GSV scores of 16
candidates took 3 distinct values, rank correlation 0.46 with fp32). `autocast_inference` runs every layer but the
output head under `torch.autocast`, and the head in fp32 on fp32 hidden states, so only the body's rounding reaches
the scores. On CPUs with AVX512-BF16 or AMX, and on GPUs, this is where bf16 pays (measured in
`benchmarks/bench_retrieval.py`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}


def resolve_autocast_dtype(value: Any) -> torch.dtype | None:
    """`None` / `"none"` / `"fp32"` (no autocast), `"bf16"`, `"fp16"` or a `torch.dtype` -> the autocast dtype."""
    if value is None or value in ("none", "fp32", "float32", torch.float32):
        return None
    if isinstance(value, torch.dtype):
        if value not in (torch.bfloat16, torch.float16):
            raise ValueError(f"autocast dtype must be bfloat16 or float16, got {value}.")
        return value
    if isinstance(value, str) and value.lower() in AUTOCAST_DTYPES:
        return AUTOCAST_DTYPES[value.lower()]
    raise ValueError(f"autocast dtype must be one of none, bf16, fp16 (or a torch.dtype), got {value!r}.")


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU runs bf16 matrix products natively (AVX512-BF16 or AMX), where bf16 autocast is faster."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@contextlib.contextmanager
def autocast_inference(model: Any, dtype: Any) -> Iterator[None]:
    """Run `model` under `torch.autocast(dtype)` with its output head (`get_output_embeddings()`) in fp32.

    A no-op when `dtype` resolves to `None`. The head's fp32 weights are used as they are (no copy); its input is
    upcast from the body's reduced precision.

    Args:
        model (`PreTrainedModel`): a causal LM or VLM with fp32 weights.
        dtype (`str`, `torch.dtype` or `None`): see `resolve_autocast_dtype`.
    """
    dtype = resolve_autocast_dtype(dtype)
    if dtype is None:
        yield
        return
    device_type = next(model.parameters()).device.type
    head = model.get_output_embeddings()
    entered: list[Any] = []

    def before(module, args):
        off = torch.autocast(device_type, enabled=False)
        off.__enter__()
        entered.append(off)
        weight = getattr(module, "weight", None)
        to = weight.dtype if isinstance(weight, torch.Tensor) else torch.float32  # weights loaded in bf16 stay so
        return tuple(a.to(to) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)

    def after(module, args, output):
        entered.pop().__exit__(None, None, None)
        return output

    hooks = [] if head is None else [head.register_forward_pre_hook(before), head.register_forward_hook(after)]
    try:
        with torch.autocast(device_type, dtype=dtype):
            yield
    finally:
        while entered:  # the head raised: leave its fp32 region too
            entered.pop().__exit__(None, None, None)
        for h in hooks:
            h.remove()
