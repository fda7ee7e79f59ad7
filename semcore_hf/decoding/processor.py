"""`SIDConstrainedLogitsProcessor`: trie-constrained decoding with a few tensor ops per step for all rows."""

from __future__ import annotations

import numpy as np
import torch
from transformers import LogitsProcessor

from semcore_hf.decoding.trie import SIDTrie, _transition

_MAX_HASH_POSITIONS = 4096


class SIDConstrainedLogitsProcessor(LogitsProcessor):
    """Keeps only the continuations that stay inside a `SIDTrie`; everything else gets `-inf`.

    Every step is one vectorised pass over all rows (batch x beams): no Python loop over rows and no `.tolist()`;
    the only device-to-host read is one scalar per step (whether every row found its parent). The trie state of each
    row is **carried** across steps: the previous call leaves a table (prefix hash -> allowed window and child nodes)
    and each new row finds its parent by the hash of its prefix without the last token, then follows the one new token
    (beam search reorders rows freely, so the parent is matched by content, not by position). When a call does not
    extend the previous one (first step of a `generate`, assisted decoding, a reused processor), or a row has no
    parent among the previous call's rows (a custom loop), the states of those rows are re-derived by walking the trie
    from the root, one small op per generated position. Both give the same allowed sets.

    Allowed tokens: the children of the row's node. The SID end token (`</sid>`) is a child exactly where a SID
    completes. Rows at a leaf (SID finished) or off the trie get only `stop_token_id`, so every row keeps at least
    one finite continuation.

    Beam search keeps `2 * num_beams` candidates per step; when fewer continuations are valid it still keeps some with
    score `-inf` (GENRE issue #51). Those beams can end up in the output with a score of `-inf` (or the `-1e9`
    placeholder of an empty hypothesis slot), and their text is not a SID. Callers must drop them: keep outputs with
    `torch.isfinite(out.sequences_scores) & (out.sequences_scores > -1e8)` (or `SIDTrie.lookup_rows(...) >= 0`), and
    dedupe by SID row.

    Args:
        trie (`SIDTrie`):
            The trie of valid SID token sequences (built with the model's tokenizer).
        prompt_length (`int`):
            Length of the (left-padded) prompt, i.e. `inputs["input_ids"].shape[1]`; generated tokens start there.
            With VLM prompts this is the length after image-token expansion, as passed to `generate`.
        stop_token_id (`int`, *optional*, defaults to `None`):
            The only token allowed for finished or off-trie rows; defaults to `trie.end_token_id` (`</sid>`). Pass it
            (or include it) in `generate(eos_token_id=...)` so finished rows stop.
        stateless (`bool`, *optional*, defaults to `False`):
            Always re-walk every row from the root instead of carrying state (O(generated length) small ops).
        inplace (`bool`, *optional*, defaults to `False`):
            Write the mask into `scores` instead of a new tensor (saves one R x V allocation per step). Safe under
            beam search (the processors get a fresh log-softmax tensor); under greedy/sampling with
            `output_logits=True` it would also mask the returned raw logits.

    Example:

    ```python
    >>> enc = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left")
    >>> proc = SIDConstrainedLogitsProcessor(trie, prompt_length=enc["input_ids"].shape[1])
    >>> out = model.generate(**enc, logits_processor=LogitsProcessorList([proc]), num_beams=10,
    ...                      num_return_sequences=10, eos_token_id=trie.end_token_id, max_new_tokens=trie.max_depth)
    ```
    """

    def __init__(
        self,
        trie: SIDTrie,
        prompt_length: int,
        stop_token_id: int | None = None,
        stateless: bool = False,
        inplace: bool = False,
    ) -> None:
        if not isinstance(trie, SIDTrie):
            raise TypeError(f"trie must be a SIDTrie, got {type(trie).__name__}.")
        if not isinstance(prompt_length, int) or prompt_length < 0:
            raise ValueError(f"prompt_length must be a non-negative int, got {prompt_length!r}.")
        stop = trie.end_token_id if stop_token_id is None else int(stop_token_id)
        if stop is None:
            raise ValueError("The trie's sequences do not share an end token; pass stop_token_id explicitly.")
        if not 0 <= stop < trie.vocab_size:
            raise ValueError(f"stop_token_id {stop} is outside the trie's vocabulary [0, {trie.vocab_size}).")
        self.trie = trie
        self.prompt_length = prompt_length
        self.stop_token_id = stop
        self.stateless = stateless
        self.inplace = inplace
        # random 63-bit multipliers for the prefix hash; fixed seed so runs are reproducible
        rng = np.random.default_rng(0x5E3C0)
        self._hash_mult_np = rng.integers(1, 2**62, size=_MAX_HASH_POSITIONS, dtype=np.int64) | 1
        self._hash_mult: torch.Tensor | None = None
        self._prev: dict | None = None

    def reset(self) -> None:
        """Forget the carried state (done automatically at the first step of a `generate` call)."""
        self._prev = None

    def _window(self, t: dict[str, torch.Tensor], state: torch.Tensor, depth: int) -> tuple[torch.Tensor, ...]:
        """Allowed tokens (R, K) and the node each leads to (sink for the stop filler), K = fan-out at `depth`."""
        fan = self.trie._fanout_list
        k = max(fan[depth] if depth < len(fan) else 0, 1)
        start = t["indptr"][state].long()
        end = t["indptr"][state + 1].long()
        pos = start[:, None] + torch.arange(k, device=state.device)
        valid = pos < end[:, None]
        n_edges = t["child_token"].shape[0]
        tok = t["child_token"][pos.clamp(max=max(n_edges - 1, 0))].long()
        first = torch.where(valid[:, 0], tok[:, 0], torch.full_like(tok[:, 0], self.stop_token_id))
        allowed = torch.where(valid, tok, first[:, None])  # padding repeats an allowed id: no extra mask column
        child = torch.where(valid, pos + 1, torch.full_like(pos, self.trie.sink))
        return allowed, child

    def _hash(self, gen: torch.Tensor, length: int) -> torch.Tensor:
        if length == 0:
            return torch.zeros(gen.shape[0], dtype=torch.long, device=gen.device)
        if length > _MAX_HASH_POSITIONS:
            raise ValueError(f"SIDConstrainedLogitsProcessor supports at most {_MAX_HASH_POSITIONS} new tokens.")
        # int64 arithmetic wraps: a 64-bit polynomial-style hash of the generated prefix in one op
        return (gen[:, :length] * self._hash_mult[:length]).sum(1)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        device = scores.device
        t = self.trie._torch(device)
        if self._hash_mult is None or self._hash_mult.device != device:
            self._hash_mult = torch.from_numpy(self._hash_mult_np).to(device)
        cur_len = input_ids.shape[1]
        length = cur_len - self.prompt_length
        if length < 0:
            raise ValueError(
                f"input_ids has {cur_len} positions but prompt_length is {self.prompt_length}; pass the padded "
                f"prompt length (`inputs['input_ids'].shape[1]`)."
            )
        if scores.shape[1] < self.trie.vocab_size:
            raise ValueError(
                f"scores have {scores.shape[1]} columns but the trie's vocab_size is {self.trie.vocab_size}."
            )
        gen = input_ids[:, self.prompt_length :]
        prev = self._prev
        if length == 0:
            state = torch.zeros(input_ids.shape[0], dtype=torch.long, device=device)
        elif not self.stateless and prev is not None and prev["length"] == length - 1 and prev["device"] == device:
            state, found = self._carried_state(prev, gen, length)
            # A row that extends no row of the previous call (a reused processor, a custom loop that drops or adds
            # rows) must still get the allowed set of its own prefix: re-walk it. Inside `generate` every row has
            # a parent, so this costs one scalar read per step and the walk never runs.
            if not bool(found.all()):
                state = torch.where(found, state, self._walk(t, gen, length))
        else:
            state = self._walk(t, gen, length)

        allowed, child = self._window(t, state, length)
        if not self.stateless:
            h = self._hash(gen, length)
            order = torch.argsort(h)
            self._prev = {
                "length": length,
                "device": device,
                "hash": h[order],
                "gen": gen[order],
                "allowed": allowed[order],
                "child": child[order],
            }
        kept = scores.gather(1, allowed)
        out = scores if self.inplace else torch.empty_like(scores)
        out.fill_(float("-inf"))  # the only R x V write
        return out.scatter_(1, allowed, kept)

    def _walk(self, t: dict[str, torch.Tensor], gen: torch.Tensor, length: int) -> torch.Tensor:
        """Node of each row by walking its generated prefix from the root (one small op per position)."""
        state = torch.zeros(gen.shape[0], dtype=torch.long, device=gen.device)
        for j in range(length):
            state = _transition(t, self.trie._fanout_list, j, state, gen[:, j], self.trie.sink)
        return state

    def _carried_state(self, prev: dict, gen: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Node of each row from its parent row of the previous call plus the one new token, and whether the
        parent was found (`False`: the row extends no row of the previous call)."""
        h = self._hash(gen, length - 1)
        n_prev = prev["hash"].shape[0]
        j = torch.searchsorted(prev["hash"], h).clamp(max=n_prev - 1)
        # exact check that the matched parent is this row's prefix (guards hash collisions and foreign inputs)
        found = (prev["hash"][j] == h) & (prev["gen"][j] == gen[:, : length - 1]).all(1)
        window, child = prev["allowed"][j], prev["child"][j]
        match = window == gen[:, length - 1 : length]
        # padding repeats the first allowed id, so take the first matching slot
        slot = torch.argmax(match.to(torch.uint8), dim=1, keepdim=True)
        nxt = child.gather(1, slot).squeeze(1)
        ok = found & match.any(1)  # parent found but the new token is not a child: off the trie (sink)
        return torch.where(ok, nxt, torch.full_like(nxt, self.trie.sink)), found
