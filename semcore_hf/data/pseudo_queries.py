"""`generate_pseudo_queries`: queries written for every target from its own text, for the `pseudo_t2i` task.

A target that the model only ever sees through its own text (a test image memorised from its generated caption, a
target added late) is hard to reach from a query phrased differently. Generative retrieval's answer is to train on
pseudo-queries generated for every target (doc2query / DSI-QG): here an LM writes them *few-shot*, InPars-style,
from a handful of (target text, real query) pairs of the training split, so the pseudo-queries imitate the style of
the real queries without any test query being seen. `build_sid_dataset(..., tasks=["pseudo_t2i"],
pseudo_queries=...)` turns them into `Find the image: <pseudo-query> -> SID` rows for the targets of every split.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

PSEUDO_QUERY_INSTRUCTION = "For each picture, write the short description someone searching for it would type."
_NAME, _QUERY = "Picture", "Query"


def few_shot_prompt(
    examples: Sequence[tuple[str, str]], text: str, instruction: str = PSEUDO_QUERY_INSTRUCTION
) -> str:
    """The InPars-style prompt: the instruction, the `(target text, query)` examples, then `text` and an open query."""
    lines = [instruction, ""]
    for name, query in examples:
        lines += [f"{_NAME}: {_one_line(name)}", f"{_QUERY}: {_one_line(query)}", ""]
    lines += [f"{_NAME}: {_one_line(text)}", f"{_QUERY}:"]
    return "\n".join(lines)


def generate_pseudo_queries(
    texts: Sequence[str],
    model: Any,
    tokenizer: Any,
    examples: Sequence[tuple[str, str]],
    num_queries: int = 3,
    max_new_tokens: int = 24,
    temperature: float = 0.8,
    top_p: float = 0.95,
    batch_size: int = 16,
    seed: int = 0,
    instruction: str = PSEUDO_QUERY_INSTRUCTION,
    show_progress: bool = True,
    autocast: str | None = None,
) -> list[list[str]]:
    """Write `num_queries` pseudo-queries for each target text with a causal LM, few-shot (InPars / doc2query).

    The prompt is plain text, not the chat template, so any causal LM (base or instruct) continues it. The first
    query of each target is greedy, the others are sampled (`temperature`, `top_p`) from a seed derived from `seed`
    and the batch's position, so the output is deterministic given `seed` and `batch_size`. Queries end at the first
    line break; they are stripped and de-duplicated per target (case-insensitively), and a query equal to the
    target's text is dropped, so a target may get fewer than `num_queries`.

    Args:
        texts (`Sequence[str]`): one text per target (the text its SID was built from).
        model (`PreTrainedModel`): a causal LM (e.g. the base model that is fine-tuned to generate the SIDs).
        tokenizer (`PreTrainedTokenizerBase`): its tokenizer.
        examples (`Sequence[tuple[str, str]]`): `(target text, real query)` pairs of the *training* split, shown
            in every prompt; a handful (4-8) is enough. Never use pairs whose query is a test query.
        num_queries (`int`, defaults to 3): queries per target (1 greedy + `num_queries - 1` sampled).
        max_new_tokens (`int`, defaults to 24): length limit of one query.
        temperature (`float`, defaults to 0.8) / top_p (`float`, defaults to 0.95): sampling of the extra queries.
        batch_size (`int`, defaults to 16): targets per `generate` call.
        seed (`int`, defaults to 0): seed of the sampling.
        instruction (`str`, defaults to `PSEUDO_QUERY_INSTRUCTION`): the prompt's first line.
        show_progress (`bool`, defaults to `True`): tqdm progress bar.
        autocast (`str`, *optional*): `"bf16"` runs the model body under autocast, the head in fp32
            (`semcore_hf.modeling.autocast_inference`); about twice as fast where bf16 is native.

    Returns:
        `list[list[str]]`: the pseudo-queries of each text, in the order of `texts`.

    Raises:
        ValueError: no example, or a bad count (before any generation).
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import GenerationConfig

    from semcore_hf.modeling import autocast_inference, left_pad

    for name, value in (("num_queries", num_queries), ("max_new_tokens", max_new_tokens), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    examples = [(str(a), str(b)) for a, b in examples]
    if not examples:
        raise ValueError(
            "generate_pseudo_queries needs a few (target text, query) examples from the training split to imitate."
        )
    texts = [str(t) for t in texts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    # A query ends at a line break: every token that holds one stops a row (cheaper than `stop_strings`).
    stops = [i for i, t in enumerate(tokenizer.batch_decode([[i] for i in range(len(tokenizer))])) if "\n" in t]
    if tokenizer.eos_token_id is not None:
        stops.append(int(tokenizer.eos_token_id))
    greedy_config = GenerationConfig(
        max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, pad_token_id=pad, eos_token_id=stops
    )
    sample_config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=True,
        temperature=temperature,
        top_p=top_p,
        top_k=0,
        num_beams=1,
        num_return_sequences=num_queries - 1,
        pad_token_id=pad,
        eos_token_id=stops,
    )
    out: list[list[str]] = []
    for start in tqdm(range(0, len(texts), batch_size), desc="Writing pseudo-queries", disable=not show_progress):
        batch = texts[start : start + batch_size]
        prompts = [few_shot_prompt(examples, t, instruction) for t in batch]
        inputs = left_pad([tokenizer(p)["input_ids"] for p in prompts], tokenizer)
        inputs = {k: v.to(model.device) for k, v in inputs.items()}
        width = inputs["input_ids"].shape[1]
        with torch.inference_mode(), _own_generation_settings(model), autocast_inference(model, autocast):
            greedy = model.generate(**inputs, generation_config=greedy_config)
            rows = [[q] for q in _decode(tokenizer, greedy, width)]
            if num_queries > 1:
                torch.manual_seed(seed * 1_000_003 + start)  # per batch: a resumed or partial run writes the same
                sampled = model.generate(**inputs, generation_config=sample_config)
                extra = _decode(tokenizer, sampled, width)
                for i in range(len(batch)):
                    rows[i] += extra[i * (num_queries - 1) : (i + 1) * (num_queries - 1)]
        out += [_clean(qs, t) for qs, t in zip(rows, batch)]
    empty = sum(1 for qs in out if not qs)
    if empty:
        logger.warning("%d of %d targets got no usable pseudo-query.", empty, len(out))
    return out


@contextlib.contextmanager
def _own_generation_settings(model):
    """Hide the checkpoint's `generation_config` while generating: `generate` fills every field that our config
    leaves unset from it (a repetition penalty, `no_repeat_ngram_size`, ...), which would change the queries."""
    from transformers import GenerationConfig

    saved = model.generation_config
    model.generation_config = GenerationConfig()
    try:
        yield
    finally:
        model.generation_config = saved


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def _decode(tokenizer, sequences, prompt_len: int) -> list[str]:
    return [t.split("\n", 1)[0] for t in tokenizer.batch_decode(sequences[:, prompt_len:], skip_special_tokens=True)]


def _clean(queries: list[str], text: str) -> list[str]:
    seen, out = {_one_line(text).lower()}, []
    for q in queries:
        q = _one_line(q)
        if q and q.lower() not in seen:
            seen.add(q.lower())
            out.append(q)
    return out


def pseudo_queries_for_source(
    rows: Any,
    model: Any,
    tokenizer: Any,
    text: str = "generated",
    num_examples: int = 6,
    example_split: str = "train",
    seed: int = 0,
    **kwargs: Any,
) -> dict[str, list[str]]:
    """Pseudo-queries for every image of a normalised source, few-shot from pairs of its training split.

    The examples are `num_examples` seeded `(image text, first caption)` pairs of `example_split`; the image texts are
    the ones the T2I SIDs are built from (`t2i_targets(rows, text)`). `kwargs` go to `generate_pseudo_queries`.

    Returns:
        `dict[str, list[str]]`: image id -> its pseudo-queries (what `build_sid_dataset(pseudo_queries=...)` takes).
    """
    import numpy as np

    from semcore_hf.data.sources import t2i_targets

    if example_split not in rows:
        raise ValueError(
            f"The source has no {example_split!r} split to draw pseudo-query examples from (it has {list(rows)})."
        )
    _, ex_texts = t2i_targets(rows, text=text, splits=[example_split])
    ex_caps = rows[example_split]["captions"]
    pairs = [(t, caps[0]) for t, caps in zip(ex_texts, ex_caps) if caps]
    if not pairs:
        raise ValueError(f"Split {example_split!r} has no captioned image to use as a pseudo-query example.")
    pick = np.random.default_rng(seed).permutation(len(pairs))[:num_examples]
    ids, texts = t2i_targets(rows, text=text)
    queries = generate_pseudo_queries(texts, model, tokenizer, [pairs[int(i)] for i in pick], seed=seed, **kwargs)
    return dict(zip(ids, queries))
