"""Trie-constrained beam search over SIDs that is exact for the score SemCORE ranks by, and certifies it.

**The scores.** A SID's log-probability under the model is ``log P(sid | prompt) = sum_t log softmax(logits_t)
[token_t]`` over its tokens up to and including the end token ``</sid>`` (softmax over the whole vocabulary, exactly
what teacher forcing computes). SIDs are ranked by it divided by the number of tokens (`score="mean"`, the default)
or by the sum itself (`"total"`). SIDs differ in length (one to several keyphrases) and the total favours short,
frequent ones: on the demo, ranking one model's candidates by the total instead of the mean cost 8.6 points of
Recall@1 (`SemCORERetriever` documents the measurement).

**Exactness.** Every token's log-probability is <= 0, so a prefix bounds every SID below it: for the total, by the
prefix's own sum; for the mean, by that sum divided by the length of the longest SID below the prefix
(`SIDTrie.subtree_max_len`). The search keeps the `num_beams` unfinished prefixes with the best bounds per step; a SID
that completes leaves the beam for a pool of the best `num_sids` finished SIDs, so any beam count from 1 up returns
up to `num_sids` SIDs. It records the best bound of any prefix it pruned. Every finished SID scoring at least that
bound is provably in its exhaustive rank; when the `num_sids`-th does, the whole list *is* the exhaustive
top-`num_sids` (`exact=True`); otherwise the caller can search again with more beams (`SemCORERetriever` doubles them).
A query stops as soon as its `num_sids`-th finished score is no lower than the bound of its best live prefix.

**Cost.** The prompt is encoded once per query (not once per beam, as `generate(num_beams=...)` does), each step
gathers only the log-probabilities of the trie children of each beam (a (rows, fan-out) gather plus one logsumexp
per row, never an (rows, vocab) mask or score copy), and the trie state of every beam is carried with it.

The loop runs inside `model.generate(custom_generate=...)`, so transformers prepares the inputs of every model kind
(position ids from left padding, multimodal inputs at prefill only, the KV cache); the checkpoint's generation config
(repetition penalty, n-gram blocking, sampling) has no effect, since no logits processor is applied.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from semcore_hf.decoding.trie import SIDTrie

# Per-row model inputs that follow the beams when they are re-ordered (besides the KV cache).
_ROW_INPUTS = ("attention_mask", "token_type_ids", "mm_token_type_ids", "moe_mm_token_type_ids")


@dataclass
class SIDSearchOutput:
    """Result of `sid_beam_search` for a batch of queries.

    Attributes:
        sid_rows (`torch.LongTensor` of shape `(batch, num_sids)`): SID rows (positions in `SIDIndex.sids`), best
            first; `-1` where fewer SIDs were found (the trie holds fewer, or no beam reached them).
        scores (`torch.FloatTensor` of shape `(batch, num_sids)`): the ranking score of each SID (`score`: its
            per-token mean or total log-probability); `-inf` padding.
        exact (`torch.BoolTensor` of shape `(batch,)`): whether the list is provably the exhaustive top-`num_sids`.
        pruned_bound (`torch.FloatTensor` of shape `(batch,)`): best score of a pruned prefix (`-inf` if none).
        num_beams (`int`): beams per query of this search.
        steps (`int`): decoding steps run (one model forward each, after the prompt's).
        model_seconds (`float`): wall time spent in the model's forward passes (prompt included); the rest of the
            search's time is its own work (trie windows, gathers, top-k, re-ordering). CPU timing: on a GPU the
            forward passes are asynchronous and this is not meaningful without synchronisation.
    """

    sid_rows: torch.Tensor
    scores: torch.Tensor
    exact: torch.Tensor
    pruned_bound: torch.Tensor
    num_beams: int
    steps: int = 0
    model_seconds: float = 0.0


SCORES = ("mean", "total")


def sid_beam_search(
    model: Any,
    inputs: Mapping[str, torch.Tensor],
    trie: SIDTrie,
    num_beams: int,
    num_sids: int,
    pad_token_id: int | None = None,
    score: str = "mean",
) -> SIDSearchOutput:
    """Constrained beam search for the top-`num_sids` SIDs of each prompt, ranked by `score` (mean or total log-prob).

    Args:
        model (`PreTrainedModel`): a causal LM or VLM with a KV cache (anything `generate` runs).
        inputs (`Mapping[str, torch.Tensor]`): the left-padded prompt batch (`semcore_hf.modeling.encode_prompts`),
            on the model's device.
        trie (`SIDTrie`): the valid SIDs, built with the model's tokenizer.
        num_beams (`int`): unfinished prefixes kept per query and step (>= 1).
        num_sids (`int`): SIDs returned per query (>= 1; capped at the trie's size).
        pad_token_id (`int`, *optional*): the id the prompts are left-padded with (only masked positions hold it);
            defaults to the trie's end token.
        score (`str`, *optional*, defaults to `"mean"`): what SIDs are ranked by: `"mean"` (log-probability per
            token) or `"total"` (log-probability); see the module docstring.

    Returns:
        `SIDSearchOutput`.
    """
    from transformers import GenerationConfig

    if score not in SCORES:
        raise ValueError(f"`score` must be one of {SCORES}, got {score!r}.")
    for name, value in (("num_beams", num_beams), ("num_sids", num_sids)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
    if trie.num_sids == 0:
        raise ValueError("The trie holds no SID.")
    out_emb = model.get_output_embeddings()
    if out_emb is not None and out_emb.weight.shape[0] < trie.vocab_size:
        raise ValueError(
            f"The model scores {out_emb.weight.shape[0]} tokens but the trie's vocabulary has {trie.vocab_size}: "
            "it was built with another tokenizer."
        )
    # Every field that could steer the search is set here, so nothing is inherited from the checkpoint's
    # generation_config; the loop itself applies no logits processor at all.
    config = GenerationConfig(
        max_new_tokens=trie.max_depth,
        num_beams=1,
        do_sample=False,
        use_cache=True,
        cache_implementation="dynamic",
        num_return_sequences=1,
        output_scores=False,
        return_dict_in_generate=False,
        pad_token_id=int(trie.end_token_id if pad_token_id is None else pad_token_id),
        eos_token_id=trie.end_token_id,
    )
    return model.generate(
        **inputs,
        generation_config=config,
        custom_generate=_sid_search_loop,
        sid_trie=trie.to(inputs["input_ids"].device) if trie.device != inputs["input_ids"].device else trie,
        sid_num_beams=int(num_beams),
        sid_num_sids=int(min(num_sids, trie.num_sids)),
        sid_score=score,
    )


def _select_rows(model: Any, model_kwargs: dict, index: torch.Tensor) -> None:
    """Re-order (and grow) every per-row model input and the KV cache to the rows in `index`, in place."""
    from transformers.cache_utils import Cache

    rows_before = None
    for key in _ROW_INPUTS:
        value = model_kwargs.get(key)
        if isinstance(value, torch.Tensor):
            rows_before = value.shape[0]
            model_kwargs[key] = value.index_select(0, index)
    pos = model_kwargs.get("position_ids")
    if isinstance(pos, torch.Tensor):  # (rows, len), or (3, rows, len) for multimodal RoPE
        model_kwargs["position_ids"] = pos.index_select(1 if pos.ndim == 3 else 0, index)
    cache = model_kwargs.get("past_key_values")
    if isinstance(cache, Cache):
        cache.reorder_cache(index)
    elif cache is not None and hasattr(model, "_reorder_cache"):
        model_kwargs["past_key_values"] = model._reorder_cache(cache, index)
    elif cache is not None:
        raise ValueError(f"{type(model).__name__}'s cache ({type(cache).__name__}) cannot be re-ordered for beams.")
    del rows_before


def _sid_search_loop(
    model: Any,
    input_ids: torch.LongTensor,
    logits_processor: Any = None,
    stopping_criteria: Any = None,
    generation_config: Any = None,
    synced_gpus: bool = False,
    streamer: Any = None,
    sid_trie: SIDTrie | None = None,
    sid_num_beams: int = 1,
    sid_num_sids: int = 1,
    sid_score: str = "mean",
    **model_kwargs: Any,
) -> SIDSearchOutput:
    """The decoding loop `generate(custom_generate=...)` runs; see the module docstring.

    Two things keep the model's batch small: a query's beams only grow as far as it has live candidates (the first
    steps of a SID have one or a few), and a query that is done leaves the batch (its rows and KV cache are dropped).
    """
    from transformers.generation.utils import MULTIMODAL_INPUTS_TO_DROP_OUTSIDE_PREFILL

    if synced_gpus:
        raise NotImplementedError(
            "The SID search drops finished queries from the batch, which a model sharded with FSDP / DeepSpeed ZeRO-3 "
            "(synced_gpus) cannot do; shard the queries across processes instead (each with a whole model)."
        )
    trie, width, top = sid_trie, sid_num_beams, sid_num_sids
    t = trie._torch(input_ids.device)
    fanout = trie._fanout_list
    device = input_ids.device
    batch = input_ids.shape[0]
    neg_inf = float("-inf")
    sink = trie.sink
    n_edges = t["child_token"].shape[0]
    n_leaves = t["leaf_node"].shape[0]

    clock = time.perf_counter()
    outputs = model._prefill(input_ids, generation_config, model_kwargs)
    model_seconds = time.perf_counter() - clock
    steps = 0
    model_kwargs = model._update_model_kwargs_for_generation(outputs, model_kwargs, is_encoder_decoder=False)
    for key in (*MULTIMODAL_INPUTS_TO_DROP_OUTSIDE_PREFILL, "image_grid_thw", "video_grid_thw"):
        model_kwargs.pop(key, None)  # consumed by the prefill; not per beam row

    # results of every query, filled in as queries finish
    out_score = torch.full((batch, top), neg_inf, dtype=torch.float32, device=device)
    out_row = torch.full((batch, top), -1, dtype=torch.long, device=device)
    out_pruned = torch.full((batch,), neg_inf, dtype=torch.float32, device=device)
    # state of the active queries; one beam each (the root, score 0) before the first token
    mean = sid_score == "mean"
    active = torch.arange(batch, device=device)
    beams = 1
    seqs = input_ids
    node = torch.zeros(batch, dtype=torch.long, device=device)
    beam_score = torch.zeros(batch, 1, dtype=torch.float32, device=device)  # log-probability of the prefix
    fin_score = out_score.clone()
    fin_row = out_row.clone()
    pruned = out_pruned.clone()

    for depth in range(trie.max_depth):
        n_active = active.shape[0]
        logits = outputs.logits[:, -1, :].float()
        del outputs
        k = max(fanout[depth], 1)
        # The trie children of every beam: (rows, k) tokens and child nodes; invalid slots masked below.
        start = t["indptr"][node].long()
        end = t["indptr"][node + 1].long()
        pos = start[:, None] + torch.arange(k, device=device)
        valid = (pos < end[:, None]) & torch.isfinite(beam_score.view(-1, 1))
        tok = t["child_token"][pos.clamp(max=max(n_edges - 1, 0))].long()
        child = torch.where(valid, pos + 1, torch.full_like(pos, sink))
        # log softmax over the whole vocabulary, but only the children's entries are materialised
        logprob = logits.gather(1, tok) - torch.logsumexp(logits, dim=1, keepdim=True)
        del logits
        cand = torch.where(valid, beam_score.view(-1, 1) + logprob, torch.full_like(logprob, neg_inf))
        is_leaf = valid & (t["indptr"][child + 1] == t["indptr"][child])
        if mean:
            # A finished SID scores its mean; a prefix is ranked (and pruned) by the best mean any SID below it can
            # reach: log-probs are <= 0, so sum_prefix / (longest SID below) bounds them all.
            length = torch.where(is_leaf, depth + 1, t["max_len"][child].clamp(min=1)).to(cand.dtype)
            rank_score = cand / length
        else:
            rank_score = cand
        cand = cand.view(n_active, beams * k)
        rank_score = rank_score.view(n_active, beams * k)
        is_leaf = is_leaf.view(n_active, beams * k)
        child = child.view(n_active, beams * k)
        tok = tok.view(n_active, beams * k)

        # Completed SIDs join the pool of the best `top` finished ones.
        leaf_pos = torch.searchsorted(t["leaf_node"], child.to(t["leaf_node"].dtype)).clamp(max=max(n_leaves - 1, 0))
        leaf_rows = torch.where(is_leaf, t["leaf_row"][leaf_pos].long(), torch.full_like(child, -1))
        pool_score = torch.cat([fin_score, torch.where(is_leaf, rank_score, torch.full_like(cand, neg_inf))], dim=1)
        pool_row = torch.cat([fin_row, leaf_rows], dim=1)
        fin_score, keep = pool_score.topk(top, dim=1)
        fin_row = pool_row.gather(1, keep)

        # Unfinished prefixes: keep the `width` with the best bounds; the next best bounds everything pruned.
        live = torch.where(is_leaf, torch.full_like(cand, neg_inf), rank_score)
        n_keep = min(width + 1, live.shape[1])
        best, idx = live.topk(n_keep, dim=1)
        if n_keep > width:
            pruned = torch.maximum(pruned, best[:, width])
            best, idx = best[:, :width], idx[:, :width]
        best_sum = cand.gather(1, idx)
        # A query is done once its `top`-th finished SID beats every live prefix (scores only decrease).
        done = (fin_score[:, -1] >= best[:, 0]) | ~torch.isfinite(best[:, 0])
        n_live = torch.isfinite(best).sum(1)
        # one small host read per step: which queries are done, and how many beams the others need
        done_host, live_host = torch.stack([done.long(), n_live]).tolist()
        if any(done_host) or depth + 1 == trie.max_depth:
            finished = active[done] if depth + 1 < trie.max_depth else active
            rows = done if depth + 1 < trie.max_depth else torch.ones_like(done)
            out_score[finished], out_row[finished], out_pruned[finished] = fin_score[rows], fin_row[rows], pruned[rows]
        keep_q = [q for q, d in enumerate(done_host) if not d]
        if depth + 1 == trie.max_depth or not keep_q:
            break
        beams_next = max(max(live_host[q] for q in keep_q), 1)
        keep_idx = torch.tensor(keep_q, device=device)
        best, idx = best[keep_idx, :beams_next], idx[keep_idx, :beams_next]
        best_sum = best_sum[keep_idx, :beams_next]
        fin_score, fin_row, pruned = fin_score[keep_idx], fin_row[keep_idx], pruned[keep_idx]
        child, tok = child[keep_idx], tok[keep_idx]
        # rows of the next step: the parent beam of every kept candidate, within the kept queries
        parent = keep_idx[:, None] * beams + idx // k
        flat_parent = parent.view(-1)
        node = torch.where(torch.isfinite(best.view(-1)), child.gather(1, idx).view(-1), sink)
        new_tok = tok.gather(1, idx).view(-1)
        seqs = torch.cat([seqs.index_select(0, flat_parent), new_tok[:, None]], dim=1)
        _select_rows(model, model_kwargs, flat_parent)
        beam_score = torch.where(torch.isfinite(best), best_sum, torch.full_like(best_sum, neg_inf))
        beams, active = beams_next, active[keep_idx]

        model_inputs = model.prepare_inputs_for_generation(seqs, next_sequence_length=1, **model_kwargs)
        clock = time.perf_counter()
        outputs = model(**model_inputs, return_dict=True)
        model_seconds += time.perf_counter() - clock
        steps += 1
        model_kwargs = model._update_model_kwargs_for_generation(outputs, model_kwargs, is_encoder_decoder=False)

    exact = out_pruned <= out_score[:, -1]
    return SIDSearchOutput(
        sid_rows=out_row,
        scores=out_score,
        exact=exact,
        pruned_bound=out_pruned,
        num_beams=width,
        steps=steps,
        model_seconds=model_seconds,
    )
