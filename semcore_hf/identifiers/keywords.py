"""KeyBERT keyphrase scoring, vectorised over a sparse doc-term matrix (private).

KeyBERT scores every candidate n-gram of a document by the cosine similarity between the candidate's embedding and the
document's embedding, with candidates from one `CountVectorizer` fitted on all documents. Its per-document Python loop
is too slow for 150k captions, so here every unique candidate is embedded once and all (document, candidate) pairs are
scored with one row-wise dot product over the non-zeros of the doc-term matrix, in chunks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)

_CHUNK = 262_144  # (doc, candidate) pairs per chunk: bounds the temporary (chunk, d) arrays to ~400 MB at d=384


def _l2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def embed_texts(embedder, texts: list[str], batch_size: int, show_progress: bool = False) -> np.ndarray:
    """Embed `texts` with a SentenceTransformer-like `embedder` (anything with `.encode`), as float32."""
    if len(texts) == 0:
        dim = (
            embedder.get_sentence_embedding_dimension() if hasattr(embedder, "get_sentence_embedding_dimension") else 0
        )
        return np.zeros((0, dim or 0), dtype=np.float32)
    emb = embedder.encode(list(texts), batch_size=batch_size, convert_to_numpy=True, show_progress_bar=show_progress)
    return np.asarray(emb, dtype=np.float32)


def score_pairs(doc_term: sp.csr_matrix, doc_emb: np.ndarray, cand_emb: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cosine similarity of every (document, candidate) non-zero of `doc_term`.

    Returns:
        `(rows, cols, scores)`: three arrays of length nnz, sorted by row then column.
    """
    x = sp.csr_matrix(doc_term)
    x.sort_indices()
    rows = np.repeat(np.arange(x.shape[0], dtype=np.int64), np.diff(x.indptr))
    cols = x.indices.astype(np.int64)
    d, c = _l2(doc_emb), _l2(cand_emb)
    scores = np.empty(len(cols), dtype=np.float32)
    for s in range(0, len(cols), _CHUNK):
        e = s + _CHUNK
        scores[s:e] = np.einsum("ij,ij->i", d[rows[s:e]], c[cols[s:e]])
    return rows, cols, scores


def banned_pairs(
    candidates: np.ndarray,
    doc_clusters: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    banned_words: list[Iterable[str]],
) -> np.ndarray:
    """Boolean mask over the pairs: True where the candidate contains a banned word of the document's cluster.

    Vectorised as a sparse (candidate x word) @ (word x cluster) product, then a membership test of the
    ``candidate * K + cluster`` keys, so no Python loop runs over the corpus.
    """
    k = len(banned_words)
    vocab: dict[str, int] = {}
    for words in banned_words:
        for w in words:
            vocab.setdefault(w, len(vocab))
    if not vocab or len(rows) == 0:
        return np.zeros(len(rows), dtype=bool)
    # candidate -> banned-word incidence: only the candidates' words that are banned somewhere matter
    ci, wi = [], []
    for j, phrase in enumerate(candidates):
        for w in str(phrase).split():
            col = vocab.get(w)
            if col is not None:
                ci.append(j)
                wi.append(col)
    if not ci:
        return np.zeros(len(rows), dtype=bool)
    cand_word = sp.csr_matrix((np.ones(len(ci)), (ci, wi)), shape=(len(candidates), len(vocab)))
    bi, bc = [], []
    for c, words in enumerate(banned_words):
        for w in words:
            bi.append(vocab[w])
            bc.append(c)
    word_cluster = sp.csr_matrix((np.ones(len(bi)), (bi, bc)), shape=(len(vocab), k))
    hit = (cand_word @ word_cluster).tocoo()
    banned_keys = np.unique(hit.row.astype(np.int64) * k + hit.col.astype(np.int64))
    keys = cols * k + doc_clusters[rows].astype(np.int64)
    return np.isin(keys, banned_keys)


def select_phrases(
    rows: np.ndarray,
    cols: np.ndarray,
    scores: np.ndarray,
    keep: np.ndarray,
    candidates: np.ndarray,
    num_docs: int,
    limit: int,
) -> list[list[str]]:
    """Per document, the kept candidates by decreasing score, skipping phrases that repeat a word already chosen.

    Ties are broken by candidate index (alphabetical), so the result is deterministic. At most `limit` phrases are
    returned per document: the first ones form the lexical ID, the rest are the next-best distinct keyphrases used to
    resolve collisions.
    """
    rows, cols, scores = rows[keep], cols[keep], scores[keep]
    order = np.lexsort((cols, -scores.astype(np.float64), rows))
    rows, cols = rows[order], cols[order]
    bounds = np.searchsorted(rows, np.arange(num_docs + 1))
    cand_words = [tuple(str(p).split()) for p in candidates]
    out: list[list[str]] = []
    for i in range(num_docs):
        chosen: list[str] = []
        used: set[str] = set()
        for j in cols[bounds[i] : bounds[i + 1]]:
            words = cand_words[j]
            if used.intersection(words):
                continue
            chosen.append(candidates[j])
            used.update(words)
            if len(chosen) >= limit:
                break
        out.append(chosen)
    return out


def keybert_candidates(
    texts: Iterable[str], vectorizer, embedder, batch_size: int, show_progress: bool = False
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Fit the candidate vectorizer on `texts` and embed every unique candidate once.

    Returns:
        `(doc_term, candidates, cand_emb)`.
    """
    doc_term = vectorizer.fit_transform(texts).tocsr()
    candidates = vectorizer.get_feature_names_out()
    logger.info("KeyBERT: %d unique candidates over %d documents", len(candidates), doc_term.shape[0])
    cand_emb = embed_texts(embedder, [str(c) for c in candidates], batch_size, show_progress)
    return doc_term, candidates, cand_emb


def keybert_scores(
    texts: list[str], doc_emb: np.ndarray, vectorizer, embedder, top_n: int = 5, batch_size: int = 64
) -> list[list[tuple[str, float]]]:
    """Vectorised `KeyBERT.extract_keywords(texts, vectorizer=vectorizer, top_n=top_n)` (cosine, no MMR).

    Used to check the vectorised scoring against the `keybert` reference.
    """
    doc_term, candidates, cand_emb = keybert_candidates(texts, vectorizer, embedder, batch_size)
    rows, cols, scores = score_pairs(doc_term, doc_emb, cand_emb)
    order = np.lexsort((cols, -scores.astype(np.float64), rows))
    rows, cols, scores = rows[order], cols[order], scores[order]
    bounds = np.searchsorted(rows, np.arange(len(texts) + 1))
    return [
        [(str(candidates[j]), float(s)) for j, s in zip(cols[a:b][:top_n], scores[a:b][:top_n])]
        for a, b in zip(bounds[:-1], bounds[1:])
    ]
