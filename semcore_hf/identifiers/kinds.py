"""Identifier kinds beside SemCORE's SIDs, as baselines through the very same pipeline (private).

Every kind is written in the SID string format (``"<global> | <lexical>"``, `semcore_hf.identifiers.sid_format`), so
the dataset builder, the tokenizer extension, the trie, the retriever and the harness treat all kinds alike:

- ``"semantic"`` (SemCORE): c-TF-IDF global words of the K-Means cluster + KeyBERT keyphrases (`builder.py`);
- ``"numeric"`` (GRACE's structured IDs, `data_process/structured_id.py`): the path of a target in a hierarchical
  K-Means tree over the same embeddings: `branching` clusters per node, recursively, until a node holds at most
  `leaf_size` targets, which are then numbered. ``"12 | 4 0"`` = cluster 12, its sub-cluster 4, position 0. The
  first level is the global part, the rest the lexical part;
- ``"atomic"``: one new token per target (``<sid_atom_17>``), added to the tokenizer; ``"<sid_atom_17> | "``;
- ``"text"`` (GENRE-style titles): the target's own normalised words, at most `text_id_max_words` of them;
  identical texts share an identifier (a collision group), as they do with SIDs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semcore_hf.identifiers.sid_format import join_sid

ID_KINDS = ("semantic", "numeric", "atomic", "text")
ATOMIC_TOKEN = "<sid_atom_{}>"


def atomic_ids(n: int, start: int = 0) -> list[str]:
    """The atomic identifiers of `n` targets numbered from `start`: one new token each."""
    return [join_sid(ATOMIC_TOKEN.format(i), []) for i in range(start, start + n)]


def atomic_tokens(sids: list[str]) -> list[str]:
    """The new tokens atomic identifiers need (in SID order)."""
    return [s.split(" | ", 1)[0] for s in sids]


def text_ids(texts: list[str], max_words: int) -> list[str]:
    """Each target's own words (normalised, in order, at most `max_words`) as its identifier."""
    from semcore_hf.identifiers.text import words_of

    return [join_sid(" ".join(words_of(t)[:max_words]), []) for t in texts]


@dataclass
class NumericTree:
    """The hierarchical K-Means tree behind numeric identifiers, kept in the index so new targets can be placed.

    Node 0 is the root. Every other node has a parent, its `label` (its number among its siblings: the digit it puts
    in the path) and, for internal nodes, the centroid its targets were clustered around. A leaf numbers its targets
    `0..leaf_count - 1`; a new target descends to the nearest centroid at every level and takes the next number.

    Attributes:
        parent (`np.ndarray[int64]` of shape `(M,)`): parent node (`-1` for the root).
        label (`np.ndarray[int64]` of shape `(M,)`): number among the siblings (`-1` for the root).
        centroid (`np.ndarray[float32]` of shape `(M, d)`): centroid of each node (zeros for the root).
        leaf_count (`np.ndarray[int64]` of shape `(M,)`): targets numbered in each leaf (`-1` for internal nodes).
    """

    parent: np.ndarray
    label: np.ndarray
    centroid: np.ndarray
    leaf_count: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "tree_parent": self.parent,
            "tree_label": self.label,
            "tree_centroid": self.centroid,
            "tree_leaf_count": self.leaf_count,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> NumericTree | None:
        if "tree_parent" not in arrays:
            return None
        tree = cls(
            np.asarray(arrays["tree_parent"], dtype=np.int64),
            np.asarray(arrays["tree_label"], dtype=np.int64),
            np.asarray(arrays["tree_centroid"], dtype=np.float32),
            np.asarray(arrays["tree_leaf_count"], dtype=np.int64),
        )
        tree.check()
        return tree

    def check(self) -> None:
        m = len(self.parent)
        if not (len(self.label) == len(self.leaf_count) == m and self.centroid.ndim == 2 and len(self.centroid) == m):
            raise ValueError("The numeric tree's arrays must have one entry per node.")
        if m == 0 or self.parent[0] != -1 or (m > 1 and ((self.parent[1:] < 0) | (self.parent[1:] >= m)).any()):
            raise ValueError("The numeric tree's parent links are broken (node 0 must be the only root).")

    def children(self, node: int) -> np.ndarray:
        return np.flatnonzero(self.parent == node)

    def path(self, node: int) -> list[int]:
        out = []
        while node > 0:
            out.append(int(self.label[node]))
            node = int(self.parent[node])
        return out[::-1]

    def place(self, emb: np.ndarray) -> list[list[int]]:
        """Paths of new targets: nearest child centroid at every level, then the next number of the leaf reached.

        Mutates `leaf_count` (the numbers are taken), so each new target gets a path of its own.
        """
        out = []
        for e in np.asarray(emb, dtype=np.float32):
            node = 0
            while self.leaf_count[node] < 0:
                kids = self.children(node)
                node = int(kids[np.argmin(((self.centroid[kids] - e) ** 2).sum(1))])
            out.append([*self.path(node), int(self.leaf_count[node])])
            self.leaf_count[node] += 1
        return out


def numeric_paths(
    emb: np.ndarray, branching: int, leaf_size: int, seed: int = 0, n_init: int = 3, max_iter: int = 300
) -> tuple[list[list[int]], NumericTree]:
    """GRACE-style structured IDs: recursive K-Means (`branching` clusters) until a node has <= `leaf_size` targets.

    Returns:
        `(paths, tree)`: the path of every target (cluster numbers, then the target's number in its leaf) and the
        tree (for `NumericTree.place`).
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans

    emb = np.asarray(emb, dtype=np.float32)
    n, d = emb.shape
    parent, label, centroid, leaf_count = [-1], [-1], [np.zeros(d, np.float32)], [-1]
    paths: list[list[int]] = [[] for _ in range(n)]
    stack = [(0, np.arange(n))]
    while stack:
        node, members = stack.pop()
        if len(members) <= leaf_size or len(members) < branching:
            leaf_count[node] = len(members)
            for i, m in enumerate(members):
                paths[m].append(i)
            continue
        kind = MiniBatchKMeans if len(members) > 100_000 else KMeans
        km = kind(n_clusters=branching, n_init=n_init, max_iter=max_iter, random_state=seed)
        labels = km.fit_predict(emb[members])
        if len(np.unique(labels)) < 2:  # identical embeddings: K-Means cannot split them, number them here
            leaf_count[node] = len(members)
            for i, m in enumerate(members):
                paths[m].append(i)
            continue
        for c in range(branching):
            child = len(parent)
            parent.append(node)
            label.append(c)
            centroid.append(km.cluster_centers_[c].astype(np.float32))
            leaf_count.append(-1)
            sub = members[labels == c]
            for m in sub:
                paths[m].append(c)
            stack.append((child, sub))
    tree = NumericTree(
        np.asarray(parent, np.int64), np.asarray(label, np.int64), np.stack(centroid), np.asarray(leaf_count, np.int64)
    )
    return paths, tree


def numeric_sid(path: list[int]) -> str:
    """``[12, 4, 0]`` -> ``"12 | 4 0"``: the first level is the global part, the rest one lexical phrase."""
    return join_sid(str(path[0]), [" ".join(map(str, path[1:]))] if len(path) > 1 else [])
