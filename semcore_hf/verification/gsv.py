"""Generative Semantic Verification (GSV): the MLLM itself scores whether a candidate target matches the query.

The score of a (query, candidate) pair is the log-odds of the model answering "yes" rather than "no" to a yes/no
verification prompt, read at the first answer position (right after the chat template's generation prompt):

    gsv(query, candidate) = log P(yes | prompt) - log P(no | prompt)

Prompts (from `semcore_hf.data.prompts`, shared with the verification training pairs):

- T2I with a VLM and candidate images: `VERIFY_T2I_INSTRUCTION` with the candidate's image;
- T2I otherwise (text-only LM, or no images given): `VERIFY_T2I_TEXT_INSTRUCTION` with the candidate's caption text
  (for T2I retrieval, the MLLM-generated caption of the candidate image);
- I2T (VLM only): `VERIFY_I2T_INSTRUCTION` with the query image and the candidate caption.

Pairs are scored in batches, one forward pass per batch with left padding, so the last position of every row is
the first answer position. Prompts are encoded by `semcore_hf.modeling.encode_prompts` and images opened by
`semcore_hf.modeling.open_image`, exactly as the `verify_*` training rows were by TRL.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Sequence
from typing import Any

import torch

from semcore_hf.data.prompts import (
    NO,
    VERIFY_I2T_INSTRUCTION,
    VERIFY_T2I_INSTRUCTION,
    VERIFY_T2I_TEXT_INSTRUCTION,
    YES,
    user_message,
)
from semcore_hf.modeling import encode_prompts, get_tokenizer, is_vlm, left_pad, open_image, render_prompt
from semcore_hf.modeling.precision import autocast_inference, resolve_autocast_dtype

__all__ = ["GSVScorer"]

logger = logging.getLogger(__name__)

_DIRECTIONS = ("t2i", "i2t")


class GSVScorer:
    """Scores (query, candidate) pairs with an (M)LLM's yes/no likelihood: `log P(yes) - log P(no)`.

    Args:
        model (`transformers.PreTrainedModel`):
            Any `AutoModelForCausalLM` (text prompts) or `AutoModelForImageTextToText` VLM (image or text prompts).
            It is put in eval mode while scoring and restored afterwards.
        processor_or_tokenizer (`transformers.ProcessorMixin` or `transformers.PreTrainedTokenizerBase`):
            The VLM's processor (anything with an `image_processor`) or the LM's tokenizer. It must have a chat
            template. A tokenizer without a pad token gets its EOS token as pad token (only masked positions).
        batch_size (`int`, *optional*, defaults to 16):
            Pairs per forward pass.
        yes (`str`, *optional*, defaults to `semcore_hf.data.prompts.YES`):
            The positive answer, as the model writes it right after the generation prompt. Only its first token is
            scored (the one generation would commit to first). Pass e.g. `" Yes"` if your model answers that way.
        no (`str`, *optional*, defaults to `semcore_hf.data.prompts.NO`):
            The negative answer; its first token must differ from the first token of `yes`.
        show_progress (`bool`, *optional*, defaults to `False`):
            Show a tqdm bar over batches.
        share_prefix (`bool`, *optional*, defaults to `True`):
            Encode the prompt prefix that the pairs of one query share (the query text, or the query image for I2T)
            once and reuse its KV cache for all of that query's candidates. Used for text-only models and
            LLaVA-style VLMs; models with multimodal positions (Qwen2-VL's M-RoPE) always take the plain path.
        autocast (`str` or `torch.dtype`, *optional*):
            `"bf16"` / `"fp16"`: the model body under `torch.autocast`, the output head in fp32
            (`semcore_hf.modeling.autocast_inference`), so scores keep fp32 resolution; `None`: fp32.

    Example:

    ```python
    >>> scorer = GSVScorer.from_pretrained("path/to/vlm")
    >>> scorer.score(["a dog on grass"], None, candidate_images=[image])   # T2I, image prompt
    tensor([1.73])
    >>> scorer.score(None, ["a dog on grass"], direction="i2t", query_images=[image])
    tensor([2.05])
    ```
    """

    def __init__(
        self,
        model: Any,
        processor_or_tokenizer: Any,
        batch_size: int = 16,
        yes: str = YES,
        no: str = NO,
        show_progress: bool = False,
        share_prefix: bool = True,
        autocast: str | torch.dtype | None = None,
    ) -> None:
        self.autocast = resolve_autocast_dtype(autocast)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive int, got {batch_size!r}.")
        self.model = model
        self.processor = processor_or_tokenizer
        # A processor wraps the tokenizer; a bare tokenizer is its own.
        self.tokenizer = get_tokenizer(processor_or_tokenizer)
        self.is_vlm = is_vlm(processor_or_tokenizer)
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.share_prefix = share_prefix
        if not (getattr(self.processor, "chat_template", None) or getattr(self.tokenizer, "chat_template", None)):
            raise ValueError(
                f"{type(self.processor).__name__} has no chat template; GSV renders its yes/no prompt with "
                "`apply_chat_template(..., add_generation_prompt=True)`. Set `chat_template` first."
            )
        if self.tokenizer.pad_token is None:
            # Pad positions are masked out and left of every prompt, so which token pads does not matter.
            self.tokenizer.pad_token = self.tokenizer.eos_token
        params = inspect.signature(model.forward).parameters
        self._params = set(params)  # explicit forward arguments
        self._var_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
        self.yes, self.no = yes, no
        self.yes_token_id, self.no_token_id = self._resolve_answer_ids(yes, no)

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(
        cls,
        path_or_model_id: str | os.PathLike,
        *,
        batch_size: int = 16,
        yes: str = YES,
        no: str = NO,
        show_progress: bool = False,
        processor_kwargs: dict | None = None,
        **model_kwargs,
    ) -> GSVScorer:
        """Load a model and its processor / tokenizer and wrap them in a `GSVScorer`.

        A checkpoint whose config is an image-text-to-text architecture loads with `AutoModelForImageTextToText` and
        `AutoProcessor`; any other with `AutoModelForCausalLM` and `AutoTokenizer`. Local paths work offline; a Hub id
        is downloaded only when the user passes one (and the Hub is reachable).

        Args:
            path_or_model_id (`str` or `os.PathLike`):
                A local folder or a Hub model id.
            batch_size (`int`, *optional*, defaults to 16):
                Pairs per forward pass.
            yes (`str`, *optional*, defaults to `"yes"`):
                The positive answer (see the class docstring).
            no (`str`, *optional*, defaults to `"no"`):
                The negative answer.
            show_progress (`bool`, *optional*, defaults to `False`):
                Show a tqdm bar over batches.
            processor_kwargs (`dict`, *optional*):
                Extra arguments for `AutoProcessor` / `AutoTokenizer.from_pretrained`.
            **model_kwargs:
                Passed to the model's `from_pretrained` (e.g. `dtype`, `device_map`, `revision`).

        Returns:
            `GSVScorer`: the scorer, with the model in eval mode.
        """
        from semcore_hf.modeling import load_model_and_processor

        trust = model_kwargs.get("trust_remote_code", False)
        processor_kwargs = {"trust_remote_code": trust, **(processor_kwargs or {})}
        model, processor, _ = load_model_and_processor(
            str(path_or_model_id), processor_kwargs=processor_kwargs, **model_kwargs
        )
        return cls(model.eval(), processor, batch_size=batch_size, yes=yes, no=no, show_progress=show_progress)

    # ------------------------------------------------------------------ scoring

    def score(
        self,
        queries: Sequence[str] | None,
        candidates: Sequence[str] | None,
        direction: str = "t2i",
        candidate_images: Sequence[Any] | None = None,
        query_images: Sequence[Any] | None = None,
    ) -> torch.Tensor:
        """GSV score `log P(yes) - log P(no)` of each (query, candidate) pair; position i pairs the i-th items.

        Args:
            queries (`list[str]`, *optional*):
                T2I: the query texts (required). I2T: ignored apart from its length (e.g. query ids); may be `None`.
            candidates (`list[str]`, *optional*):
                The candidates' texts: for T2I the caption of each candidate image (used when no `candidate_images`
                are given, and always with a text-only LM); for I2T the candidate captions (required).
            direction (`str`, *optional*, defaults to `"t2i"`):
                `"t2i"` (text query, image candidates) or `"i2t"` (image query, caption candidates).
            candidate_images (`list[PIL.Image.Image | str | os.PathLike]`, *optional*):
                T2I with a VLM: one image per pair; the prompt then shows the image instead of its caption. Paths are
                opened with PIL.
            query_images (`list[PIL.Image.Image | str | os.PathLike]`, *optional*):
                I2T: one query image per pair (required).

        Returns:
            `torch.Tensor`: float32 scores of shape `(num_pairs,)` on CPU; higher means "matches".

        Raises:
            ValueError: an unknown direction, lists of different lengths, a missing input (e.g. I2T without
                `query_images`), images given to a text-only model, or I2T with a text-only model.
            TypeError: `queries` / `candidates` is a single string or holds non-strings.
        """
        texts, images = self._build_prompts(queries, candidates, direction, candidate_images, query_images)
        if not texts:
            return torch.empty(0, dtype=torch.float32)
        scores = torch.empty(len(texts), dtype=torch.float32)
        was_training = self.model.training
        self.model.eval()
        try:
            with autocast_inference(self.model, self.autocast):
                self._score_into(scores, texts, images, direction, queries, candidate_images, query_images)
        finally:
            self.model.train(was_training)
        return scores

    def _score_into(self, scores, texts, images, direction, queries, candidate_images, query_images) -> None:
        """Fill `scores` (one per prompt): shared-prefix groups first, then the rest in length-sorted batches."""
        rest = list(range(len(texts)))
        if self.share_prefix and self._prefix_sharing_supported():
            # The pairs of one query share their prompt up to the candidate (the query, and for I2T its image):
            # that prefix is encoded once per query and its KV cache reused for every candidate.
            keys = self._query_keys(direction, queries, candidate_images, query_images)
            groups: dict[Any, list[int]] = {}
            for i, key in enumerate(keys):
                groups.setdefault(key, []).append(i)
            rest = []
            for members in groups.values():
                if len(members) < 2:
                    rest += members
                    continue
                for start in range(0, len(members), self.batch_size):
                    idx = members[start : start + self.batch_size]
                    batch_images = [images[i] for i in idx] if images is not None else None
                    scores[idx] = self._score_shared([texts[i] for i in idx], batch_images)
        # Longest first, so each batch holds prompts of similar length (less padding); scores go back in place.
        order = sorted(rest, key=lambda i: -len(texts[i][0]["content"][-1]["text"]))
        starts = range(0, len(order), self.batch_size)
        if self.show_progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="GSV", unit="batch")
        for start in starts:
            idx = order[start : start + self.batch_size]
            batch_images = [images[i] for i in idx] if images is not None else None
            scores[idx] = self._score_batch([texts[i] for i in idx], batch_images)

    # ------------------------------------------------------------------ internals

    def _render(self, text: str, with_image: bool) -> str:
        """The prompt text through the chat template, ending with the generation prompt."""
        return render_prompt(self.processor, user_message(text, with_image=with_image))

    def _resolve_answer_ids(self, yes: str, no: str) -> tuple[int, int]:
        """First token of each answer as it is tokenised right after the generation prompt (not in isolation).

        Tokenising the answer alone can differ from what the model generates after the prompt (a leading-space
        marker, a merge with the prompt's last characters), so the answer is tokenised in context and the prompt's
        tokens are stripped.
        """
        probe = self._render(VERIFY_T2I_TEXT_INSTRUCTION.format(candidate="a photo", query="a photo"), False)
        base = self._tokenize(probe)
        first = {}
        for word in (yes, no):
            if not isinstance(word, str) or not word:
                raise ValueError(f"The yes/no answers must be non-empty strings, got {word!r}.")
            ids = self._tokenize(probe + word)
            if ids[: len(base)] != base or len(ids) == len(base):
                raise ValueError(
                    f"Answer {word!r} merges with the end of the generation prompt when tokenised, so its first "
                    "token is not a token the model generates after the prompt; pass another spelling (e.g. with "
                    "or without a leading space)."
                )
            answer = ids[len(base) :]
            if len(answer) > 1:
                logger.warning(
                    "Answer %r is %d tokens (%s); GSV scores its first token only.",
                    word,
                    len(answer),
                    self.tokenizer.convert_ids_to_tokens(answer),
                )
            first[word] = answer[0]
        if first[yes] == first[no]:
            raise ValueError(
                f"The answers {yes!r} and {no!r} start with the same token "
                f"({self.tokenizer.convert_ids_to_tokens(first[yes])!r}); their first-token log-odds would be 0. "
                "Choose answers whose first tokens differ."
            )
        return first[yes], first[no]

    def _tokenize(self, text: str) -> list[int]:
        # The chat template already holds any BOS; HF's apply_chat_template(tokenize=True) also adds no specials.
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _build_prompts(self, queries, candidates, direction, candidate_images, query_images):
        if direction not in _DIRECTIONS:
            raise ValueError(f"`direction` must be one of {_DIRECTIONS}, got {direction!r}.")
        given = {
            name: value
            for name, value in (
                ("queries", queries),
                ("candidates", candidates),
                ("candidate_images", candidate_images),
                ("query_images", query_images),
            )
            if value is not None
        }
        lengths = {name: _check_list(value, name) for name, value in given.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(
                "score() takes one (query, candidate) pair per position, so every list must have the same length; "
                f"got {', '.join(f'{k}={v}' for k, v in lengths.items())}."
            )
        if not self.is_vlm and (candidate_images is not None or query_images is not None):
            which = "candidate_images" if candidate_images is not None else "query_images"
            raise ValueError(
                f"`{which}` was given, but {type(self.processor).__name__} is a text-only tokenizer; image prompts "
                "need a VLM and its processor (AutoModelForImageTextToText + AutoProcessor)."
            )
        if direction == "t2i":
            if query_images is not None:
                raise ValueError("`query_images` is for direction='i2t'; a T2I query is text.")
            if queries is None:
                raise ValueError("T2I verification needs `queries` (the query texts).")
            _check_strings(queries, "queries")
            if candidate_images is not None:
                texts = [user_message(VERIFY_T2I_INSTRUCTION.format(query=q), with_image=True) for q in queries]
                return texts, [open_image(im, f"candidate_images[{i}]") for i, im in enumerate(candidate_images)]
            if candidates is None:
                raise ValueError(
                    "T2I verification needs `candidate_images` (VLM) or `candidates` (the candidate captions)."
                )
            _check_strings(candidates, "candidates")
            prompts = [VERIFY_T2I_TEXT_INSTRUCTION.format(candidate=c, query=q) for q, c in zip(queries, candidates)]
            return [user_message(p) for p in prompts], None
        # i2t
        if not self.is_vlm:
            raise ValueError(
                "I2T verification shows the query image, so it needs a VLM and its processor; "
                f"{type(self.processor).__name__} is a text-only tokenizer."
            )
        if candidate_images is not None:
            raise ValueError("`candidate_images` is for direction='t2i'; I2T candidates are captions.")
        if query_images is None:
            raise ValueError("I2T verification needs `query_images` (one query image per pair).")
        if candidates is None:
            raise ValueError("I2T verification needs `candidates` (the candidate captions).")
        _check_strings(candidates, "candidates")
        texts = [user_message(VERIFY_I2T_INSTRUCTION.format(candidate=c), with_image=True) for c in candidates]
        return texts, [open_image(im, f"query_images[{i}]") for i, im in enumerate(query_images)]

    def _score_batch(self, prompts: list[list[dict]], images: list | None) -> torch.Tensor:
        # Left padding puts every prompt's last token at position -1: one forward, one logits row per pair.
        enc = encode_prompts(self.processor, prompts, [[im] for im in images] if images else None)
        device, dtype = self.model.device, self.model.dtype
        inputs = {
            k: (v.to(device, dtype) if v.is_floating_point() else v.to(device))
            for k, v in enc.items()
            # token_type_ids (some tokenizers emit them) would reach the model only through **kwargs: drop them.
            if isinstance(v, torch.Tensor) and (k in self._params or (self._var_kwargs and k != "token_type_ids"))
        }
        if not self.is_vlm and "position_ids" in self._params:
            # Positions count real tokens only, so a left-padded row is scored as if unpadded (absolute position
            # embeddings included). VLMs are left to compute their own (e.g. Qwen2-VL's multimodal RoPE).
            inputs["position_ids"] = (inputs["attention_mask"].long().cumsum(-1) - 1).clamp(min=0)
        if "logits_to_keep" in self._params:
            inputs["logits_to_keep"] = 1  # only the last position's logits: saves a (batch, seq, vocab) tensor
        with torch.inference_mode():
            logits = self.model(**inputs).logits[:, -1, :]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        return (logprobs[:, self.yes_token_id] - logprobs[:, self.no_token_id]).cpu()

    # Models whose positions are plain 1-D token positions, so a cached prefix can be continued with explicit ones.
    _PREFIX_VLM_TYPES = ("llava",)
    _MIN_SHARED_TOKENS = 4

    def _prefix_sharing_supported(self) -> bool:
        if "past_key_values" not in self._params and not self._var_kwargs:
            return False
        return not self.is_vlm or getattr(self.model.config, "model_type", None) in self._PREFIX_VLM_TYPES

    @staticmethod
    def _query_keys(direction, queries, candidate_images, query_images) -> list[Any]:
        """Which pairs share a prompt prefix: T2I text prompts by query; I2T by query image; T2I images never."""
        if direction == "i2t":
            return [str(im) if isinstance(im, (str, os.PathLike)) else id(im) for im in query_images]
        if candidate_images is not None:  # the candidate image comes first: nothing to share
            return list(range(len(candidate_images)))
        return list(queries)

    def _score_shared(self, prompts: list[list[dict]], images: list | None) -> torch.Tensor:
        """`_score_batch` for the pairs of one query: their common token prefix is run once, then each suffix."""
        enc = encode_prompts(self.processor, prompts, [[im] for im in images] if images else None)
        ids, mask = enc["input_ids"], enc["attention_mask"].bool()
        rows = [ids[i][mask[i]] for i in range(len(prompts))]
        shortest = min(len(r) for r in rows)
        shared = 0  # longest common prefix of the token ids (as trained), one token short of the shortest row
        while shared < shortest - 1 and all(int(r[shared]) == int(rows[0][shared]) for r in rows[1:]):
            shared += 1
        if shared < self._MIN_SHARED_TOKENS:
            return self._score_batch(prompts, images)
        device, dtype = self.model.device, self.model.dtype
        prefix = {"input_ids": rows[0][None, :shared].to(device), "use_cache": True}
        prefix["attention_mask"] = torch.ones_like(prefix["input_ids"])
        for key, value in enc.items():  # the query's image tensors (identical in every row) go with the prefix
            if key not in ("input_ids", "attention_mask") and isinstance(value, torch.Tensor):
                value = value[:1]
                prefix[key] = value.to(device, dtype) if value.is_floating_point() else value.to(device)
        prefix = {k: v for k, v in prefix.items() if k in self._params or (self._var_kwargs and k != "token_type_ids")}
        with torch.inference_mode():
            cache = self.model(**prefix).past_key_values
            cache.batch_repeat_interleave(len(rows))
            # left-padded, so every row's last position is its answer position
            suffix = left_pad([r[shared:].tolist() for r in rows], self.tokenizer)
            suffix_ids, suffix_mask = suffix["input_ids"], suffix["attention_mask"]
            inputs = {
                "input_ids": suffix_ids.to(device),
                "attention_mask": torch.cat([torch.ones(len(rows), shared, dtype=torch.long), suffix_mask], 1).to(
                    device
                ),
                "position_ids": (shared + (suffix_mask.cumsum(-1) - 1).clamp(min=0)).to(device),
                "past_key_values": cache,
            }
            if "logits_to_keep" in self._params:
                inputs["logits_to_keep"] = 1
            logits = self.model(**inputs).logits[:, -1, :]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        return (logprobs[:, self.yes_token_id] - logprobs[:, self.no_token_id]).cpu()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={type(self.model).__name__}, processor={type(self.processor).__name__}, "
            f"vlm={self.is_vlm}, batch_size={self.batch_size}, yes={self.yes!r}->{self.yes_token_id}, "
            f"no={self.no!r}->{self.no_token_id})"
        )


def _check_list(value: Any, name: str) -> int:
    # A bare string is a Sequence too; taking it char by char would silently score nonsense.
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"`{name}` must be a list, got {type(value).__name__}.")
    return len(value)


def _check_strings(values: Sequence[Any], name: str) -> None:
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise TypeError(f"`{name}[{i}]` must be a string, got {type(v).__name__}.")
