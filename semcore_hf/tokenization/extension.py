"""`SIDTokenizerExtension`: the SID structure tokens, and SID <-> token ids exactly as the model generates them."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from semcore_hf._io import atomic_write_text
from semcore_hf.identifiers.sid_format import (
    LEXICAL_SEPARATOR,
    SID_BEGIN,
    SID_END,
    SID_SEP,
    completion_to_sid,
    sid_to_completion,
    split_sid,
)

CONFIG_NAME = "sid_tokenizer_extension.json"
_FORMAT_VERSION = 1
# Two prompts that share nothing: the SID ids must come out the same after both (checked on a sample).
_DEFAULT_PROMPT = "Retrieve the identifier of the matching image."
_CHECK_PROMPT = "query: two dogs play with a red ball on green grass, 3 pm."
_CHECK_SAMPLE = 16
# SIDs spread over the whole list on which the fast pieces path must agree with the spliced template.
_SPREAD_SAMPLE = 64
# Lexical IDs tokenised per text by the pieces path: enough to amortise the per-text cost, short enough to batch.
_PIECES_PER_TEXT = 512

logger = logging.getLogger(__name__)

# A SID exactly as `join_sid` writes it: a global ID without "|" and without surrounding whitespace, " | ", then
# non-empty phrases without "," or surrounding whitespace joined by ", ". For such a SID `split_sid` changes nothing.
_CANONICAL_SID = re.compile(
    r"((?:[^|\s](?:[^|]*[^|\s])?)?) \| ((?:[^,\s](?:[^,]*[^,\s])?(?:, [^,\s](?:[^,]*[^,\s])?)*)?)"
)


def sid_pieces(sid: str) -> tuple[str, str]:
    """`(global ID, lexical ID)` of `sid` as its completion writes them: `split_sid`, the phrases joined again.

    One regular-expression match for a SID in the form `join_sid` writes (all of them, for built indexes), which a
    million SIDs need in place of a million `split_sid` calls; any other SID goes through `split_sid`.
    """
    m = _CANONICAL_SID.fullmatch(sid)
    if m is not None:
        return m[1], m[2]
    global_id, phrases = split_sid(sid)
    return global_id, LEXICAL_SEPARATOR.join(phrases)


def _get_tokenizer(tokenizer_or_processor: Any) -> Any:
    """The text tokenizer of a tokenizer or of a `ProcessorMixin` (which holds it as `.tokenizer`)."""
    tok = getattr(tokenizer_or_processor, "tokenizer", None)
    return tok if tok is not None else tokenizer_or_processor


def _chat_template(tokenizer_or_processor: Any) -> str | None:
    template = getattr(tokenizer_or_processor, "chat_template", None)
    if template is None:
        template = getattr(_get_tokenizer(tokenizer_or_processor), "chat_template", None)
    return template


FINGERPRINT_VERSION = "v2"


def tokenizer_fingerprint(tokenizer_or_processor: Any) -> str:
    """sha256 over everything that decides how a SID is tokenised: vocabulary, pipeline, added tokens, chat template.

    A SID's token ids depend on more than the vocabulary: the normalizer, the pre-tokenizer, the model's merges, the
    added tokens (and their `special` / `lstrip` / `normalized` flags), the post-processor (BOS) and the chat
    template that renders the prompt in front of the SID. A fast tokenizer's backend JSON holds all of them but the
    template; the padding and truncation settings it also stores do not change token ids and are left out (calling
    the tokenizer with `padding=True` rewrites them). Slow tokenizers contribute their class and scalar init
    arguments instead of a backend.

    Returns:
        `str`: ``"v2:"`` followed by 64 hexadecimal characters.
    """
    tok = _get_tokenizer(tokenizer_or_processor)
    parts: dict[str, Any] = {"vocab": sorted(tok.get_vocab().items(), key=lambda kv: (kv[1], kv[0]))}
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:
        spec = json.loads(backend.to_str())
        spec.pop("padding", None)
        spec.pop("truncation", None)
        parts["backend"] = spec
    else:
        parts["class"] = type(tok).__name__
        init = getattr(tok, "init_kwargs", {}) or {}
        parts["init"] = {k: v for k, v in sorted(init.items()) if isinstance(v, (str, int, float, bool, type(None)))}
    parts["special"] = {k: str(v) for k, v in sorted((tok.special_tokens_map or {}).items())}
    parts["chat_template"] = _chat_template(tokenizer_or_processor)
    payload = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return f"{FINGERPRINT_VERSION}:" + hashlib.sha256(payload.encode("utf-8")).hexdigest()


def legacy_vocabulary_fingerprint(tokenizer_or_processor: Any) -> str:
    """The format-1 fingerprint (vocabulary only) that tries saved by semcore_hf 0.1.0.dev0 recorded."""
    vocab = _get_tokenizer(tokenizer_or_processor).get_vocab()
    payload = json.dumps(sorted(vocab.items(), key=lambda kv: (kv[1], kv[0])), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class SIDTokenizerExtension:
    """Adds the SID structure tokens to a tokenizer and maps SIDs to and from the token ids a model generates.

    A SID ``"dog park | brown puppy, red frisbee"`` is trained (and generated) as the completion
    ``<sid>dog park<sid_sep>brown puppy, red frisbee</sid>``. The three structure tokens are added as special tokens,
    so the tokenizer splits on them and a SID's token ids do not depend on the prompt before it.

    Args:
        begin (`str`, *optional*, defaults to `"<sid>"`):
            Token opening a SID.
        sep (`str`, *optional*, defaults to `"<sid_sep>"`):
            Token between the global ID and the lexical ID.
        end (`str`, *optional*, defaults to `"</sid>"`):
            Token closing a SID; generation stops on it and the SID trie ends every sequence with it.
        identifier_tokens (`list[str]`, *optional*):
            Further tokens the identifiers are made of, added the same way: atomic identifiers (one new token per
            target, `SIDConfig(id_kind="atomic")`) need them; SemCORE's SIDs are plain words and need none.
        prompt_format (`int`, *optional*):
            The version of the task prompts (`semcore_hf.data.prompts.PROMPT_FORMAT`) the model is trained with;
            recorded next to the tokenizer so that inference can refuse to render prompts the model never saw.

    Example:

    ```python
    >>> ext = SIDTokenizerExtension()
    >>> ext.apply(tokenizer, model)  # adds the tokens, resizes the embeddings
    >>> ids = ext.encode(["dog park | brown puppy, red frisbee"], tokenizer)[0]
    >>> ext.decode(ids, tokenizer)
    'dog park | brown puppy, red frisbee'
    ```
    """

    def __init__(
        self,
        begin: str = SID_BEGIN,
        sep: str = SID_SEP,
        end: str = SID_END,
        prompt_format: int | None = None,
        identifier_tokens: Sequence[str] | None = None,
    ) -> None:
        if len({begin, sep, end}) != 3 or not all(isinstance(t, str) and t for t in (begin, sep, end)):
            raise ValueError(f"begin, sep and end must be three different non-empty strings, got {(begin, sep, end)}")
        self.begin, self.sep, self.end = begin, sep, end
        self.prompt_format = None if prompt_format is None else int(prompt_format)
        self.identifier_tokens = list(dict.fromkeys(identifier_tokens or []))
        if set(self.identifier_tokens) & set(self.tokens):
            raise ValueError("identifier_tokens must not repeat the structure tokens.")

    @property
    def tokens(self) -> list[str]:
        """The structure tokens ``[begin, sep, end]``."""
        return [self.begin, self.sep, self.end]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(begin={self.begin!r}, sep={self.sep!r}, end={self.end!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SIDTokenizerExtension) and self.tokens == other.tokens

    # ------------------------------------------------------------------ tokenizer / model surgery
    def apply(self, tokenizer_or_processor: Any, model: Any | None = None) -> list[int]:
        """Add the structure tokens as special tokens and, if `model` is given, grow its embeddings to match.

        Idempotent: tokens already present are not added again and the embeddings are only ever grown.

        Args:
            tokenizer_or_processor (`PreTrainedTokenizerBase` or `ProcessorMixin`):
                The tokenizer, or a processor holding one as `.tokenizer` (LLaVA, Idefics3, ...). Modified in place.
            model (`PreTrainedModel`, *optional*, defaults to `None`):
                A causal LM or VLM whose input (and tied/untied output) embeddings are resized to `len(tokenizer)`.

        Returns:
            `list[int]`: The ids of ``[begin, sep, end]``.
        """
        tok = _get_tokenizer(tokenizer_or_processor)
        vocab = tok.get_vocab()
        special = set(tok.all_special_tokens)
        missing = [t for t in [*self.tokens, *self.identifier_tokens] if t not in vocab or t not in special]
        if missing:
            tok.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)
        if model is not None:
            emb = model.get_input_embeddings()
            if emb is None:
                raise ValueError(f"{type(model).__name__} has no input embeddings to resize.")
            if emb.num_embeddings < len(tok):
                model.resize_token_embeddings(len(tok))
        return self.token_ids(tok)

    def token_ids(self, tokenizer_or_processor: Any) -> list[int]:
        """The ids of ``[begin, sep, end]`` in `tokenizer_or_processor`; raises if `apply` was not called on it."""
        tok = _get_tokenizer(tokenizer_or_processor)
        vocab = tok.get_vocab()
        missing = [t for t in self.tokens if t not in vocab]
        if missing:
            raise ValueError(
                f"The tokenizer ({type(tok).__name__}) lacks the SID structure tokens {missing}; call "
                f"`SIDTokenizerExtension.apply(tokenizer, model)` first (and save the tokenizer with the model)."
            )
        return [vocab[t] for t in self.tokens]

    def fingerprint(self, tokenizer_or_processor: Any) -> str:
        """`tokenizer_fingerprint`: a `SIDTrie` records it to refuse a tokenizer that tokenises SIDs differently.

        Args:
            tokenizer_or_processor (`PreTrainedTokenizerBase` or `ProcessorMixin`): The tokenizer to fingerprint.

        Returns:
            `str`: ``"v2:"`` and 64 hexadecimal characters.
        """
        return tokenizer_fingerprint(tokenizer_or_processor)

    # ------------------------------------------------------------------ SID <-> ids
    def completion(self, sid: str) -> str:
        """The completion text of `sid` (``<sid>global<sid_sep>lexical</sid>``)."""
        return sid_to_completion(sid, self.begin, self.sep, self.end)

    def encode(
        self,
        sids: Sequence[str],
        tokenizer_or_processor: Any,
        prompt: str | None = None,
        batch_size: int = 8192,
    ) -> list[list[int]]:
        """Token ids of each SID exactly as the model generates them after the prompt, ending with `end`.

        They are computed the way TRL's `SFTTrainer` tokenises prompt-completion data: with a chat template, the
        prompt is rendered with the generation prompt (``P``) and the prompt followed by the assistant completion
        (``P + C``); the completion ids are the suffix of ``P + C`` after ``P``, cut after the `end` token (what
        follows, such as an end-of-turn marker, is never generated under the SID constraint). Without a chat
        template, the plain prompt and ``prompt + completion + eos`` are tokenised with the tokenizer's special
        tokens (BOS).
        The template is rendered exactly for a sample of SIDs; the bulk is rendered by splicing the completion into
        the verified template text and tokenised in batches, and the sample must match the exact path. The suffix is
        also checked on the sample to be independent of the prompt. With a fast tokenizer that cuts text at the
        structure tokens (the tokens `apply` adds), the bulk is tokenised piece by piece instead: each distinct
        global ID once and the lexical IDs many to a text (about 7x faster for a million SIDs), and it must agree
        with the spliced path on SIDs spread over the list, else the spliced path is used.

        Args:
            sids (`Sequence[str]`):
                SID strings (``"global words | phrase, phrase"``).
            tokenizer_or_processor (`PreTrainedTokenizerBase` or `ProcessorMixin`):
                The tokenizer (or processor) the model is trained with, after `apply`.
            prompt (`str`, *optional*, defaults to `None`):
                A user prompt to tokenise in front of the completions; any prompt gives the same ids.
            batch_size (`int`, *optional*, defaults to `8192`):
                Texts tokenised per batch call.

        Returns:
            `list[list[int]]`: One list of ids per SID, each ending with the id of `end`.

        Raises:
            `ValueError`: If the structure tokens are missing, a SID is malformed, or the completion ids depend on
            the prompt (the tokenizer merges across the prompt boundary).
        """
        if isinstance(sids, str):
            raise TypeError("`sids` must be a sequence of SID strings, not a single string.")
        tok = _get_tokenizer(tokenizer_or_processor)
        end_id = self.token_ids(tok)[2]
        split = [sid_pieces(s) for s in sids]  # every SID is checked before anything is tokenised
        if not split:
            return []
        template = _chat_template(tokenizer_or_processor)
        prompt = _DEFAULT_PROMPT if prompt is None else prompt
        sample = list(range(min(_CHECK_SAMPLE, len(split))))
        completions = [self.completion(sids[i]) for i in sample]  # all of them only where the bulk needs them

        exact = [self._encode_exact(tok, template, prompt, completions[i], end_id, sids[i]) for i in sample]
        other = [self._encode_exact(tok, template, _CHECK_PROMPT, completions[i], end_id, sids[i]) for i in sample]
        for i, a, b in zip(sample, exact, other):
            if a != b:
                raise ValueError(
                    f"The token ids of SID {sids[i]!r} depend on the prompt in front of it ({a} vs {b}); the "
                    f"tokenizer merges across the prompt boundary. Make sure {self.begin!r} is an added special "
                    f"token (call `SIDTokenizerExtension.apply`)."
                )
        if len(split) <= len(sample):
            return exact

        head, tail = self._splice_template(tok, template, prompt, completions)
        if head is None:  # the template does not render completions verbatim: exact path for every SID
            return [self._encode_exact(tok, template, prompt, self.completion(s), end_id, s) for s in sids]
        out = self._encode_pieces(tok, split) if self._splits_at_structure_tokens(tok) else None
        if out is not None:
            # the pieces path must agree with the spliced one on SIDs spread over the whole list, not only the head
            step = max(1, len(sids) // _SPREAD_SAMPLE)
            spread = list(range(0, len(sids), step))[:_SPREAD_SAMPLE] + [len(sids) - 1]
            spread_sids = [sids[i] for i in spread]
            spread_completions = [self.completion(s) for s in spread_sids]
            check = self._encode_spliced(tok, template, prompt, head, tail, spread_completions, spread_sids, end_id)
            if any(out[i] != ids for i, ids in zip(spread, check)):
                logger.debug("Tokenising SID pieces disagrees with the spliced template; tokenising whole texts.")
                out = None
        if out is None:
            completions = [self.completion(s) for s in sids]
            out = self._encode_spliced(tok, template, prompt, head, tail, completions, sids, end_id, batch_size)
        for i, ids in zip(sample, exact):
            if out[i] != ids:
                raise ValueError(
                    f"Internal check failed: batched tokenisation of SID {sids[i]!r} gave {out[i]}, the chat "
                    f"template path gave {ids}."
                )
        return out

    def _encode_spliced(
        self,
        tok: Any,
        template: str | None,
        prompt: str,
        head: str,
        tail: str,
        completions: Sequence[str],
        sids: Sequence[str],
        end_id: int,
        batch_size: int = 8192,
    ) -> list[list[int]]:
        """Every completion spliced into the rendered conversation, tokenised in batches, cut after the prompt."""
        prompt_ids = self._prompt_ids(tok, template, prompt)
        add_special = template is None
        out: list[list[int]] = []
        for start in range(0, len(completions), batch_size):
            texts = [head + c + tail for c in completions[start : start + batch_size]]
            batch = tok(texts, add_special_tokens=add_special)["input_ids"]
            for j, ids in enumerate(batch):
                out.append(self._suffix(prompt_ids, ids, end_id, sids[start + j]))
        return out

    def _splits_at_structure_tokens(self, tok: Any) -> bool:
        """Whether `tok` is a fast tokenizer that cuts text at the structure tokens exactly where they occur.

        The `tokenizers` pipeline extracts added tokens that are not normalised before normalising, pre-tokenising
        and tokenising each piece between them on its own; unless a token strips the whitespace next to it or only
        matches whole words, the ids of the text between two structure tokens depend on nothing around them.
        """
        if getattr(tok, "backend_tokenizer", None) is None:
            return False
        added = {t.content: t for t in getattr(tok, "added_tokens_decoder", {}).values()}
        for content in self.tokens:
            t = added.get(content)
            if t is None or t.normalized or t.single_word or t.lstrip or t.rstrip:
                return False
        return True

    def _encode_pieces(self, tok: Any, split: Sequence[tuple[str, str]]) -> list[list[int]] | None:
        """SID ids from the pieces between structure tokens: each distinct global ID once, lexical IDs joined.

        ``<sid>global<sid_sep>lexical</sid>`` is cut by the tokenizer at its three structure tokens
        (`_splits_at_structure_tokens`), so its ids are those of ``<sid>global`` followed by those of
        ``<sid_sep>lexical</sid>``. Global IDs repeat (one per cluster) and are tokenised once each; the lexical
        parts are tokenised many SIDs per text, ``<sid_sep>a</sid><sid_sep>b</sid>...``, which removes the
        per-text overhead that dominates short texts. `split` holds the `sid_pieces` of the SIDs. `None` when a
        piece holds a structure token's text itself.
        """
        backend = tok.backend_tokenizer
        if backend.truncation is not None or backend.padding is not None:
            from tokenizers import Tokenizer

            backend = Tokenizer.from_str(backend.to_str())  # a copy: the caller's settings stay as they are
            backend.no_truncation()
            backend.no_padding()
        encode = getattr(backend, "encode_batch_fast", backend.encode_batch)  # tokenizers < 0.20 lacks the former
        begin_id, sep_id, end_id = self.token_ids(tok)
        globals_ = list(dict.fromkeys(g for g, _ in split))
        if any(t in g for g in globals_ for t in self.tokens):
            return None
        prefix = {}
        for g, enc in zip(globals_, encode([self.begin + g + self.sep for g in globals_], add_special_tokens=False)):
            ids = enc.ids
            if ids[:1] != [begin_id] or ids[-1:] != [sep_id] or begin_id in ids[1:-1] or sep_id in ids[1:-1]:
                return None
            prefix[g] = ids[:-1]
        lexical = [lex for _, lex in split]
        chunks, bounds = [], range(0, len(split), _PIECES_PER_TEXT)
        for a in bounds:
            text = "".join(self.sep + lex + self.end for lex in lexical[a : a + _PIECES_PER_TEXT])
            if any(text.count(t) != len(lexical[a : a + _PIECES_PER_TEXT]) for t in (self.sep, self.end)):
                return None  # a lexical ID holds a structure token's text: it could not be cut apart
            if self.begin in text:
                return None
            chunks.append(text)
        out: list[list[int]] = []
        for a, enc in zip(bounds, encode(chunks, add_special_tokens=False)):
            ids, pos = enc.ids, 0
            for g, _ in split[a : a + _PIECES_PER_TEXT]:
                if pos >= len(ids) or ids[pos] != sep_id:
                    return None
                try:
                    stop = ids.index(end_id, pos) + 1
                except ValueError:
                    return None
                out.append(prefix[g] + ids[pos:stop])
                pos = stop
            if pos != len(ids):
                return None
        return out

    def _prompt_ids(self, tok: Any, template: str | None, prompt: str) -> list[int]:
        if template is None:
            return list(tok(prompt)["input_ids"])
        msgs = [{"role": "user", "content": prompt}]
        return list(
            tok.apply_chat_template(msgs, chat_template=template, add_generation_prompt=True, tokenize=True,
                                    return_dict=True)["input_ids"]
        )  # fmt: skip

    def _full_ids(self, tok: Any, template: str | None, prompt: str, completion: str) -> list[int]:
        if template is None:  # TRL appends EOS to non-conversational completions
            eos = tok.eos_token or ""
            return list(tok(prompt + completion + eos)["input_ids"])
        msgs = [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
        return list(
            tok.apply_chat_template(msgs, chat_template=template, tokenize=True, return_dict=True)["input_ids"]
        )

    def _encode_exact(
        self, tok: Any, template: str | None, prompt: str, completion: str, end_id: int, sid: str
    ) -> list[int]:
        return self._suffix(
            self._prompt_ids(tok, template, prompt), self._full_ids(tok, template, prompt, completion), end_id, sid
        )

    def _suffix(self, prompt_ids: list[int], full_ids: list[int], end_id: int, sid: str) -> list[int]:
        n = len(prompt_ids)
        if list(full_ids[:n]) != prompt_ids:
            raise ValueError(
                f"The tokenised prompt is not a prefix of the tokenised prompt + completion for SID {sid!r}, so the "
                f"ids generated after the prompt are ill-defined (the chat template renders the prompt differently "
                f"alone, or tokens merge across the boundary)."
            )
        suffix = list(full_ids[n:])
        try:
            cut = suffix.index(end_id)
        except ValueError:
            raise ValueError(
                f"The completion of SID {sid!r} does not tokenise to a sequence ending in {self.end!r}."
            ) from None
        return suffix[: cut + 1]

    def _splice_template(
        self, tok: Any, template: str | None, prompt: str, completions: list[str]
    ) -> tuple[str | None, str]:
        """Text before and after the completion in the rendered conversation, if the template renders it verbatim."""
        if template is None:
            return prompt, (tok.eos_token or "")
        placeholder = "\x00SEMCORE_SID_PLACEHOLDER\x00"

        def render(completion: str) -> str:
            msgs = [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
            return tok.apply_chat_template(msgs, chat_template=template, tokenize=False)

        text = render(placeholder)
        if text.count(placeholder) != 1:
            return None, ""
        head, tail = text.split(placeholder)
        if any(render(c) != head + c + tail for c in completions):
            return None, ""
        return head, tail

    def decode(self, token_ids: Sequence[int] | Any, tokenizer_or_processor: Any) -> str | None:
        """The SID string of generated ids (prompt excluded or not), or `None` if they hold no complete SID.

        Args:
            token_ids (`Sequence[int]` or `torch.Tensor`): Generated ids.
            tokenizer_or_processor (`PreTrainedTokenizerBase` or `ProcessorMixin`): The tokenizer used to generate.

        Returns:
            `str` or `None`
        """
        if hasattr(token_ids, "tolist"):
            token_ids = token_ids.tolist()
        text = _get_tokenizer(tokenizer_or_processor).decode(
            list(token_ids), skip_special_tokens=False, clean_up_tokenization_spaces=False
        )
        return completion_to_sid(text, self.begin, self.sep, self.end)

    def batch_decode(self, sequences: Sequence[Sequence[int]] | Any, tokenizer_or_processor: Any) -> list[str | None]:
        """`decode` for each row of `sequences`."""
        if hasattr(sequences, "tolist"):
            sequences = sequences.tolist()
        return [self.decode(s, tokenizer_or_processor) for s in sequences]

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        out = {"begin": self.begin, "sep": self.sep, "end": self.end, "format_version": _FORMAT_VERSION}
        if self.prompt_format is not None:
            out["prompt_format"] = self.prompt_format
        if self.identifier_tokens:
            out["identifier_tokens"] = self.identifier_tokens
        return out

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        """Write `sid_tokenizer_extension.json` into `save_directory` (next to the tokenizer files).

        Args:
            save_directory (`str` or `os.PathLike`): Directory, created if missing.
        """
        atomic_write_text(Path(save_directory) / CONFIG_NAME, json.dumps(self.to_dict(), indent=2, sort_keys=True))

    @classmethod
    def from_pretrained(cls, pretrained_directory: str | os.PathLike) -> SIDTokenizerExtension:
        """Load the extension saved by `save_pretrained`.

        Args:
            pretrained_directory (`str` or `os.PathLike`): Directory holding `sid_tokenizer_extension.json`.
        """
        path = Path(pretrained_directory) / CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(
                f"No {CONFIG_NAME} in {pretrained_directory}; save it with `SIDTokenizerExtension.save_pretrained`."
            )
        cfg = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            begin=cfg["begin"],
            sep=cfg["sep"],
            end=cfg["end"],
            prompt_format=cfg.get("prompt_format"),
            identifier_tokens=cfg.get("identifier_tokens"),
        )
