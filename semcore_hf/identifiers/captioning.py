"""`caption_images`: captions from any image-text-to-text model, to build T2I SIDs without leaking test queries."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)


def _open_image(image: Any, position: int):
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, (str, os.PathLike)):
        try:
            with Image.open(image) as im:
                return im.convert("RGB")
        except Exception as e:  # PIL raises several types for unreadable files
            raise ValueError(f"Cannot read image {position} ({os.fspath(image)!r}): {type(e).__name__}: {e}") from e
    raise TypeError(f"Image {position} must be a PIL image or a path, got {type(image).__name__}.")


def caption_images(
    images: Sequence[Any],
    model,
    processor,
    prompt: str = "Describe this image in one sentence.",
    batch_size: int = 8,
    max_new_tokens: int = 32,
    show_progress: bool = True,
    **generate_kwargs,
) -> list[str]:
    """Caption images with an `AutoModelForImageTextToText` model and its processor (greedy by default).

    The prompt goes through the processor's chat template (one user turn: the image, then `prompt`); batches are
    left-padded so that every row's generation starts right after its prompt, which keeps results independent of the
    batch size.

    Args:
        images (`Sequence[PIL.Image.Image | str | os.PathLike]`): images or paths to them.
        model (`PreTrainedModel`): any image-text-to-text model (LLaVA, Idefics3, Qwen2-VL, ...).
        processor (`ProcessorMixin`): its processor, with a chat template.
        prompt (`str`, defaults to `"Describe this image in one sentence."`): the instruction.
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

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    images = list(images)
    tokenizer = getattr(processor, "tokenizer", processor)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    generate_kwargs.setdefault("do_sample", False)
    if getattr(tokenizer, "pad_token_id", None) is not None:
        generate_kwargs.setdefault("pad_token_id", tokenizer.pad_token_id)
    old_side = getattr(tokenizer, "padding_side", None)
    tokenizer.padding_side = "left"
    captions: list[str] = []
    try:
        starts = range(0, len(images), batch_size)
        for start in tqdm(starts, desc="Captioning images", disable=not show_progress):
            batch = [_open_image(im, start + i) for i, im in enumerate(images[start : start + batch_size])]
            inputs = processor(text=[text] * len(batch), images=batch, return_tensors="pt", padding=True)
            inputs = inputs.to(model.device)
            with torch.inference_mode():
                out = model.generate(**inputs, max_new_tokens=max_new_tokens, **generate_kwargs)
            new = out[:, inputs["input_ids"].shape[1] :]
            captions += [c.strip() for c in tokenizer.batch_decode(new, skip_special_tokens=True)]
    finally:
        if old_side is not None:
            tokenizer.padding_side = old_side
    return captions
