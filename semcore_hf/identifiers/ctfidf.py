"""Class-based TF-IDF verbalisation of clusters (private).

``W(x, c) = tf(x, c) * log(1 + A / f(x))`` with ``tf(x, c)`` the frequency of word x in cluster c, ``f(x)`` its
frequency over all clusters and ``A`` the average number of words per cluster (DESIGN.md, "Global ID").
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import scipy.sparse as sp

from semcore_hf.identifiers.text import POLARITY_WORDS, SEMCORE_STOP_WORDS


def cluster_term_counts(doc_term: sp.spmatrix, labels: np.ndarray, num_clusters: int) -> sp.csr_matrix:
    """Sum a (n_docs, V) count matrix into a (K, V) per-cluster count matrix with one sparse product."""
    n = doc_term.shape[0]
    onehot = sp.csr_matrix(
        (np.ones(n, dtype=np.int64), (labels.astype(np.int64), np.arange(n))), shape=(num_clusters, n)
    )
    return (onehot @ doc_term).tocsr()


def ctfidf(cluster_counts: sp.spmatrix) -> sp.csr_matrix:
    """The c-TF-IDF weights ``W`` (K, V) of a per-cluster count matrix, sparse in, sparse out."""
    counts = sp.csr_matrix(cluster_counts, dtype=np.float64)
    k = counts.shape[0]
    f = np.asarray(counts.sum(axis=0)).ravel()  # frequency of each word over all clusters
    avg = counts.sum() / max(k, 1)  # A: average number of words per cluster
    idf = np.zeros_like(f)
    nz = f > 0
    idf[nz] = np.log1p(avg / f[nz])
    return (counts @ sp.diags(idf)).tocsr()


def top_words(
    weights: sp.csr_matrix,
    vocabulary: np.ndarray,
    top_k: int,
    skip: frozenset[str] = POLARITY_WORDS,
    demote: frozenset[str] = SEMCORE_STOP_WORDS,
) -> list[list[str]]:
    """Top `top_k` words of each cluster, best first; ties broken alphabetically (deterministic).

    Words in `skip` never name a cluster: a negation or polarity word ("no", "not", "on") says how, not what, and it
    must stay available to the lexical IDs, which semantic de-duplication would otherwise strip of it. Words in
    `demote` (stop words, counted only for texts made of nothing else) come after every other word of the cluster, so
    that two texts "it is what it is" do not name a cluster of content texts "is it".
    """
    vocab = vocabulary.astype(object)
    skipped = np.isin(vocab, list(skip)) if len(skip) and len(vocab) else np.zeros(len(vocab), dtype=bool)
    demoted = np.isin(vocab, list(demote)) if len(demote) and len(vocab) else np.zeros(len(vocab), dtype=bool)
    out = []
    for c in range(weights.shape[0]):
        start, end = weights.indptr[c], weights.indptr[c + 1]
        idx, w = weights.indices[start:end], weights.data[start:end]
        keep = (w > 0) & ~skipped[idx]
        idx, w = idx[keep], w[keep]
        names = vocabulary[idx]
        order = np.lexsort((names, -w, demoted[idx]))[:top_k]
        out.append([str(x) for x in names[order]])
    return out


def unique_global_ids(cluster_words: list[list[str]], m: int, cluster_sizes: np.ndarray) -> list[str]:
    """Pick each cluster's global ID: its top-m words, made unique across clusters deterministically.

    Larger clusters choose first (ties: lower cluster index). A taken ID is replaced by the next combination in rank
    order, i.e. the last word is swapped for the next best word first. A cluster without enough distinct words falls
    back to its words plus its cluster number.
    """
    taken: set[str] = set()
    ids = [""] * len(cluster_words)
    for c in sorted(range(len(cluster_words)), key=lambda i: (-int(cluster_sizes[i]), i)):
        words = cluster_words[c]
        chosen = None
        if len(words) >= m:
            for combo in combinations(range(len(words)), m):
                candidate = " ".join(words[i] for i in combo)
                if candidate not in taken:
                    chosen = candidate
                    break
        if chosen is None:
            base = " ".join(words[: m - 1] if len(words) >= m else words) or "cluster"
            chosen, suffix = f"{base} {c}", c
            while chosen in taken:  # only reachable with adversarial vocabularies
                suffix += len(cluster_words)
                chosen = f"{base} {suffix}"
        taken.add(chosen)
        ids[c] = chosen
    return ids


def coverage_order(
    words: list[list[str]], doc_word, labels: np.ndarray, vocabulary: np.ndarray, m: int
) -> list[list[str]]:
    """Re-rank each cluster's candidate words so its first `m` cover as many of its members as possible.

    c-TF-IDF can name a cluster of short texts after a word only two or three of its members contain (it is frequent
    in them and rare elsewhere). Here the first word is the candidate that the most members' texts contain, the next
    the one that adds the most members not yet covered, and so on (greedy maximum coverage); ties keep the c-TF-IDF
    order, which also orders the words after the first `m`. The candidates are the cluster's c-TF-IDF top words, so
    the global ID still names what sets the cluster apart.

    Args:
        words (`list[list[str]]`): each cluster's candidate words, best c-TF-IDF first (`top_words`).
        doc_word (`scipy.sparse.spmatrix`): the (n_docs, V) document-word counts the weights came from.
        labels (`np.ndarray`): the cluster of each document.
        vocabulary (`np.ndarray`): the word of each column of `doc_word`.
        m (`int`): words per global ID.
    """
    col = {str(w): i for i, w in enumerate(vocabulary)}
    x = sp.csc_matrix(doc_word)
    out = []
    for c, cand in enumerate(words):
        members = set(np.flatnonzero(labels == c).tolist())
        docs = {w: set(x.indices[x.indptr[col[w]] : x.indptr[col[w] + 1]].tolist()) & members for w in cand}
        chosen: list[str] = []
        covered: set[int] = set()
        for _ in range(min(m, len(cand))):
            rest = [w for w in cand if w not in chosen]
            best = max(rest, key=lambda w: (len(docs[w] - covered), -cand.index(w)))
            chosen.append(best)
            covered |= docs[best]
        out.append(chosen + [w for w in cand if w not in chosen])
    return out
