"""`caption_images`: captions from any image-text-to-text model, to build T2I SIDs without leaking test queries."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

# The instruction of the `caption` training task (`semcore_hf.data`), so a captioner aligned on it is prompted alike.
CAPTION_PROMPT = "Describe this image."


def caption_images(
    images: Sequence[Any],
    model,
    processor,
    prompt: str = CAPTION_PROMPT,
    batch_size: int = 8,
    max_new_tokens: int = 32,
    show_progress: bool = True,
    **generate_kwargs,
) -> list[str]:
    """Caption images with an `AutoModelForImageTextToText` model and its processor (greedy by default).

    The prompt goes through the processor's chat template (one user turn: the image, then `prompt`) and is encoded
    as TRL encodes training prompts (`semcore_hf.modeling.encode_prompts`); images are opened by
    `semcore_hf.modeling.open_image` (transparency composited onto white, as in training). Batches are left-padded
    so that every row's generation starts right after its prompt, which keeps results independent of the batch size.

    Args:
        images (`Sequence[PIL.Image.Image | str | os.PathLike]`): images or paths to them.
        model (`PreTrainedModel`): any image-text-to-text model (LLaVA, Idefics3, Qwen2-VL, ...).
        processor (`ProcessorMixin`): its processor, with a chat template.
        prompt (`str`, defaults to `CAPTION_PROMPT`): the instruction; the `caption` training task uses the same.
        batch_size (`int`, defaults to 8): images per `generate` call.
        max_new_tokens (`int`, defaults to 32): caption length limit.
        show_progress (`bool`, defaults to `True`): tqdm progress bar.
        generate_kwargs: passed to `model.generate` (e.g. `num_beams=3`); `do_sample` defaults to `False`.

    Returns:
        `list[str]`: one caption per image, stripped.

    Raises:
        ValueError: an image path that cannot be read (the message names it).
    """
    import torch
    from tqdm.auto import tqdm

    from semcore_hf.modeling import encode_prompts, get_tokenizer, open_image

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    images = list(images)
    tokenizer = get_tokenizer(processor)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    generate_kwargs.setdefault("do_sample", False)
    generate_kwargs.setdefault("num_beams", 1)
    if getattr(tokenizer, "pad_token_id", None) is not None:
        generate_kwargs.setdefault("pad_token_id", tokenizer.pad_token_id)
    captions: list[str] = []
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc="Captioning images", disable=not show_progress):
        batch = [open_image(im, f"images[{start + i}]") for i, im in enumerate(images[start : start + batch_size])]
        # the same encoding (and pixels) as the model's TRL training rows, left-padded
        inputs = encode_prompts(processor, [messages] * len(batch), [[im] for im in batch])
        inputs = {k: v.to(model.device) for k, v in inputs.items()}
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, **generate_kwargs)
        new = out[:, inputs["input_ids"].shape[1] :]
        captions += [c.strip() for c in tokenizer.batch_decode(new, skip_special_tokens=True)]
    return captions
