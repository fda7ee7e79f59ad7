"""Prompt encoding exactly as TRL's `SFTTrainer` encodes training prompts, for every model kind.

Training goes through TRL, so inference must reproduce TRL's tokenisation, not an approximation of it:

- text-only models (a tokenizer): each prompt is tokenised by `tokenizer.apply_chat_template(prompt,
  add_generation_prompt=True, tokenize=True)`, as `SFTTrainer`'s dataset preparation does (the chat template holds
  any BOS; nothing else is added);
- VLMs (a processor): each prompt is rendered with `processor.apply_chat_template(..., add_generation_prompt=True,
  tokenize=False)` and the batch is encoded with `processor(text=..., images=..., add_special_tokens=False,
  padding_side="left")`, as TRL's `DataCollatorForVisionLanguageModeling` does; adding special tokens there would
  put a second BOS in front of the one the template renders.

Batches are left-padded, so generation starts right after every row's prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

# The chat template `prepare_model_for_sids` gives text-only models by default (and the demo's DINOv2 + SmolLM2 VLM):
# the user turn, a newline, the answer. An instruct model's own template spends ~35 tokens per row on a default system
# prompt and role markers (46 prompt tokens instead of ~10 for SmolLM2), which every training row and every query
# pays; the short task instruction alone tells the tasks apart. BOS is rendered where the tokenizer has one, as most
# templates do; an image part is LLaVA's `<image>` placeholder, which the processor expands to the image's tokens.
COMPACT_CHAT_TEMPLATE = (
    "{%- if bos_token %}{{ bos_token }}{% endif -%}"
    "{%- for message in messages -%}"
    "{%- if message['content'] is string %}{{ message['content'] }}"
    "{%- else %}{% for part in message['content'] %}"
    "{%- if part['type'] == 'image' %}<image>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif -%}"
    "{% endfor %}{% endif -%}"
    "{%- if message['role'] == 'assistant' %}{{ eos_token }}{% else %}{{ '\\n' }}{% endif -%}"
    "{%- endfor -%}"
)


def get_tokenizer(processing_class: Any) -> Any:
    """The text tokenizer of a tokenizer, or of a processor that holds one as `.tokenizer`."""
    tok = getattr(processing_class, "tokenizer", None)
    return tok if tok is not None else processing_class


def is_vlm(processing_class: Any) -> bool:
    """Whether `processing_class` is a multimodal processor (it has an image processor) rather than a tokenizer."""
    return getattr(processing_class, "image_processor", None) is not None


def to_text_only(messages: list[dict]) -> list[dict]:
    """Flatten list-of-parts contents into plain strings (text-only chat templates expect string contents).

    Training data for text-only models stores its prompts this way, so inference flattens them the same way.
    """
    out = []
    for m in messages:
        content = m["content"]
        if not isinstance(content, str):
            if any(part.get("type") == "image" for part in content):
                raise ValueError("This prompt holds an image; a text-only model cannot take it. Use a VLM.")
            content = "".join(part["text"] for part in content if part.get("type") == "text")
        out.append({**m, "content": content})
    return out


def render_prompt(processing_class: Any, messages: list[dict]) -> str:
    """The text of a one-turn prompt through the chat template, ending with the generation prompt."""
    if is_vlm(processing_class):
        return processing_class.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return get_tokenizer(processing_class).apply_chat_template(
        to_text_only(messages), add_generation_prompt=True, tokenize=False
    )


def encode_prompts(
    processing_class: Any,
    prompts: Sequence[list[dict]],
    images: Sequence[Sequence[Any]] | None = None,
) -> dict[str, torch.Tensor]:
    """Encode a batch of conversational prompts, left-padded, with the token ids TRL trained the model on.

    Args:
        processing_class (`PreTrainedTokenizerBase` or `ProcessorMixin`):
            The model's tokenizer (text-only model) or processor (VLM), with a chat template.
        prompts (`Sequence[list[dict]]`):
            One list of messages per row (`semcore_hf.data.prompts` builds them).
        images (`Sequence[Sequence[PIL.Image.Image]]`, *optional*):
            VLMs only: one list of RGB images per row (open them with `semcore_hf.modeling.open_image`).

    Returns:
        `dict[str, torch.Tensor]`: `input_ids`, `attention_mask` and, for VLMs, the processor's image tensors.
    """
    if not prompts:
        raise ValueError("encode_prompts needs at least one prompt.")
    if is_vlm(processing_class):
        texts = [render_prompt(processing_class, p) for p in prompts]
        kwargs: dict[str, Any] = {"text": texts}
        if images is not None and any(len(row) for row in images):
            kwargs["images"] = [list(row) for row in images]
        return dict(
            processing_class(
                **kwargs, padding=True, padding_side="left", add_special_tokens=False, return_tensors="pt"
            )
        )
    if images is not None and any(len(row) for row in images):
        raise ValueError(
            f"{type(processing_class).__name__} is a text-only tokenizer; image prompts need a VLM and its processor."
        )
    tok = get_tokenizer(processing_class)
    rows = [
        list(tok.apply_chat_template(to_text_only(p), add_generation_prompt=True, tokenize=True, return_dict=True)[
            "input_ids"
        ])
        for p in prompts
    ]  # fmt: skip
    return left_pad(rows, tok)


def left_pad(rows: Sequence[Sequence[int]], tokenizer: Any) -> dict[str, torch.Tensor]:
    """Left-pad token id rows into `input_ids` and `attention_mask` (pad token, else EOS), so generation starts right
    after every row's prompt."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise ValueError(f"{type(tokenizer).__name__} has neither a pad nor an EOS token to left-pad a batch with.")
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), int(pad), dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if len(r):
            input_ids[i, width - len(r) :] = torch.tensor(list(r), dtype=torch.long)
            attention_mask[i, width - len(r) :] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}
