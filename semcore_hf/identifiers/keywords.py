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

_CHUNK = 32_768  # (doc, candidate) pairs per chunk: bounds the temporary (chunk, d) arrays to ~50 MB at d=384


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


def ngram_doc_term(
    tokens: np.ndarray, offsets: np.ndarray, words: list[str], ngram_range: tuple[int, int], binary: bool = False
) -> tuple[sp.csr_matrix, np.ndarray]:
    """`CountVectorizer(analyzer=WordAnalyzer(...)).fit_transform` over texts already split into word ids.

    Each n-gram gets an integer id from the ids of its (n-1)-gram prefix and its last word (one `np.unique` per
    length), so no n-gram string is built per occurrence, only once per distinct n-gram; the columns are the
    n-grams sorted as strings, as `CountVectorizer` sorts its vocabulary.

    Args:
        tokens (`np.ndarray`): the analysed word ids of every text, concatenated (stop words already removed).
        offsets (`np.ndarray`): `(num_docs + 1,)` start of each text in `tokens`.
        words (`list[str]`): word id -> word.
        ngram_range (`tuple[int, int]`): min and max n-gram length.
        binary (`bool`, defaults to `False`): 1 for every present n-gram instead of its count.

    Returns:
        `(doc_term, feature_names)`: a `(num_docs, F)` int64 CSR matrix with sorted indices and the `F` n-grams.

    Raises:
        ValueError: no text holds a single n-gram (the vectorizer's "empty vocabulary").
    """
    lo, hi = int(ngram_range[0]), int(ngram_range[1])
    tokens = np.asarray(tokens, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64)
    num_docs, total = len(offsets) - 1, len(tokens)
    doc = np.repeat(np.arange(num_docs, dtype=np.int64), np.diff(offsets))
    room = offsets[1:][doc] - np.arange(total)  # words left in the text from each position on
    base = max(len(words), 1)
    gram = tokens.copy()  # id of the n-gram starting at each position (-1 where it does not fit)
    names_prev: list[str] = list(words)
    levels_rows, levels_ids, levels_names = [], [], []
    for n in range(1, hi + 1):
        if n > 1:
            fits = room >= n
            key = np.full(total, -1, dtype=np.int64)
            key[fits] = gram[fits] * base + tokens[np.flatnonzero(fits) + n - 1]
            uniq, inv = np.unique(key[fits], return_inverse=True)
            gram = np.full(total, -1, dtype=np.int64)
            gram[fits] = inv
            prefix, last = uniq // base, uniq % base
            names_prev = [f"{names_prev[p]} {words[w]}" for p, w in zip(prefix.tolist(), last.tolist())]
        if n >= lo:
            fits = gram >= 0
            levels_rows.append(doc[fits])
            levels_ids.append(gram[fits])
            levels_names.append(names_prev)
    offset, cols, names = 0, [], []
    for ids, level_names in zip(levels_ids, levels_names):
        used = np.unique(ids)  # unigrams: only words that survived the analyser name a feature
        compact = np.full(len(level_names), -1, dtype=np.int64)
        compact[used] = np.arange(len(used)) + offset
        cols.append(compact[ids])
        names.extend(level_names[i] for i in used.tolist())
        offset += len(used)
    if not names:
        raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
    order = sorted(range(len(names)), key=names.__getitem__)
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(names))
    rows = np.concatenate(levels_rows)
    col = rank[np.concatenate(cols)]
    x = sp.csr_matrix((np.ones(len(rows), dtype=np.int64), (rows, col)), shape=(num_docs, len(names)), dtype=np.int64)
    x.sum_duplicates()  # also sorts the indices
    if binary:
        x.data[:] = 1
    return x, np.asarray([names[i] for i in order], dtype=object)


def score_candidate_blocks(
    doc_term: sp.csr_matrix,
    doc_emb: np.ndarray,
    candidates: np.ndarray,
    embedder,
    batch_size: int,
    block: int,
    show_progress: bool = False,
) -> tuple[np.ndarray, ...]:
    """`score_pairs` with the candidates embedded `block` at a time: memory holds one block, not all of them.

    A million captions have millions of distinct n-grams; their embeddings would not fit next to the documents'. The
    pairs are visited block by block of candidates, and the documents are normalised row by row as they are
    gathered (the same arithmetic as `score_pairs`, so the scores are the same bits).

    Returns:
        `(rows, cols, scores)`: three arrays of length nnz, sorted by row then column.
    """
    x = sp.csr_matrix(doc_term)
    x.sort_indices()
    rows = np.repeat(np.arange(x.shape[0], dtype=np.int64), np.diff(x.indptr))
    cols = x.indices.astype(np.int64)
    doc_emb = np.asarray(doc_emb, dtype=np.float32)
    norms = np.empty((len(doc_emb), 1), dtype=np.float32)
    for a in range(0, len(doc_emb), _CHUNK):
        norms[a : a + _CHUNK] = np.maximum(np.linalg.norm(doc_emb[a : a + _CHUNK], axis=1, keepdims=True), 1e-12)
    single = len(candidates) <= block  # the common case: pairs in row order, no permutation needed
    by_col = None if single else np.argsort(cols, kind="stable")
    bounds = [0, len(cols)] if single else np.searchsorted(cols[by_col], np.arange(0, len(candidates) + block, block))
    scores = np.empty(len(cols), dtype=np.float32)
    for i, start in enumerate(range(0, len(candidates), block)):
        texts = [str(c) for c in candidates[start : start + block]]
        cand = _l2(embed_texts(embedder, texts, batch_size, show_progress))
        for s in range(bounds[i], bounds[i + 1], _CHUNK):
            e = min(s + _CHUNK, bounds[i + 1])
            pair = slice(s, e) if single else by_col[s:e]
            r = rows[pair]
            d = doc_emb[r]
            d /= norms[r]  # in place: `_l2` of the gathered rows, without a second temporary
            scores[pair] = np.einsum("ij,ij->i", d, cand[cols[pair] - start])
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


def select_phrases_both(
    rows: np.ndarray,
    cols: np.ndarray,
    scores: np.ndarray,
    keep: np.ndarray,
    candidates: np.ndarray,
    num_docs: int,
    limit: int,
) -> tuple[list[list[str]], list[list[str]]]:
    """`(select_phrases(..., keep, ...), select_phrases(..., all pairs, ...))` from one sort and one pass.

    The kept pairs sorted on their own come in the order they have among all pairs (the sort keys do not depend
    on `keep`), so one walk over the sorted pairs fills both lists.
    """
    order = np.lexsort((cols, -scores.astype(np.float64), rows))
    bounds = np.searchsorted(rows[order], np.arange(num_docs + 1)).tolist()
    cols_sorted, keep_sorted = cols[order].tolist(), np.asarray(keep, dtype=bool)[order].tolist()
    del order
    cand_words = [tuple(str(p).split()) for p in candidates]
    names = list(candidates)
    dedup: list[list[str]] = []
    own: list[list[str]] = []
    for i in range(num_docs):
        d_chosen: list[str] = []
        o_chosen: list[str] = []
        d_used: set[str] = set()
        o_used: set[str] = set()
        for k in range(bounds[i], bounds[i + 1]):
            j = cols_sorted[k]
            words = cand_words[j]
            if len(o_chosen) < limit and not o_used.intersection(words):
                o_chosen.append(names[j])
                o_used.update(words)
            if keep_sorted[k] and len(d_chosen) < limit and not d_used.intersection(words):
                d_chosen.append(names[j])
                d_used.update(words)
            if len(d_chosen) >= limit and len(o_chosen) >= limit:
                break
        dedup.append(d_chosen)
        own.append(o_chosen)
    return dedup, own


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
