"""`SemCORERetriever`: queries in, ranked targets out, through trie-constrained beam search and GSV."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from semcore_hf.data.prompts import PROMPT_FORMAT, i2t_prompt, t2i_prompt
from semcore_hf.decoding import SIDTrie
from semcore_hf.decoding.search import sid_beam_search
from semcore_hf.identifiers import SIDIndex
from semcore_hf.modeling import encode_prompts, get_tokenizer, is_vlm, open_image
from semcore_hf.modeling.precision import autocast_inference, resolve_autocast_dtype
from semcore_hf.tokenization import SIDTokenizerExtension

logger = logging.getLogger(__name__)

_EXTENSION_FILE = "sid_tokenizer_extension.json"
_DIRECTIONS = ("t2i", "i2t")
# Targets of a T2I index are images, of an I2T index captions (SIDIndex.target_modality).
_QUERY_MODALITY = {"t2i": "text", "i2t": "image"}
_TARGET_MODALITY = {"t2i": "image", "i2t": "text"}


def _is_image(obj: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, Image.Image)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
    return value


@dataclass
class SIDHits:
    """The SIDs the constrained search found for one query, best first.

    Attributes:
        rows (`list[int]`): SID rows (positions in `SIDIndex.sids`).
        scores (`list[float]`): the ranking score of each SID: its log-probability per token (`score="mean"`) or
            in total (`"total"`).
        exact (`bool`): the whole list is provably the exhaustive top list for this score.
        certified (`int`): how many of the first SIDs are provably right (their score is at least that of any
            prefix the search pruned): rank `i < certified` holds the `i`-th best SID of the whole trie.
        num_beams (`int`): the beam count that produced it (after widening).
    """

    rows: list[int]
    scores: list[float]
    exact: bool
    certified: int
    num_beams: int


class SemCORERetriever:
    """Generative cross-modal retrieval with a SID-trained (M)LLM.

    For every query the model generates SIDs under a trie of all valid SIDs and ranks them by their **log-probability
    per token** (`score="mean"`, the default) or their total log-probability `log P(sid | prompt)` (`"total"`). The
    search is exact for either: it certifies which ranks no pruned prefix could beat and, where the first `certify`
    ranks (default: the first) are not certified, searches again with twice the beams (up to `max_num_beams`); every
    result says whether its rank is certified (`"exact"`). Each SID expands to its targets (a
    collision group shares one SID and one generation score), and optionally Generative Semantic Verification (GSV)
    re-scores the candidates with the model's own yes/no likelihood, fused with the generation score as
    `semcore_hf.retrieval.fusion` documents.

    Retrieval depends only on the model, the prompt and the trie: the checkpoint's generation config is never read,
    prompts are encoded exactly as TRL encoded them in training (`semcore_hf.modeling.encode_prompts`), and images go
    through `semcore_hf.modeling.open_image` (transparency on white, as in training).

    Text queries are text-to-image (or text-to-anything the index holds) and run on any causal LM or VLM; image
    queries (PIL images) are image-to-text and need a VLM with its processor.

    Args:
        model (`PreTrainedModel`): a causal LM or `AutoModelForImageTextToText` VLM trained on SIDs.
        processing_class (`PreTrainedTokenizerBase` or `ProcessorMixin`): its tokenizer (or processor), holding
            the SID structure tokens and a chat template.
        index (`SIDIndex`): the targets of this direction and their SIDs.
        extension (`SIDTokenizerExtension`, *optional*): the structure tokens (default ones if omitted).
        trie (`SIDTrie`, *optional*): a prebuilt trie of `index.sids` for this tokenizer; built if omitted.
        gsv (`GSVScorer`, *optional*): enables GSV re-ranking in `retrieve` (`gsv_weight=...`).
        candidate_texts (`Mapping[str, str]`, *optional*): target id -> text shown to GSV (the caption of a
            candidate image for text-only T2I, the candidate caption for I2T).
        candidate_images (`Mapping[str, Any]`, *optional*): target id -> image (PIL or path) shown to GSV for T2I
            with a VLM.
        gallery (`Sequence[str]`, *optional*): restrict retrieval to these target ids (e.g. the 1K test images of
            Flickr30K's Karpathy split while the index also holds the training images). The trie then holds only
            their SIDs, and collision groups expand only to gallery members.
        score (`str`, *optional*, defaults to `"mean"`): what SIDs are ranked by: `"mean"`, the log-probability per
            token of the SID, or `"total"`, its log-probability. SIDs differ in length (one to several keyphrases)
            and the total favours short, frequent ones: on the demo (SmolLM2-135M, Tux Paint stamps) ranking the
            same model's candidates by the total instead of the mean cost 8.6 points of Recall@1 (71.1 vs 79.7), a
            generic short SID landing second for most queries. The search is exact (certified) for either score.
        autocast (`str` or `torch.dtype`, *optional*): `"bf16"` (or `"fp16"`) runs the model body under
            `torch.autocast` with the output head in fp32 (`semcore_hf.modeling.autocast_inference`), for the search
            and for GSV; faster on GPUs and on CPUs with AVX512-BF16 / AMX. The search stays exact for the scores
            the model computes so; those differ from fp32 scores by the body's rounding. `None` (default): fp32.

    Example:

    ```python
    >>> retriever = SemCORERetriever.from_pretrained("outputs/t2i_model", index="outputs/sids/t2i_index")
    >>> retriever.retrieve(["a brown dog catches a frisbee"], k=5)[0][0]
    {'target_id': '1234.jpg', 'sid': 'dog frisbee | brown dog, catches', 'score': -0.21, 'exact': True, ...}
    ```
    """

    def __init__(
        self,
        model: Any,
        processing_class: Any,
        index: SIDIndex,
        extension: SIDTokenizerExtension | None = None,
        trie: SIDTrie | None = None,
        gsv: Any = None,
        candidate_texts: Mapping[str, str] | None = None,
        candidate_images: Mapping[str, Any] | None = None,
        gallery: Sequence[str] | None = None,
        score: str = "mean",
        autocast: str | torch.dtype | None = None,
    ) -> None:
        from semcore_hf.decoding.search import SCORES

        if score not in SCORES:
            raise ValueError(f"`score` must be one of {SCORES}, got {score!r}.")
        self.score = score
        self.autocast = resolve_autocast_dtype(autocast)
        if gsv is not None and getattr(gsv, "autocast", None) is None:
            gsv.autocast = self.autocast  # verification runs as the search does
        self.model = model.eval()
        self.processing_class = processing_class
        self.tokenizer = get_tokenizer(processing_class)
        self.is_vlm = is_vlm(processing_class)
        self.index = index
        self.extension = extension or SIDTokenizerExtension()
        self.end_token_id = self.extension.token_ids(self.tokenizer)[2]
        if not (getattr(processing_class, "chat_template", None) or getattr(self.tokenizer, "chat_template", None)):
            raise ValueError(
                f"{type(processing_class).__name__} has no chat template; SemCORE prompts are rendered with "
                "`apply_chat_template(..., add_generation_prompt=True)` exactly as in training."
            )
        out_emb = model.get_output_embeddings()
        vocab_size = out_emb.weight.shape[0] if out_emb is not None else len(self.tokenizer)
        self.gallery = None
        rows = None
        if gallery is not None:
            self.gallery = {str(t) for t in gallery}
            positions = {t: i for i, t in enumerate(index.target_ids)}
            unknown = sorted(t for t in self.gallery if t not in positions)
            if unknown:
                raise ValueError(f"{len(unknown)} gallery target(s) are not in the index, e.g. {unknown[:3]}.")
            if not self.gallery:
                raise ValueError("The gallery is empty: pass at least one target id (or gallery=None for all).")
            rows = sorted({int(index.target_sid[positions[t]]) for t in self.gallery})
        if trie is None:
            if rows is None:
                trie = SIDTrie.from_sids(index.sids, processing_class, self.extension, vocab_size=vocab_size)
            else:
                seqs = self.extension.encode([index.sids[r] for r in rows], processing_class)
                fingerprint = self.extension.fingerprint(processing_class)
                trie = SIDTrie.build(seqs, vocab_size, sid_rows=rows, tokenizer_fingerprint=fingerprint)
        else:
            trie.check_tokenizer(processing_class)
            expected = index.num_sids if rows is None else len(rows)
            if trie.num_sids != expected:
                raise ValueError(
                    f"The trie holds {trie.num_sids} SIDs but the index (gallery) {expected}: rebuild the trie from "
                    "this index (`SIDTrie.from_sids(index.sids, tokenizer)`)."
                )
        self.trie = trie.to(self._device)
        self.gsv = gsv
        self.candidate_texts = dict(candidate_texts or {})
        self.candidate_images = dict(candidate_images or {})
        self._pad_token_id = self.tokenizer.pad_token_id
        if self._pad_token_id is None:
            self._pad_token_id = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0

    @property
    def num_targets(self) -> int:
        """How many targets `retrieve` ranks: the gallery's size, else the whole index."""
        return len(self.index) if self.gallery is None else len(self.gallery)

    @property
    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    @classmethod
    def from_pretrained(
        cls,
        model_or_path: Any,
        index: SIDIndex | str | os.PathLike | None = None,
        *,
        processing_class: Any = None,
        model_kind: str = "auto",
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        gsv: bool = False,
        gsv_batch_size: int = 16,
        revision: str | None = None,
        token: str | bool | None = None,
        **kwargs: Any,
    ) -> SemCORERetriever:
        """Load a trained model (directory or Hub id, or an instance) and a `SIDIndex` (directory, Hub id or object).

        Args:
            model_or_path (`str`, `os.PathLike` or `PreTrainedModel`): the SID-trained model: a local folder or a
                Hub id (`semcore_hf.hub.push_trained_model`). It holds the tokenizer/processor with the SID tokens
                and the `SIDTokenizerExtension`; a LoRA adapter is applied to its base and merged
                (`semcore_hf.modeling.load_trained_model`).
            index (`SIDIndex`, `str` or `os.PathLike`, *optional*): the index of this direction's targets (object,
                folder or Hub id); defaults to the model's own `sid_index/` (`semcore-hf train --sid_index`, or a
                pushed model).
            processing_class (*optional*): needed when `model_or_path` is a model instance.
            model_kind (`str`, *optional*, defaults to `"auto"`): `"causal_lm"`, `"image_text_to_text"` or `"auto"`.
            device (`str` or `torch.device`, *optional*): defaults to CUDA when available, else CPU.
            dtype (`torch.dtype` or `str`, *optional*): e.g. `torch.bfloat16` on GPU.
            gsv (`bool`, *optional*, defaults to `False`): build a `GSVScorer` on the same model.
            gsv_batch_size (`int`, *optional*, defaults to 16): pairs per GSV forward pass.
            revision (`str`, *optional*), token (`str` or `bool`, *optional*): of the model's Hub repo.
            **kwargs: passed to the constructor (`candidate_texts`, `candidate_images`, `gallery`, `trie`).
        """
        from semcore_hf.hub import INDEX_SUBFOLDER, model_snapshot
        from semcore_hf.modeling import load_trained_model

        extension = kwargs.pop("extension", None)
        if isinstance(model_or_path, (str, os.PathLike)):
            path = str(model_snapshot(model_or_path, revision=revision, token=token))
            model, processing_class, _ = load_trained_model(
                path, model_kind, **({"dtype": dtype} if dtype is not None else {})
            )
            if index is None:
                index = os.path.join(path, INDEX_SUBFOLDER)
                if not os.path.isdir(index):
                    raise ValueError(
                        f"{model_or_path} holds no {INDEX_SUBFOLDER}/: pass the index of its targets (`index=`)."
                    )
            if extension is None:
                # `trl sft` saves no extension: an adapter trained on a local SID-ready base finds it there
                for folder in (path, *_adapter_base_folders(path)):
                    if os.path.isfile(os.path.join(folder, _EXTENSION_FILE)):
                        extension = SIDTokenizerExtension.from_pretrained(folder)
                        break
            if extension is not None and extension.prompt_format not in (None, PROMPT_FORMAT):
                raise ValueError(
                    f"{path} was trained with task prompts of format {extension.prompt_format}, but this version of "
                    f"semcore_hf renders format {PROMPT_FORMAT}: the model would see token ids it was never trained "
                    "on. Retrain it (or use the semcore_hf release it was trained with)."
                )
        else:
            model = model_or_path
            if processing_class is None:
                raise ValueError("Pass `processing_class` (tokenizer or processor) with a model instance.")
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model.to(device)
        if index is None:
            raise ValueError("Pass the SIDIndex of the targets (`index=`) with a model instance.")
        if not isinstance(index, SIDIndex):
            index = SIDIndex.from_pretrained(str(index))
        scorer = None
        if gsv:
            from semcore_hf.verification import GSVScorer

            scorer = GSVScorer(model, processing_class, batch_size=gsv_batch_size)
        return cls(model, processing_class, index, extension=extension, gsv=scorer, **kwargs)

    def add(self, target_ids: Sequence[Any], texts: Sequence[str], embedder: Any = None) -> list[str]:
        """Add targets to a corpus that grew after training, without re-clustering or retraining.

        `SIDIndex.add` assigns each new target to its nearest centroid and gives it a lexical ID; the new SIDs are
        inserted into the trie (and the gallery, if one is set), so `retrieve` can return them at once.

        Args:
            target_ids (`Sequence`): ids of the new targets.
            texts (`Sequence[str]`): one text per target (e.g. its generated caption).
            embedder (`SentenceTransformer`, *optional*): the index's embedder (loaded from its config if omitted).

        Returns:
            `list[str]`: the SID of each new target.
        """
        before = self.index.num_sids
        sids = self.index.add(list(target_ids), list(texts), embedder=embedder)
        new_rows = list(range(before, self.index.num_sids))
        if new_rows:
            seqs = self.extension.encode([self.index.sids[r] for r in new_rows], self.processing_class)
            self.trie = self.trie.insert(seqs, new_rows).to(self._device)
        if self.gallery is not None:
            self.gallery.update(str(t) for t in target_ids)
        return sids

    # ------------------------------------------------------------------ inputs
    def _check_queries(self, queries: Any, direction: str | None) -> tuple[list[Any], str]:
        if isinstance(queries, (str, bytes)) or _is_image(queries):
            raise TypeError("`queries` must be a list of queries (wrap a single query in a list).")
        queries = list(queries)
        if not queries:
            return queries, direction or "t2i"
        inferred = _infer_direction(queries)
        if direction is None:
            direction = inferred
        elif direction not in _DIRECTIONS:
            raise ValueError(f"`direction` must be one of {_DIRECTIONS}, got {direction!r}.")
        elif direction != inferred:
            raise ValueError(
                f"direction={direction!r} takes {_QUERY_MODALITY[direction]} queries, but the queries are "
                f"{_QUERY_MODALITY[inferred]}s."
            )
        if direction == "t2i":
            empty = [i for i, q in enumerate(queries) if not q.strip()]
            if empty:
                raise ValueError(f"Query text(s) at position(s) {empty[:10]} are empty; every query needs text.")
        if direction == "i2t" and not self.is_vlm:
            raise ValueError("Image queries (I2T) need a VLM and its processor; this retriever holds a text-only LM.")
        modality = getattr(self.index, "target_modality", None)
        if modality is not None and modality != _TARGET_MODALITY[direction]:
            wanted = "t2i" if modality == "image" else "i2t"
            raise ValueError(
                f"The index holds {modality} targets, so it answers {_QUERY_MODALITY[wanted]} queries ({wanted}); "
                f"these are {_QUERY_MODALITY[direction]} queries ({direction}). Load the {direction} index for them."
            )
        return queries, direction

    def _encode(self, queries: Sequence[Any], direction: str) -> dict[str, torch.Tensor]:
        if direction == "t2i":
            enc = encode_prompts(self.processing_class, [t2i_prompt(q) for q in queries])
        else:
            images = [[open_image(q, f"queries[{i}]")] for i, q in enumerate(queries)]
            enc = encode_prompts(self.processing_class, [i2t_prompt() for _ in queries], images)
        device = self._device
        return {k: v.to(device) for k, v in enc.items() if isinstance(v, torch.Tensor)}

    # ------------------------------------------------------------------ retrieval
    @torch.no_grad()
    def generate_sids(
        self,
        queries: Sequence[Any],
        num_sids: int,
        num_beams: int | None = None,
        direction: str | None = None,
        max_num_beams: int | None = None,
        certify: int | None = None,
    ) -> list[SIDHits]:
        """The top-`num_sids` SIDs of each query by the ranking score (`score`), certified exact where possible.

        Queries whose first `certify` SIDs the search cannot certify are searched again with twice the beams, up to
        `max_num_beams`.

        Args:
            queries (`list[str]` or `list[PIL.Image.Image]`): one batch of queries.
            num_sids (`int`): SIDs wanted per query (capped at the trie's size).
            num_beams (`int`, *optional*): beams of the first search (defaults to `num_sids`); any value >= 1.
            direction (`str`, *optional*): `"t2i"` (text queries) or `"i2t"` (images); inferred if omitted.
            max_num_beams (`int`, *optional*): most beams a widened search may use (defaults to
                `max(4 * num_beams, 32)`); `num_beams` disables widening.
            certify (`int`, *optional*, defaults to 1): how many leading SIDs must be certified before widening
                stops. The first rank is cheap to certify; deep ranks rarely are (the 10th SID of a trained model
                scores so low that many pruned prefixes could still beat it), so `certify=k` can need many more
                beams.
        """
        queries, direction = self._check_queries(queries, direction)
        num_sids = min(_positive_int(num_sids, "num_sids"), self.trie.num_sids)
        num_beams = _positive_int(num_beams if num_beams is not None else num_sids, "num_beams")
        cap = max(4 * num_beams, 32) if max_num_beams is None else _positive_int(max_num_beams, "max_num_beams")
        cap = max(cap, num_beams)
        certify = 1 if certify is None else _positive_int(certify, "certify")
        hits: list[SIDHits | None] = [None] * len(queries)
        pending, width = list(range(len(queries))), num_beams
        while pending:
            enc = self._encode([queries[i] for i in pending], direction)
            with autocast_inference(self.model, self.autocast):
                out = sid_beam_search(
                    self.model, enc, self.trie, width, num_sids, pad_token_id=self._pad_token_id, score=self.score
                )
            rows, scores, exact = out.sid_rows.cpu(), out.scores.cpu(), out.exact.cpu()
            bound = out.pruned_bound.cpu()
            again = []
            for j, q in enumerate(pending):
                keep = rows[j] >= 0
                certified = int((scores[j][keep] >= bound[j]).sum())
                hits[q] = SIDHits(rows[j][keep].tolist(), scores[j][keep].tolist(), bool(exact[j]), certified, width)
                if certified < min(certify, num_sids) and not exact[j] and width < cap:
                    again.append(q)
            pending, width = again, min(2 * width, cap)
        return hits  # type: ignore[return-value]

    def retrieve(
        self,
        queries: Sequence[Any],
        k: int = 10,
        num_beams: int | None = None,
        batch_size: int = 8,
        direction: str | None = None,
        gsv_weight: float | None = None,
        max_num_beams: int | None = None,
        certify: int | None = None,
        show_progress: bool = False,
    ) -> list[list[dict[str, Any]]]:
        """Return the top-`k` distinct targets of every query.

        Args:
            queries (`list[str]` or `list[PIL.Image.Image]`): text queries (T2I) or images (I2T).
            k (`int`, *optional*, defaults to 10): targets per query; at most the number of targets in the index.
            num_beams (`int`, *optional*): beams of the constrained search (defaults to `k`). Any value >= 1 works,
                also below `k`: finished SIDs leave the beam, and an uncertified list is searched again with more
                beams (see `max_num_beams`).
            batch_size (`int`, *optional*, defaults to 8): queries per search.
            direction (`str`, *optional*): `"t2i"` or `"i2t"`; inferred from the query type if omitted.
            gsv_weight (`float`, *optional*): with a `GSVScorer`, the weight (>= 0) of the verification term in
                the final score `generation + weight * log P(yes)` (`semcore_hf.retrieval.fusion`); 0 keeps the
                generation order and lets GSV only order collision groups. Choose it on a validation split
                (`semcore_hf.evaluation.tune_gsv_weight`). `None` disables GSV.
            max_num_beams (`int`, *optional*): most beams a widened search may use (defaults to
                `max(4 * num_beams, 32)`).
            certify (`int`, *optional*, defaults to 1): how many leading SIDs must be certified before widening
                stops (see `generate_sids`); every result says whether its rank is certified.
            show_progress (`bool`, *optional*, defaults to `False`): tqdm over batches.

        Returns:
            `list[list[dict]]`: per query, up to `k` dicts `{"target_id", "sid", "score", "generation_score",
            "gsv_score", "exact"}`, best first (`exact`: the result's SID is certified to hold its rank under
            exhaustive scoring: every SID scored higher was found).
            Fewer than `k` only when the trie holds fewer SIDs than needed.
        """
        queries, direction = self._check_queries(queries, direction)
        k = _positive_int(k, "k")
        n_targets = self.num_targets
        if k > n_targets:
            raise ValueError(f"k={k} is larger than the number of targets in the index ({n_targets}); lower k.")
        if num_beams is not None:
            _positive_int(num_beams, "num_beams")
        batch_size = _positive_int(batch_size, "batch_size")
        if gsv_weight is not None:
            if self.gsv is None:
                raise ValueError(
                    "gsv_weight was given but the retriever has no GSVScorer (from_pretrained(..., gsv=True))."
                )
            if isinstance(gsv_weight, bool) or not isinstance(gsv_weight, (int, float)) or not gsv_weight >= 0:
                raise ValueError(f"`gsv_weight` must be a number >= 0, got {gsv_weight!r}.")
        if not queries:
            return []
        starts = range(0, len(queries), batch_size)
        if show_progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="retrieve", unit="batch")
        results: list[list[dict[str, Any]]] = []
        for start in starts:
            batch = queries[start : start + batch_size]
            hits = self.generate_sids(batch, k, num_beams, direction, max_num_beams, certify)
            cands = [self._expand(h) for h in hits]
            if gsv_weight is not None:
                cands = self._verify(batch, cands, direction, float(gsv_weight))
            results.extend(c[:k] for c in cands)
        return results

    def _expand(self, hits: SIDHits) -> list[dict[str, Any]]:
        out = []
        for rank, (row, score) in enumerate(zip(hits.rows, hits.scores)):
            sid = self.index.sids[row]
            for target in self.index.targets_of_row(row):
                if self.gallery is not None and target not in self.gallery:
                    continue
                out.append(
                    {
                        "target_id": target,
                        "sid": sid,
                        "score": score,
                        "generation_score": score,
                        "gsv_score": None,
                        "exact": rank < hits.certified,
                    }
                )
        return out

    def _verify(self, queries, cands, direction: str, weight: float) -> list[list[dict[str, Any]]]:
        """GSV scores of every candidate (collision members included), fused with the generation score."""
        from semcore_hf.retrieval.fusion import fused_order

        flat = [(q, c) for q, per in enumerate(cands) for c in per]
        if not flat:
            return cands
        ids = [c["target_id"] for _, c in flat]
        kwargs: dict[str, Any] = {"direction": direction}
        if direction == "t2i":
            kwargs["queries"] = [queries[q] for q, _ in flat]
            if self.gsv.is_vlm and self.candidate_images:
                kwargs["candidates"] = None
                kwargs["candidate_images"] = [self._lookup(self.candidate_images, t, "candidate_images") for t in ids]
            else:
                kwargs["candidates"] = [self._lookup(self.candidate_texts, t, "candidate_texts") for t in ids]
        else:
            kwargs["queries"] = None
            kwargs["candidates"] = [self._lookup(self.candidate_texts, t, "candidate_texts") for t in ids]
            kwargs["query_images"] = [queries[q] for q, _ in flat]
        gsv = self.gsv.score(**kwargs).double()
        out, offset = [], 0
        for per in cands:
            v = gsv[offset : offset + len(per)]
            offset += len(per)
            order, fused = fused_order([c["generation_score"] for c in per], v, weight)
            out.append([{**per[i], "score": float(fused[i]), "gsv_score": float(v[i])} for i in order])
        return out

    @staticmethod
    def _lookup(table: Mapping[str, Any], target_id: str, name: str) -> Any:
        try:
            return table[target_id]
        except KeyError:
            raise KeyError(f"GSV needs `{name}` for target {target_id!r}; pass it to the retriever.") from None


def _adapter_base_folders(path: str) -> list[str]:
    """The local base folders of the adapter in `path` (none for a full model or a Hub base)."""
    from semcore_hf.modeling.loading import adapter_base_model, is_adapter_dir

    if not is_adapter_dir(path):
        return []
    candidates = [os.path.expanduser(adapter_base_model(path)), os.path.join(path, "sid_ready_base")]
    return [c for c in candidates if os.path.isdir(c)]


def _infer_direction(queries: Sequence[Any]) -> str:
    kinds = {"t2i" if isinstance(q, str) else "i2t" if _is_image(q) else type(q).__name__ for q in queries}
    if kinds == {"t2i"} or kinds == {"i2t"}:
        return kinds.pop()
    raise TypeError(f"Queries must be all strings (T2I) or all PIL images (I2T); got {sorted(kinds)}.")
