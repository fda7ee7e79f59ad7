"""`SIDTrie`: every valid SID token sequence as a flat CSR trie (numpy arrays, mirrored as torch tensors)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semcore_hf._io import atomic_artefact, read_artefact_files, resolve_artefact_dir

TRIE_WEIGHTS_NAME = "sid_trie.safetensors"
TRIE_CONFIG_NAME = "sid_trie.json"
# 2: sid_trie.json records the sha256 of sid_trie.safetensors; version 1 is still read.
_FORMAT_VERSION = 2
_ARTEFACT_KIND = "sid_trie"
_ARRAY_NAMES = ("indptr", "child_token", "leaf_node", "leaf_row", "depth_fanout")


def _flatten(token_sequences: Any) -> tuple[np.ndarray, np.ndarray]:
    """Ragged sequences -> (flat int64 tokens, int64 offsets of length N+1)."""
    seqs = [s.tolist() if hasattr(s, "tolist") else s for s in token_sequences]
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter(chain.from_iterable(seqs), dtype=np.int64, count=int(offsets[-1]))
    return flat, offsets


def _index_dtype(n: int) -> type:
    return np.int32 if n < 2**31 - 1 else np.int64


class SIDTrie:
    """The trie of all valid SID token sequences, stored as flat CSR arrays.

    Nodes are numbered breadth first, and within a depth by (parent, token); node 0 is the root. Consequently the
    edges sorted by (parent, token) are exactly the nodes 1..n-1 in order: the child of edge `e` is node `e + 1`
    (`child_node` is implicit) and the children of node `u` are the edges `indptr[u]:indptr[u + 1]`, sorted by
    token. One extra node (`sink`, id `num_nodes`) has no children and stands for every prefix that left the trie.
    Each sequence must end at a leaf (no sequence is a prefix of another; SID completions all end with `</sid>`),
    and each leaf maps to a SID row (its position in `SIDIndex.sids`).

    Memory is about 8 bytes per node (int32 `indptr` + `child_token`) plus 8 bytes per SID (leaf -> row).

    Args:
        indptr (`np.ndarray`): (num_nodes + 2,) child-edge offsets, sink included.
        child_token (`np.ndarray`): (num_nodes - 1,) token of each edge (= of each non-root node).
        leaf_node (`np.ndarray`): (num_sids,) sorted leaf node ids.
        leaf_row (`np.ndarray`): (num_sids,) SID row of each leaf in `leaf_node`.
        depth_fanout (`np.ndarray`): (max_depth + 1,) most children of any node at each depth.
        vocab_size (`int`): Size of the token space (the model's vocabulary).
        tokenizer_fingerprint (`str`, *optional*, defaults to `None`): Fingerprint of the tokenizer that produced the
            sequences (`SIDTokenizerExtension.fingerprint`).
        end_token_id (`int`, *optional*, defaults to `None`): The token every sequence ends with, if they share one.
    """

    def __init__(
        self,
        indptr: np.ndarray,
        child_token: np.ndarray,
        leaf_node: np.ndarray,
        leaf_row: np.ndarray,
        depth_fanout: np.ndarray,
        vocab_size: int,
        tokenizer_fingerprint: str | None = None,
        end_token_id: int | None = None,
    ) -> None:
        self.indptr = indptr
        self.child_token = child_token
        self.leaf_node = leaf_node
        self.leaf_row = leaf_row
        self.depth_fanout = depth_fanout
        self.vocab_size = int(vocab_size)
        self.tokenizer_fingerprint = tokenizer_fingerprint
        self.end_token_id = None if end_token_id is None else int(end_token_id)
        self._fanout_list = [int(k) for k in depth_fanout]  # host copy: static shapes without device reads
        self._subtree_max_len: np.ndarray | None = None
        self._tensors: dict[str, torch.Tensor] | None = None
        self.device = torch.device("cpu")

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(
        cls,
        token_sequences: Sequence[Sequence[int]],
        vocab_size: int,
        sid_rows: Sequence[int] | np.ndarray | None = None,
        tokenizer_fingerprint: str | None = None,
    ) -> SIDTrie:
        """Build the trie from token sequences with vectorised numpy (one `np.unique` per depth).

        Args:
            token_sequences (`Sequence[Sequence[int]]`):
                One token-id sequence per SID, each ending at a leaf (e.g. with the `</sid>` id).
            vocab_size (`int`):
                Number of token ids (ids must lie in `[0, vocab_size)`).
            sid_rows (`Sequence[int]`, *optional*, defaults to `None`):
                SID row of each sequence; defaults to `0..N-1`.
            tokenizer_fingerprint (`str`, *optional*, defaults to `None`):
                Recorded and checked against the tokenizer at load time.

        Returns:
            `SIDTrie`

        Raises:
            `ValueError`: On empty or out-of-range sequences, two SIDs with the same token sequence, or a sequence
            that is a prefix of another.
        """
        flat, offsets = _flatten(token_sequences)
        n = len(offsets) - 1
        rows = np.arange(n, dtype=np.int64) if sid_rows is None else np.asarray(sid_rows, dtype=np.int64).ravel()
        if len(rows) != n:
            raise ValueError(f"Got {n} token sequences but {len(rows)} sid_rows.")
        return cls._build_flat(flat, offsets, rows, int(vocab_size), tokenizer_fingerprint)

    @classmethod
    def _build_flat(
        cls, flat: np.ndarray, offsets: np.ndarray, rows: np.ndarray, vocab_size: int, fingerprint: str | None
    ) -> SIDTrie:
        n = len(offsets) - 1
        if vocab_size <= 0:
            raise ValueError(f"vocab_size must be positive, got {vocab_size}.")
        lengths = np.diff(offsets)
        if n and lengths.min() == 0:
            raise ValueError(f"Token sequence {int(np.argmin(lengths))} is empty.")
        if len(flat) and (flat.min() < 0 or flat.max() >= vocab_size):
            bad = int(np.nonzero((flat < 0) | (flat >= vocab_size))[0][0])
            seq = int(np.searchsorted(offsets, bad, side="right") - 1)
            raise ValueError(f"Token sequence {seq} holds id {int(flat[bad])} outside [0, {vocab_size}).")
        if n and len(np.unique(rows)) != n:
            raise ValueError("sid_rows must be unique (one trie leaf per SID row).")
        max_len = int(lengths.max()) if n else 0
        node = np.zeros(n, dtype=np.int64)  # current node of every sequence
        parents_per_depth, tokens_per_depth, fanout = [], [], []
        next_id = 1
        for d in range(max_len):
            active = np.nonzero(lengths > d)[0]
            key = node[active] * vocab_size + flat[offsets[active] + d]
            uniq, inv = np.unique(key, return_inverse=True)
            parent = uniq // vocab_size
            parents_per_depth.append(parent)
            tokens_per_depth.append(uniq - parent * vocab_size)
            # uniq is sorted by parent, so run lengths of equal parents are the per-node fan-outs
            if len(parent):
                starts = np.flatnonzero(np.r_[True, parent[1:] != parent[:-1]])
                fanout.append(int(np.diff(np.r_[starts, len(parent)]).max()))
            node[active] = next_id + inv
            next_id += len(uniq)
        num_nodes = next_id
        edge_parent = np.concatenate(parents_per_depth) if parents_per_depth else np.zeros(0, np.int64)
        idx_dtype = _index_dtype(num_nodes + 1)
        # indptr over nodes 0..num_nodes (the last one is the sink, with no children)
        indptr = np.searchsorted(edge_parent, np.arange(num_nodes + 2), side="left").astype(idx_dtype)
        child_token = (np.concatenate(tokens_per_depth) if tokens_per_depth else np.zeros(0)).astype(
            _index_dtype(vocab_size)
        )
        # every sequence must end at a leaf, and at its own leaf
        term = node
        if n:
            if np.any(indptr[term + 1] > indptr[term]):
                i = int(np.nonzero(indptr[term + 1] > indptr[term])[0][0])
                raise ValueError(
                    f"Token sequence {i} (SID row {int(rows[i])}) is a prefix of another sequence; every SID must "
                    f"end with the end token (e.g. '</sid>')."
                )
            order = np.argsort(term, kind="stable")
            st = term[order]
            dup = np.nonzero(st[1:] == st[:-1])[0]
            if len(dup):
                a, b = int(order[dup[0]]), int(order[dup[0] + 1])
                raise ValueError(
                    f"Two different SIDs have the same token sequence: sequences {a} and {b} (SID rows "
                    f"{int(rows[a])} and {int(rows[b])}). The tokenizer maps them to the same ids; make the SID "
                    f"strings differ in tokens (or merge them into one collision group)."
                )
            leaf_node, leaf_row = st.astype(idx_dtype), rows[order].astype(_index_dtype(int(rows.max()) + 1))
        else:
            leaf_node, leaf_row = np.zeros(0, idx_dtype), np.zeros(0, np.int32)
        ends = flat[offsets[1:] - 1] if n else np.zeros(0, np.int64)
        end_token = int(ends[0]) if n and np.all(ends == ends[0]) else None
        return cls(
            indptr,
            child_token,
            leaf_node,
            leaf_row,
            np.asarray(fanout, dtype=np.int64),
            vocab_size,
            tokenizer_fingerprint=fingerprint,
            end_token_id=end_token,
        )

    @classmethod
    def from_sids(
        cls, sids: Sequence[str], tokenizer: Any, extension: Any = None, vocab_size: int | None = None
    ) -> SIDTrie:
        """Encode SID strings with a `SIDTokenizerExtension` and build the trie (row `i` = `sids[i]`).

        Args:
            sids (`Sequence[str]`): The SID strings, in `SIDIndex.sids` order.
            tokenizer (`PreTrainedTokenizerBase` or `ProcessorMixin`): The model's tokenizer, after `extension.apply`.
            extension (`SIDTokenizerExtension`, *optional*, defaults to `None`): Defaults to the standard tokens.
            vocab_size (`int`, *optional*, defaults to `None`): Defaults to `len(tokenizer)`; pass the model's
                (possibly padded) embedding count to match its logits.
        """
        from semcore_hf.tokenization import SIDTokenizerExtension
        from semcore_hf.tokenization.extension import _get_tokenizer

        ext = extension if extension is not None else SIDTokenizerExtension()
        seqs = ext.encode(sids, tokenizer)
        v = vocab_size if vocab_size is not None else len(_get_tokenizer(tokenizer))
        try:
            return cls.build(seqs, v, tokenizer_fingerprint=ext.fingerprint(tokenizer))
        except ValueError as e:
            if "same token sequence" in str(e):
                rows = [int(x) for x in str(e).split("SID rows ")[1].split(")")[0].split(" and ")]
                raise ValueError(f"{e} SIDs: {sids[rows[0]]!r} and {sids[rows[1]]!r}.") from None
            raise

    # ------------------------------------------------------------------ growth
    def token_sequences(self) -> tuple[list[list[int]], np.ndarray]:
        """All sequences (leaf order) and their SID rows, rebuilt from the parent links."""
        flat, offsets = self._leaf_sequences_flat()
        return [flat[offsets[i] : offsets[i + 1]].tolist() for i in range(len(offsets) - 1)], self.leaf_row.copy()

    def _leaf_sequences_flat(self) -> tuple[np.ndarray, np.ndarray]:
        num_nodes = self.num_nodes
        edge_parent = np.repeat(np.arange(num_nodes + 1, dtype=np.int64), np.diff(self.indptr.astype(np.int64)))
        node_parent = np.r_[-1, edge_parent]  # parent of node u is edge_parent[u - 1]
        node_token = np.r_[-1, self.child_token.astype(np.int64)]
        depth = np.zeros(num_nodes, dtype=np.int64)
        for d, nodes in enumerate(self._nodes_by_depth()):
            depth[nodes] = d
        leaves = self.leaf_node.astype(np.int64)
        lengths = depth[leaves]
        offsets = np.zeros(len(leaves) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.empty(int(offsets[-1]), dtype=np.int64)
        cur, pos = leaves.copy(), offsets[1:] - 1
        for _ in range(int(lengths.max()) if len(leaves) else 0):  # walk up all leaves at once
            live = cur > 0
            flat[pos[live]] = node_token[cur[live]]
            cur = np.where(live, node_parent[np.maximum(cur, 0)], 0)
            pos = pos - 1
        return flat, offsets

    def subtree_max_len(self) -> np.ndarray:
        """(num_nodes + 1,) the length of the longest sequence through each node (the depth of its deepest leaf).

        The sink gets 0. A length-normalised score's upper bound for every SID below a prefix uses it
        (`semcore_hf.decoding.search`). Computed once per trie, bottom-up, one vectorised pass per depth.
        """
        if getattr(self, "_subtree_max_len", None) is not None:
            return self._subtree_max_len
        num_nodes = self.num_nodes
        edge_parent = np.repeat(np.arange(num_nodes + 1, dtype=np.int64), np.diff(self.indptr.astype(np.int64)))
        out = np.zeros(num_nodes + 1, dtype=np.int64)
        levels = self._nodes_by_depth()
        for d, nodes in enumerate(levels):
            out[nodes] = d  # the node's own depth; leaves keep it
        for nodes in reversed(levels[1:]):
            np.maximum.at(out, edge_parent[nodes - 1], out[nodes])
        self._subtree_max_len = out
        return out

    def _nodes_by_depth(self) -> list[np.ndarray]:
        out, lo, hi = [np.arange(1)], 0, 1
        while True:
            a, b = int(self.indptr[lo]) + 1, int(self.indptr[hi]) + 1
            if a >= b:
                return out
            out.append(np.arange(a, b))
            lo, hi = a, b

    def insert(self, token_sequences: Sequence[Sequence[int]], sid_rows: Sequence[int] | np.ndarray) -> SIDTrie:
        """Add sequences (for `SIDIndex.add`); the result is identical to building from all sequences at once.

        Args:
            token_sequences (`Sequence[Sequence[int]]`): New sequences.
            sid_rows (`Sequence[int]`): Their SID rows (must not be in the trie yet).

        Returns:
            `SIDTrie`: `self`, updated in place.
        """
        old_flat, old_offsets = self._leaf_sequences_flat()
        new_flat, new_offsets = _flatten(token_sequences)
        rows = np.r_[self.leaf_row.astype(np.int64), np.asarray(sid_rows, dtype=np.int64).ravel()]
        if len(rows) != len(old_offsets) - 1 + len(new_offsets) - 1:
            raise ValueError(f"Got {len(new_offsets) - 1} token sequences but {len(np.ravel(sid_rows))} sid_rows.")
        flat = np.r_[old_flat, new_flat]
        offsets = np.r_[old_offsets[:-1], new_offsets + old_offsets[-1]]
        other = self._build_flat(flat, offsets, rows, self.vocab_size, self.tokenizer_fingerprint)
        device = self.device
        self.__dict__.update(other.__dict__)
        return self.to(device)

    # ------------------------------------------------------------------ accessors
    @property
    def num_nodes(self) -> int:
        """Nodes including the root, excluding the sink."""
        return len(self.indptr) - 2

    def edge_keys(self) -> np.ndarray:
        """Sorted edge keys ``parent * vocab_size + token`` (computed on demand: not stored, to save memory).

        `np.searchsorted(trie.edge_keys(), u * V + t)` finds the edge `e` from node `u` along token `t`; its child is
        node `e + 1`.
        """
        parent = np.repeat(np.arange(self.num_nodes + 1, dtype=np.int64), np.diff(self.indptr.astype(np.int64)))
        return parent * self.vocab_size + self.child_token.astype(np.int64)

    @property
    def child_node(self) -> np.ndarray:
        """Child node of every edge (`e + 1`, implicit in the breadth-first numbering)."""
        return np.arange(1, self.num_nodes, dtype=self.indptr.dtype)

    @property
    def sink(self) -> int:
        """Id of the childless node that stands for prefixes outside the trie."""
        return self.num_nodes

    @property
    def num_sids(self) -> int:
        return len(self.leaf_node)

    def __len__(self) -> int:
        return self.num_sids

    @property
    def max_depth(self) -> int:
        return len(self.depth_fanout)

    @property
    def nbytes(self) -> int:
        """Bytes held by the trie arrays."""
        return sum(a.nbytes for a in (self.indptr, self.child_token, self.leaf_node, self.leaf_row, self.depth_fanout))

    @property
    def bytes_per_sid(self) -> float:
        return self.nbytes / max(self.num_sids, 1)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_sids={self.num_sids}, num_nodes={self.num_nodes}, max_depth={self.max_depth}, "
            f"vocab_size={self.vocab_size}, bytes_per_sid={self.bytes_per_sid:.1f}, device={self.device})"
        )

    def _walk(self, prefix: Sequence[int]) -> int:
        node = 0
        for t in prefix:
            lo, hi = int(self.indptr[node]), int(self.indptr[node + 1])
            i = lo + int(np.searchsorted(self.child_token[lo:hi], int(t)))
            if i >= hi or int(self.child_token[i]) != int(t):
                return self.sink
            node = i + 1
        return node

    def allowed_next(self, prefix: Sequence[int]) -> list[int]:
        """Token ids that may follow `prefix` (generated ids only); `[]` at a leaf or outside the trie."""
        node = self._walk(prefix)
        return self.child_token[int(self.indptr[node]) : int(self.indptr[node + 1])].tolist()

    def lookup(self, token_ids: Sequence[int]) -> int | None:
        """SID row of the first complete sequence `token_ids` starts with (trailing pad/eos ignored), else `None`."""
        node = 0
        for t in token_ids:
            lo, hi = int(self.indptr[node]), int(self.indptr[node + 1])
            i = lo + int(np.searchsorted(self.child_token[lo:hi], int(t)))
            if i >= hi or int(self.child_token[i]) != int(t):
                return None
            node = i + 1
            if self.indptr[node + 1] == self.indptr[node]:
                j = int(np.searchsorted(self.leaf_node, node))
                return int(self.leaf_row[j])
        return None

    def lookup_rows(self, sequences: torch.Tensor) -> torch.Tensor:
        """Vectorised `lookup` of generated ids (N, L) -> SID rows (N,), -1 where no SID was completed."""
        t = self._torch(sequences.device)
        seqs = sequences.long()
        n = seqs.shape[0]
        state = torch.zeros(n, dtype=torch.long, device=seqs.device)
        row = torch.full((n,), -1, dtype=torch.long, device=seqs.device)
        for j in range(seqs.shape[1]):
            state = _transition(t, self._fanout_list, j, state, seqs[:, j], self.sink)
            is_leaf = (t["indptr"][state + 1] == t["indptr"][state]) & (state != self.sink)
            k = torch.searchsorted(t["leaf_node"], state.to(t["leaf_node"].dtype)).clamp(max=max(self.num_sids - 1, 0))
            row = torch.where(is_leaf & (row < 0), t["leaf_row"][k].long(), row)
        return row

    # ------------------------------------------------------------------ torch mirror
    def _torch(self, device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        if self._tensors is None or (device is not None and torch.device(device) != self.device):
            self.to(device if device is not None else self.device)
        return self._tensors  # type: ignore[return-value]

    def to(self, device: torch.device | str) -> SIDTrie:
        """Mirror the arrays as torch tensors on `device` (used by the logits processor); returns `self`."""
        device = torch.device(device)
        self._tensors = {
            "indptr": torch.from_numpy(self.indptr).to(device),
            "child_token": torch.from_numpy(self.child_token).to(device),
            "leaf_node": torch.from_numpy(self.leaf_node).to(device),
            "leaf_row": torch.from_numpy(self.leaf_row).to(device),
            "max_len": torch.from_numpy(self.subtree_max_len()).to(device),
        }
        self.device = device
        return self

    # ------------------------------------------------------------------ tokenizer check and persistence
    def check_tokenizer(self, tokenizer: Any) -> None:
        """Raise a `ValueError` if `tokenizer` does not tokenise SIDs the way the trie's tokenizer did.

        The fingerprint (`SIDTokenizerExtension.fingerprint`) covers the vocabulary, the normalizer, the
        pre-tokenizer, the added tokens and the chat template. A trie saved before fingerprints covered more than
        the vocabulary is checked against the vocabulary only, with a warning.
        """
        if self.tokenizer_fingerprint is None:
            return
        from semcore_hf.tokenization.extension import legacy_vocabulary_fingerprint, tokenizer_fingerprint

        if ":" not in self.tokenizer_fingerprint:
            import warnings

            warnings.warn(
                "This SID trie records a vocabulary-only tokenizer fingerprint (an older format): a tokenizer with "
                "the same vocabulary but another normalizer, pre-tokenizer or chat template would pass. Rebuild the "
                "trie to record the full fingerprint.",
                UserWarning,
                stacklevel=2,
            )
            fp = legacy_vocabulary_fingerprint(tokenizer)
        else:
            fp = tokenizer_fingerprint(tokenizer)
        if fp != self.tokenizer_fingerprint:
            raise ValueError(
                f"This SID trie was built with another tokenizer: trie fingerprint {self.tokenizer_fingerprint}, "
                f"tokenizer fingerprint {fp}. Token ids would not match the model's. Rebuild the trie with "
                f"`SIDTrie.from_sids(index.sids, tokenizer, extension)` using the model's tokenizer (after "
                f"`SIDTokenizerExtension.apply`), or load the tokenizer saved with the trie."
            )

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        """Write `sid_trie.safetensors` (arrays) and `sid_trie.json` (metadata) into `save_directory`.

        The folder is replaced as a whole (a reader sees the complete old or new trie); other files in it are kept.
        """
        from safetensors.numpy import save_file

        meta = {
            "format_version": _FORMAT_VERSION,
            "vocab_size": self.vocab_size,
            "tokenizer_fingerprint": self.tokenizer_fingerprint,
            "end_token_id": self.end_token_id,
            "num_sids": self.num_sids,
            "num_nodes": self.num_nodes,
        }
        arrays = {name: getattr(self, name) for name in _ARRAY_NAMES}
        with atomic_artefact(
            save_directory, _ARTEFACT_KIND, format_version=_FORMAT_VERSION, legacy_files=_legacy_files
        ) as tmp:
            save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp / TRIE_WEIGHTS_NAME))
            meta["sha256"] = {TRIE_WEIGHTS_NAME: hashlib.sha256((tmp / TRIE_WEIGHTS_NAME).read_bytes()).hexdigest()}
            (tmp / TRIE_CONFIG_NAME).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")

    def push_to_hub(
        self,
        repo_id: str,
        *,
        token: str | None = None,
        private: bool | None = None,
        revision: str | None = None,
        commit_message: str = "Upload SID trie",
        create_pr: bool = False,
    ) -> Any:
        """Push the trie (`save_pretrained`'s two files) to the Hub repo `repo_id` in one commit; `from_pretrained`
        loads it back by id. Returns the `huggingface_hub.CommitInfo`."""
        import tempfile

        from semcore_hf.hub import upload_artefact

        with tempfile.TemporaryDirectory(prefix="semcore_trie_") as tmp:
            self.save_pretrained(Path(tmp) / "trie")
            return upload_artefact(
                Path(tmp) / "trie",
                repo_id,
                token=token,
                private=private,
                revision=revision,
                commit_message=commit_message,
                create_pr=create_pr,
            )

    @classmethod
    def from_pretrained(
        cls,
        pretrained_directory: str | os.PathLike,
        tokenizer: Any = None,
        *,
        revision: str | None = None,
        token: str | bool | None = None,
    ) -> SIDTrie:
        """Load a trie saved by `save_pretrained` (a folder, or a Hub repo id it was pushed to); with `tokenizer`,
        check it is the one the trie was built with.

        The arrays are checked against each other and against `sid_trie.json` (sizes, monotone offsets, sorted
        children, leaves), so a truncated, corrupt or mismatched file is refused with a `ValueError` naming it.

        Args:
            pretrained_directory (`str` or `os.PathLike`): Directory with `sid_trie.safetensors` + `sid_trie.json`,
                or the Hub repo id `push_to_hub` pushed them to.
            tokenizer (`PreTrainedTokenizerBase` or `ProcessorMixin`, *optional*, defaults to `None`):
                The model's tokenizer; a different vocabulary raises a `ValueError` naming both fingerprints.
            revision (`str`, *optional*), token (`str` or `bool`, *optional*): of the Hub repo.
        """
        from safetensors.numpy import load as load_arrays

        if not os.path.isdir(os.path.expanduser(str(pretrained_directory))):  # a Hub repo id
            from semcore_hf.hub import snapshot

            names = [TRIE_CONFIG_NAME, TRIE_WEIGHTS_NAME]
            pretrained_directory = snapshot(pretrained_directory, revision=revision, token=token, allow_patterns=names)
        d = resolve_artefact_dir(pretrained_directory)
        if not (d / TRIE_WEIGHTS_NAME).is_file() or not (d / TRIE_CONFIG_NAME).is_file():
            raise FileNotFoundError(f"No {TRIE_WEIGHTS_NAME} / {TRIE_CONFIG_NAME} in {pretrained_directory}.")
        raw = read_artefact_files(d, (TRIE_CONFIG_NAME, TRIE_WEIGHTS_NAME))  # one version, even during a save
        raw_meta, raw_arrays = raw[TRIE_CONFIG_NAME], raw[TRIE_WEIGHTS_NAME]
        try:
            meta = json.loads(raw_meta.decode("utf-8"))
            if not isinstance(meta, dict) or not isinstance(meta.get("vocab_size"), int):
                raise ValueError("no integer 'vocab_size'")
        except ValueError as e:
            raise ValueError(f"{TRIE_CONFIG_NAME} in {d} is truncated or corrupt: {e}") from None
        version = meta.get("format_version", 1)
        if not isinstance(version, int) or version > _FORMAT_VERSION:
            raise ValueError(f"{TRIE_CONFIG_NAME} in {d} has format {version!r}; upgrade semcore_hf to read it.")
        try:
            arrays = load_arrays(raw_arrays)
        except Exception as e:  # safetensors raises its own error types on a bad header or short data
            raise ValueError(f"{TRIE_WEIGHTS_NAME} in {d} is truncated or corrupt: {type(e).__name__}: {e}") from None
        if version >= 2:
            recorded = meta.get("sha256")
            expected = recorded.get(TRIE_WEIGHTS_NAME) if isinstance(recorded, dict) else None
            actual = hashlib.sha256(raw_arrays).hexdigest()
            if actual != expected:
                raise ValueError(
                    f"{TRIE_WEIGHTS_NAME} in {d} does not belong with {TRIE_CONFIG_NAME}: its sha256 is "
                    f"{actual[:16]}..., {TRIE_CONFIG_NAME} records {str(expected)[:16]}.... The files come from "
                    "different saves, or one was altered; save the trie again."
                )
        problem = _check_arrays(arrays, meta)
        if problem:
            raise ValueError(
                f"{TRIE_WEIGHTS_NAME} and {TRIE_CONFIG_NAME} in {d} do not form a valid trie: {problem}. Rebuild it "
                "with `SIDTrie.from_sids` and save it again."
            )
        trie = cls(
            arrays["indptr"],
            arrays["child_token"],
            arrays["leaf_node"],
            arrays["leaf_row"],
            arrays["depth_fanout"],
            meta["vocab_size"],
            tokenizer_fingerprint=meta.get("tokenizer_fingerprint"),
            end_token_id=meta.get("end_token_id"),
        )
        if tokenizer is not None:
            trie.check_tokenizer(tokenizer)
        return trie


def _legacy_files(directory: Path) -> list[str]:
    """The files of a trie saved before manifests existed, found in `directory`."""
    names = [TRIE_CONFIG_NAME, TRIE_WEIGHTS_NAME]
    return [n for n in names if (directory / n).is_file()] if (directory / TRIE_CONFIG_NAME).is_file() else []


def _check_arrays(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> str | None:
    """The first way the loaded arrays fail the trie's invariants (see `SIDTrie`), or `None`; all vectorised."""
    for name in _ARRAY_NAMES:
        a = arrays.get(name)
        if a is None or a.ndim != 1 or a.dtype.kind not in "iu":
            return (
                f"{name!r} is {'missing' if a is None else f'{a.dtype} of shape {a.shape}'}, not a 1-d integer array"
            )
    indptr = arrays["indptr"].astype(np.int64)
    child, leaves = arrays["child_token"].astype(np.int64), arrays["leaf_node"].astype(np.int64)
    rows, fanout = arrays["leaf_row"].astype(np.int64), arrays["depth_fanout"].astype(np.int64)
    num_nodes, vocab = len(indptr) - 2, int(meta["vocab_size"])
    if num_nodes < 1:
        return f"indptr has {len(indptr)} entries; a trie has at least a root and the sink"
    for key, value in (("num_nodes", num_nodes), ("num_sids", len(leaves))):
        if key in meta and meta[key] != value:
            return f"{TRIE_CONFIG_NAME} records {key}={meta[key]} but the arrays hold {value}"
    counts = np.diff(indptr)
    if indptr[0] != 0 or (counts < 0).any():
        return "indptr is not a monotone offset array starting at 0"
    if indptr[-1] != len(child) or len(child) != num_nodes - 1 or counts[-1] != 0:
        return (
            f"indptr ends at {int(indptr[-1])} and child_token has {len(child)} edges, but {num_nodes} nodes have "
            f"{num_nodes - 1}"
        )
    if len(child) and (child.min() < 0 or child.max() >= vocab):
        return f"child_token holds ids outside [0, {vocab})"
    parent = np.repeat(np.arange(num_nodes + 1), counts)
    if (parent >= np.arange(1, num_nodes)).any():
        return "an edge points to a node numbered before its parent (not breadth-first)"
    same = parent[1:] == parent[:-1]
    if (child[1:][same] <= child[:-1][same]).any():
        return "the children of a node are not sorted by token"
    if len(rows) != len(leaves):
        return f"leaf_node has {len(leaves)} entries but leaf_row {len(rows)}"
    childless = np.flatnonzero(counts[1:num_nodes] == 0) + 1
    if not np.array_equal(leaves, childless):
        return "leaf_node is not the sorted list of childless nodes"
    if len(rows) and (rows.min() < 0 or len(np.unique(rows)) != len(rows)):
        return "leaf_row holds negative or repeated SID rows"
    depth_max, lo, hi = [], 0, 1  # most children per depth, as `_nodes_by_depth` walks it
    while int(indptr[hi]) > int(indptr[lo]):
        depth_max.append(int(counts[lo:hi].max()))
        lo, hi = int(indptr[lo]) + 1, int(indptr[hi]) + 1
    if fanout.tolist() != depth_max:
        return f"depth_fanout {fanout.tolist()} differs from the fan-out of the arrays {depth_max}"
    end = meta.get("end_token_id")
    if end is not None and not (isinstance(end, int) and 0 <= end < vocab):
        return f"end_token_id {end!r} is outside [0, {vocab})"
    return None


def _transition(
    t: dict[str, torch.Tensor], fanout: list[int], depth: int, state: torch.Tensor, token: torch.Tensor, sink: int
) -> torch.Tensor:
    """Child of `state` (R,) along `token` (R,), `sink` where there is none; one window compare, no host sync."""
    k = fanout[depth] if depth < len(fanout) else 0
    if k == 0:
        return torch.full_like(state, sink)
    start = t["indptr"][state].long()
    end = t["indptr"][state + 1].long()
    pos = start[:, None] + torch.arange(k, device=state.device)
    valid = pos < end[:, None]
    tok = t["child_token"][pos.clamp(max=max(t["child_token"].shape[0] - 1, 0))]
    match = valid & (tok == token[:, None])
    # at most one slot matches (children are distinct); the sum picks it without argmax
    child = (match * (pos + 1)).sum(1)
    return torch.where(match.any(1), child, torch.full_like(state, sink))
