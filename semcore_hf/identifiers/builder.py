"""`SIDBuilder`: captions -> embeddings -> K-Means -> c-TF-IDF global IDs + KeyBERT lexical IDs -> `SIDIndex`."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np

from semcore_hf.identifiers import ctfidf as _ctfidf
from semcore_hf.identifiers import keywords as _kw
from semcore_hf.identifiers import text as _text
from semcore_hf.identifiers.config import SIDConfig
from semcore_hf.identifiers.sid_format import join_sid, split_sid
from semcore_hf.identifiers.text import resolve_stop_words

logger = logging.getLogger(__name__)

_UNIQUE_SEARCH_WORDS = 50  # words per cluster searched when making global IDs unique
_CANDIDATE_BLOCK = 131_072  # keyphrase candidates embedded at a time (~200 MB of float32 at d=384)


def _load_embedder(config: SIDConfig):
    """Load `config.embedding_model` with sentence-transformers (a Hub id is only fetched if not cached)."""
    from sentence_transformers import SentenceTransformer

    logger.info("Loading the embedder %s", config.embedding_model)
    return SentenceTransformer(config.embedding_model, device=config.device)


class _PoolEmbedder:
    """`encode` through a started sentence-transformers multi-process pool (`start_multi_process_pool`)."""

    def __init__(self, model, pool):
        self.model, self.pool = model, pool

    def get_sentence_embedding_dimension(self):
        return self.model.get_sentence_embedding_dimension()

    def encode(self, texts, **kwargs):
        kwargs.pop("show_progress_bar", None)  # the pool's workers show none
        return self.model.encode(list(texts), pool=self.pool, **kwargs)


class _DistributedEmbedder:
    """Splits every `encode` call across the torch.distributed processes and all-gathers the embeddings.

    Under `accelerate launch` or `torchrun` (one process per device, on one machine or several) every process runs
    the same deterministic build; each embeds a contiguous 1/N of every batch of texts, and all get the whole matrix
    in the original order, so every process ends with the same index.
    """

    def __init__(self, model):
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError(
                "SIDConfig.embedding_distributed needs an initialised torch.distributed process group: launch with "
                "`accelerate launch` or `torchrun` (the CLI initialises it), or call "
                "torch.distributed.init_process_group first."
            )
        self.model, self.dist = model, dist

    def get_sentence_embedding_dimension(self):
        return self.model.get_sentence_embedding_dimension()

    def encode(self, texts, **kwargs):
        texts = list(texts)
        rank, world = self.dist.get_rank(), self.dist.get_world_size()
        lo, hi = rank * len(texts) // world, (rank + 1) * len(texts) // world
        part = _kw.embed_texts(
            self.model, texts[lo:hi], kwargs.get("batch_size", 32), bool(kwargs.get("show_progress_bar"))
        )
        parts: list[Any] = [None] * world
        self.dist.all_gather_object(parts, part)
        dim = max(p.shape[1] if p.ndim == 2 else 0 for p in parts)
        return np.concatenate([p.reshape(-1, dim) for p in parts]).astype(np.float32, copy=False)


def _is_dataset(obj: Any) -> bool:
    try:
        import datasets
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, datasets.Dataset)


def _check_texts(texts: Iterable[Any], ids: Sequence[str] | None, offset: int = 0) -> list[int]:
    """Positions (from `offset`) of texts that are not non-empty strings."""
    return [offset + i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]


def _raise_bad_texts(bad: list[int], ids: Sequence[str]) -> None:
    shown = ", ".join(f"{p} (id {ids[p]!r})" for p in bad[:10])
    more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
    raise ValueError(
        f"{len(bad)} empty, whitespace-only or non-string text(s) at position(s) {shown}{more}. Every target needs "
        "one non-empty caption: drop those targets or caption them first (e.g. with `caption_images`)."
    )


def _check_ids(ids: Sequence[str]) -> None:
    counts = Counter(ids)
    dups = [i for i, c in counts.items() if c > 1]
    if dups:
        raise ValueError(f"Duplicate target ids {dups[:10]!r} ({len(dups)} in all): every target id must be unique.")


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _lexical_candidates(
    texts: Iterable[str] | Any,
    num_docs: int,
    doc_emb: np.ndarray,
    clusters: np.ndarray,
    global_ids: list[str],
    cluster_words: list[list[str]],
    config: SIDConfig,
    embedder,
    show_progress: bool = False,
) -> tuple[list[list[str]], list[list[str]]]:
    """KeyBERT-ranked keyphrases of each text: `(deduplicated, own)`.

    `deduplicated` drops every candidate holding a word of the target's global ID (semantic de-duplication); `own`
    keeps them, so that a text whose every keyphrase is a global word still has phrases of its own to fall back on.
    Each list holds up to n + max_extra_phrases phrases. `texts` is a `_Corpus` or the texts (or a callable
    returning them).
    """
    corpus = texts if isinstance(texts, _Corpus) else _Corpus.from_texts(texts() if callable(texts) else texts)
    try:
        doc_term, candidates = corpus.doc_term(
            resolve_stop_words(config.stop_words), config.keyphrase_ngram_range, binary=True
        )
    except ValueError:  # empty vocabulary: every word is a stop word
        return [[] for _ in range(num_docs)], [[] for _ in range(num_docs)]
    logger.info("KeyBERT: %d unique candidates over %d documents", len(candidates), doc_term.shape[0])
    rows, cols, scores = _kw.score_candidate_blocks(
        doc_term, doc_emb, candidates, embedder, config.batch_size, _CANDIDATE_BLOCK, show_progress
    )
    banned = [
        g.split() + [w for w in words if w not in g.split()][: config.dedup_extra_words]
        for g, words in zip(global_ids, cluster_words)
    ]
    keep = ~_kw.banned_pairs(candidates, clusters, rows, cols, banned)
    limit = config.lexical_phrases + config.max_extra_phrases
    return _kw.select_phrases_both(rows, cols, scores, keep, candidates, num_docs, limit)


def text_key(text: str) -> int:
    """A 63-bit digest of a text's normalised words: equal exactly for texts no SID could tell apart."""
    return _words_key(_text.words_of(text))


def _words_key(words: list[str]) -> int:
    return int.from_bytes(hashlib.blake2b(" ".join(words).encode("utf-8"), digest_size=8).digest(), "little") >> 1


class _Corpus:
    """Every text's words as ids into one vocabulary, from a single `words_of` pass over the texts.

    The c-TF-IDF counts, the KeyBERT candidates, the text digests, the global-word coverage and the check for texts
    without words all read these arrays (vectorised), instead of splitting every text into words once per stage: a
    million captions are tokenised once, and only ~4 bytes per word are kept.

    Attributes:
        words (`list[str]`): word id -> word, in order of first occurrence.
        tokens (`np.ndarray[int32]`): the word ids of every text (stop words included), concatenated.
        offsets (`np.ndarray[int64]`): `(num_docs + 1,)` start of each text in `tokens`.
        keys (`np.ndarray[int64]`): `text_key` of each text.
    """

    def __init__(self, words: list[str], tokens: np.ndarray, offsets: np.ndarray, keys: np.ndarray):
        self.words, self.tokens, self.offsets, self.keys = words, tokens, offsets, keys

    @classmethod
    def from_texts(cls, texts: Iterable[str], show_progress: bool = False, total: int | None = None) -> _Corpus:
        vocab: dict[str, int] = {}
        tokens, lengths, keys = array("i"), array("q"), array("q")
        if show_progress:
            from tqdm.auto import tqdm

            texts = tqdm(texts, total=total, desc="Splitting texts into words", unit="text")
        for text in texts:
            words = _text.words_of(text)
            keys.append(_words_key(words))
            lengths.append(len(words))
            tokens.extend([vocab.setdefault(w, len(vocab)) for w in words])  # a new word gets the next id
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(np.frombuffer(lengths, dtype=np.int64), out=offsets[1:])
        return cls(list(vocab), np.frombuffer(tokens, dtype=np.int32), offsets, np.frombuffer(keys, dtype=np.int64))

    @property
    def num_docs(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def _doc_of_token(self) -> np.ndarray:
        return np.repeat(np.arange(self.num_docs, dtype=np.int64), self.lengths())

    def analyzed(self, stop_words: frozenset[str]) -> tuple[np.ndarray, np.ndarray]:
        """`(tokens, offsets)` as `WordAnalyzer` sees them: stop words removed, unless a text has nothing else."""
        if not stop_words:
            return self.tokens, self.offsets
        is_stop = np.fromiter((w in stop_words for w in self.words), dtype=bool, count=len(self.words))
        doc = self._doc_of_token()
        keep = ~is_stop[self.tokens]
        kept = np.bincount(doc[keep], minlength=self.num_docs)
        keep |= kept[doc] == 0
        offsets = np.zeros(self.num_docs + 1, dtype=np.int64)
        np.cumsum(np.bincount(doc[keep], minlength=self.num_docs), out=offsets[1:])
        return self.tokens[keep], offsets

    def doc_term(
        self, stop_words: frozenset[str], ngram_range: tuple[int, int], binary: bool = False
    ) -> tuple[Any, np.ndarray]:
        """What `make_vectorizer(stop_words, ngram_range, binary=binary).fit_transform(texts)` and its
        `get_feature_names_out()` give, from the word ids (`keywords.ngram_doc_term`)."""
        tokens, offsets = self.analyzed(stop_words)
        return _kw.ngram_doc_term(tokens, offsets, self.words, ngram_range, binary=binary)

    def wordless(self) -> np.ndarray:
        """Positions of the texts without a single word."""
        return np.flatnonzero(self.lengths() == 0)

    def global_word_coverage(self, labels: np.ndarray, global_ids: list[str]) -> list[int]:
        """`_global_word_coverage` of these texts, vectorised over the word ids."""
        ids = {w: i for i, w in enumerate(self.words)}
        base = max(len(self.words), 1)
        keys = np.asarray(
            [c * base + ids[w] for c, g in enumerate(global_ids) for w in g.split() if w in ids], dtype=np.int64
        )
        doc = self._doc_of_token()
        hit = np.isin(np.asarray(labels, dtype=np.int64)[doc] * base + self.tokens, keys)
        return [int((np.bincount(doc[hit], minlength=self.num_docs) > 0).sum()), self.num_docs]


def _assign_sids(
    target_globals: list[str],
    ranked: list[list[str]],
    config: SIDConfig,
    fixed: Counter | None = None,
    own: list[list[str]] | None = None,
    text_keys: list[int] | None = None,
    fixed_keys: dict[str, set[int]] | None = None,
) -> list[str]:
    """Full SIDs of new targets, so that de-duplication never makes two different texts share a SID.

    The lexical ID is the first n de-duplicated keyphrases (`ranked`); a target left with none falls back to its
    own keyphrases (`own`, global words included): "dog" and "cat" in the cluster `dog cat` get `dog cat | dog` and
    `dog cat | cat`, not both `dog cat | `. Members of a collision group (including targets already indexed, `fixed`,
    whose SIDs never change) are then extended level by level with further phrases until their SIDs are free:

    - groups of different texts (`text_keys`) always: with the keyphrases de-duplication removed, so a collision that
      de-duplication caused is undone (and, with `config.resolve_collisions`, first with next-best de-duplicated
      phrases);
    - with `config.resolve_collisions`, every group; identical texts can never be separated and stay a group.

    At most `config.max_extra_phrases` phrases are added. Members that cannot be separated keep the group's SID.
    """
    n = config.lexical_phrases
    own = ranked if own is None else own
    fixed = fixed or Counter()
    fixed_keys = fixed_keys or {}
    phrases, base_len = [], []
    for r, o in zip(ranked, own):
        first = (r or o)[:n]
        removed = [p for p in o if p not in r]  # what de-duplication took away
        tail = (r[n:] + removed) if config.resolve_collisions else removed
        phrases.append(first + [p for p in tail if p not in first])
        base_len.append(len(first))
    base = [join_sid(g, p[:k]) for g, p, k in zip(target_globals, phrases, base_len)]
    occupied = Counter(base) + fixed
    final = list(base)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(base):
        groups[s].append(i)
    for s, members in groups.items():
        if occupied[s] <= 1:
            continue
        keys = {text_keys[i] for i in members} | fixed_keys.get(s, set()) if text_keys is not None else set()
        if not config.resolve_collisions and len(keys) < 2:
            continue  # identical texts (or texts unknown): a collision group, as documented
        occupied[s] -= len(members)
        pending = list(members)
        for level in range(1, config.max_extra_phrases + 1):
            if len(pending) == 0 or (len(pending) == 1 and occupied[s] == 0):
                break
            if all(len(phrases[i]) <= base_len[i] + level - 1 for i in pending):
                break  # nobody has another phrase to add
            cand = {i: join_sid(target_globals[i], phrases[i][: base_len[i] + level]) for i in pending}
            by_sid: dict[str, list[int]] = defaultdict(list)
            for i in pending:
                by_sid[cand[i]].append(i)
            for t, ms in by_sid.items():
                if len(ms) == 1 and occupied[t] == 0 and t != s:
                    final[ms[0]] = t
                    occupied[t] += 1
            pending = [i for i in pending if final[i] == base[i]]
        occupied[s] += len(pending)  # the unresolved keep the original SID
    return final


def collision_statistics(
    target_sid: np.ndarray,
    num_sids: int,
    text_hash: np.ndarray | None = None,
    sids: list[str] | None = None,
    id_kind: str = "semantic",
) -> dict[str, Any]:
    """Collision groups (count, sizes, share of targets), by cause when the texts' digests are known.

    A group of identical texts (same normalised words) can never be told apart by any identifier; a group of
    different texts is a defect of the identifiers. For SemCORE SIDs it also counts SIDs with an empty lexical ID.
    """
    target_sid = np.asarray(target_sid, dtype=np.int64)
    sizes = np.bincount(target_sid, minlength=num_sids)
    group_sizes = sizes[sizes > 1]
    n = int(len(target_sid))
    hist = Counter(int(s) for s in group_sizes)
    report: dict[str, Any] = {
        "num_targets": n,
        "num_sids": int(num_sids),
        "num_groups": int(len(group_sizes)),
        "targets_in_groups": int(group_sizes.sum()),
        "fraction_in_groups": float(group_sizes.sum() / n) if n else 0.0,
        "largest_group": int(group_sizes.max()) if len(group_sizes) else 1,
        "size_histogram": {str(k): hist[k] for k in sorted(hist)},
    }
    if text_hash is not None and n:
        in_group = sizes[target_sid] > 1
        rows, hashes = target_sid[in_group], np.asarray(text_hash, dtype=np.int64)[in_group]
        pairs = np.unique(np.stack([rows, hashes], 1), axis=0) if len(rows) else np.zeros((0, 2), np.int64)
        distinct = np.bincount(pairs[:, 0], minlength=num_sids) if len(pairs) else np.zeros(num_sids, np.int64)
        mixed = (sizes > 1) & (distinct > 1)
        report.update(
            groups_identical_texts=int(((sizes > 1) & (distinct == 1)).sum()),
            groups_different_texts=int(mixed.sum()),
            targets_in_groups_of_different_texts=int(sizes[mixed].sum()),
        )
    if sids is not None and id_kind == "semantic":
        report["sids_with_empty_lexical_id"] = int(sum(1 for s in sids if not split_sid(s)[1]))
    return report


class SIDBuilder:
    """Builds a `SIDIndex` from one text per target (DESIGN.md, "The method in one page").

    Steps: (a) embed every text with a SentenceTransformer; (b) K-Means (`MiniBatchKMeans` above
    `config.minibatch_threshold` targets), seeded; (c) c-TF-IDF words of each cluster, the top-m made unique across
    clusters, form the global IDs; (d) KeyBERT keyphrases of each text, minus those containing a global-ID word and
    without repeated words, form the lexical IDs; (e) SID = ``"global | phrase, phrase"``; (f) targets that share a
    SID form a collision group (optionally separated, see `SIDConfig.resolve_collisions`).

    Duplicate texts get the same embedding, cluster and keyphrases, hence the same SID: they form one collision group
    that even `resolve_collisions` cannot split (retrieval expands it and GSV orders its members). A text whose every
    keyphrase candidate contains a global-ID word gets an empty lexical ID (``"cat sofa | "``, which `split_sid` reads
    back as ``("cat sofa", [])``).

    Args:
        config (`SIDConfig`, *optional*): defaults to `SIDConfig()`.
        embedder (`SentenceTransformer`, *optional*):
            Any object with a SentenceTransformer-style `encode(texts, batch_size=..., convert_to_numpy=True,
            show_progress_bar=...)`. Loaded from `config.embedding_model` when not given.

    Example:

    ```python
    >>> from semcore_hf.identifiers import SIDBuilder, SIDConfig
    >>> index = SIDBuilder(SIDConfig(embedding_model="path/to/all-MiniLM-L6-v2", num_clusters=8)).build(captions)
    >>> index.sid_of("0")
    'dog grass | brown puppy, red frisbee'
    ```
    """

    def __init__(self, config: SIDConfig | None = None, embedder=None):
        self.config = config if config is not None else SIDConfig()
        self._embedder = embedder
        self.timings: dict[str, float] = {}

    @property
    def embedder(self):
        """The sentence embedder (loaded from `config.embedding_model` on first use)."""
        if self._embedder is None:
            self._embedder = _load_embedder(self.config)
        return self._embedder

    @contextlib.contextmanager
    def _embedding_engine(self) -> Iterator[Any]:
        """The embedder `build` uses: `self.embedder`, through a sentence-transformers multi-process pool
        (`config.embedding_devices`) and/or split across the torch.distributed processes
        (`config.embedding_distributed`). The pool lives for one build and is stopped even on error."""
        cfg = self.config
        embedder = self.embedder
        pool = None
        if cfg.embedding_devices:
            if not hasattr(embedder, "start_multi_process_pool"):
                raise ValueError(
                    f"SIDConfig.embedding_devices needs a SentenceTransformer embedder (it has "
                    f"start_multi_process_pool); got {type(embedder).__name__}."
                )
            logger.info("Embedding with a sentence-transformers pool on %s", cfg.embedding_devices)
            pool = embedder.start_multi_process_pool(list(cfg.embedding_devices))
            embedder = _PoolEmbedder(embedder, pool)
        try:
            if cfg.embedding_distributed:
                embedder = _DistributedEmbedder(embedder)
            yield embedder
        finally:
            if pool is not None:
                type(self.embedder).stop_multi_process_pool(pool)

    # ----------------------------------------------------------------------------------------------- inputs
    def _prepare(self, texts, target_ids, text_column, id_column):
        """Validate the inputs; return (num_docs, ids, text_iter_factory, dataset_or_None, list_or_None)."""
        if _is_dataset(texts):
            ds = texts
            for col in [text_column] + ([id_column] if id_column else []):
                if col not in ds.column_names:
                    raise ValueError(
                        f"Column {col!r} not found in the dataset; available columns: {ds.column_names}. "
                        "Pass `text_column=` / `id_column=`."
                    )
            n = ds.num_rows
            if id_column is not None:
                ids = [str(x) for x in ds[id_column]]
            elif target_ids is not None:
                ids = [str(x) for x in target_ids]
            else:
                ids = [str(i) for i in range(n)]
            if len(ids) != n:
                raise ValueError(f"Got {len(ids)} target ids for {n} texts: pass exactly one id per text.")
            bad: list[int] = []
            col_ds = ds.select_columns([text_column])
            bs = max(self.config.batch_size, 1024)
            for start, batch in zip(range(0, n, bs), col_ds.iter(batch_size=bs)):
                bad += _check_texts(batch[text_column], ids, start)
            if bad:
                _raise_bad_texts(bad, ids)

            def text_iter() -> Iterator[str]:
                for batch in col_ds.iter(batch_size=bs):
                    yield from batch[text_column]

            return n, ids, text_iter, col_ds, None
        if isinstance(texts, str):
            raise TypeError("`texts` must be a list of strings (one per target), not a single string.")
        texts = list(texts)
        n = len(texts)
        ids = [str(i) for i in range(n)] if target_ids is None else [str(x) for x in target_ids]
        if len(ids) != n:
            raise ValueError(f"Got {len(ids)} target ids for {n} texts: pass exactly one id per text.")
        bad = _check_texts(texts, ids)
        if bad:
            _raise_bad_texts(bad, ids)
        return n, ids, (lambda: iter(texts)), None, texts

    def _tokenize(self, text_iter, n: int, ids: list[str], show_progress: bool) -> _Corpus:
        """Split every text into words once (`_Corpus`); refuse texts without any word before any embedding."""
        corpus = _Corpus.from_texts(text_iter(), show_progress=show_progress and n > 100_000, total=n)
        wordless = corpus.wordless()
        if len(wordless):
            # Texts without a single word would all get one empty SID; the error quotes the first ten.
            shown = set(wordless[:10].tolist())
            quoted = [(i, t) for i, t in enumerate(text_iter()) if i in shown]
            _text.raise_unrepresentable(quoted + [(int(p), "") for p in wordless[10:]], ids)
        return corpus

    def _embed(self, n: int, text_iter, embedder, show_progress: bool) -> np.ndarray:
        """Embed every text into one preallocated float32 array, `config.embedding_chunk_size` texts per call.

        Only one chunk of texts and its embeddings are held besides the result, and the result is normalised in
        place, block by block, so the peak memory is the (n, d) matrix plus a chunk.
        """
        cfg = self.config
        chunk = cfg.embedding_chunk_size
        texts = text_iter()
        emb, pos = None, 0
        bar = None
        if show_progress and n > chunk:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, desc="Embedding texts", unit="text")
        while pos < n:
            batch = list(islice(texts, chunk))
            if not batch:
                break
            part = _kw.embed_texts(embedder, batch, cfg.batch_size, show_progress and bar is None)
            if part.ndim != 2 or part.shape[0] != len(batch):
                raise RuntimeError(f"The embedder returned an array of shape {part.shape} for {len(batch)} texts.")
            if emb is None:
                emb = np.empty((n, part.shape[1]), dtype=np.float32)
            emb[pos : pos + len(batch)] = part
            pos += len(batch)
            if bar is not None:
                bar.update(len(batch))
        if bar is not None:
            bar.close()
        if emb is None or pos != n:
            raise RuntimeError(f"The embedder returned {pos} embeddings for {n} texts.")
        if cfg.normalize_embeddings:
            for a in range(0, n, chunk):  # in place: no second (n, d) matrix
                block = emb[a : a + chunk]
                block /= np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
        return emb

    def _cluster(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.cluster import KMeans, MiniBatchKMeans

        cfg = self.config
        kwargs = dict(
            n_clusters=cfg.num_clusters, n_init=cfg.kmeans_n_init, max_iter=cfg.kmeans_max_iter, random_state=cfg.seed
        )
        if len(emb) > cfg.minibatch_threshold:
            km = MiniBatchKMeans(batch_size=cfg.minibatch_batch_size, **kwargs)
        else:
            km = KMeans(**kwargs)
        logger.info("Clustering %d targets into %d clusters with %s", len(emb), cfg.num_clusters, type(km).__name__)
        labels = km.fit_predict(emb).astype(np.int64)
        return labels, km.cluster_centers_.astype(np.float32)

    def _verbalise(self, corpus: _Corpus, labels: np.ndarray, num_docs: int) -> tuple[list[str], list[list[str]]]:
        cfg = self.config
        try:
            doc_word, vocab = corpus.doc_term(resolve_stop_words(cfg.stop_words), (1, 1))
        except ValueError:  # every word is a stop word
            import scipy.sparse as sp

            doc_word, vocab = sp.csr_matrix((num_docs, 0), dtype=np.int64), np.array([], dtype=object)
        counts = _ctfidf.cluster_term_counts(doc_word, labels, cfg.num_clusters)
        weights = _ctfidf.ctfidf(counts)
        words = _ctfidf.top_words(weights, vocab, max(cfg.cluster_words_top_k, _UNIQUE_SEARCH_WORDS))
        if cfg.global_word_rule == "coverage":
            words = _ctfidf.coverage_order(words, doc_word, labels, vocab, cfg.global_words)
        sizes = np.bincount(labels, minlength=cfg.num_clusters)
        global_ids = _ctfidf.unique_global_ids(words, cfg.global_words, sizes)
        return global_ids, [w[: cfg.cluster_words_top_k] for w in words]

    # ----------------------------------------------------------------------------------------------- build
    def build(
        self,
        texts: Sequence[str] | Any,
        target_ids: Sequence[Any] | None = None,
        show_progress: bool = True,
        *,
        text_column: str = "text",
        id_column: str | None = None,
        target_modality: str | None = None,
    ):
        """Build the SID index of `texts` (one text per target).

        Args:
            texts (`list[str]` or `datasets.Dataset`):
                One caption per target, or a dataset holding them in `text_column` (streamed through
                `datasets.map(batched=True)`).
            target_ids (`list`, *optional*):
                The target ids (stored as strings). Defaults to `id_column` of the dataset, else the positions.
            show_progress (`bool`, defaults to `True`): tqdm bars and progress logging.
            text_column (`str`, defaults to `"text"`): the dataset column with the texts.
            id_column (`str`, *optional*): the dataset column with the target ids.
            target_modality (`str`, *optional*): what the targets are, recorded in the index: `"image"` for a T2I
                index (the texts describe images), `"text"` for an I2T index (the texts are the target captions), or
                `None` (unknown).

        Returns:
            `SIDIndex`; `builder.timings` holds the seconds spent per stage and `index.collision_report()` the
            collisions.

        Raises:
            ValueError: an empty text, duplicate target ids, `num_clusters` larger than the number of targets, a
            missing dataset column or an unknown `target_modality`.
        """
        from semcore_hf.identifiers.index import check_target_modality

        check_target_modality(target_modality)
        cfg = self.config
        log = logger.info if show_progress else logger.debug
        t_all = time.perf_counter()
        n, ids, text_iter, _, _ = self._prepare(texts, target_ids, text_column, id_column)
        self.timings = {}
        t = time.perf_counter()
        corpus = self._tokenize(text_iter, n, ids, show_progress)
        self.timings["tokenize"] = time.perf_counter() - t
        _check_ids(ids)
        if n == 0:
            raise ValueError("No texts given: SIDBuilder.build needs at least one target.")
        if cfg.num_clusters > n:
            raise ValueError(
                f"num_clusters={cfg.num_clusters} is larger than the number of targets ({n}). Use a smaller K, e.g. "
                f"SIDConfig(num_clusters={max(1, min(n, round(n**0.5)))})."
            )
        with self._embedding_engine() as embedder:
            index = self._build(n, ids, text_iter, corpus, embedder, target_modality, show_progress)
        self.timings["total"] = time.perf_counter() - t_all
        rep = index.collision_report()
        log(
            "Built %d SIDs for %d targets: %d collision groups holding %.2f%% of targets (sizes %s)",
            rep["num_sids"],
            rep["num_targets"],
            rep["num_groups"],
            100 * rep["fraction_in_groups"],
            rep["size_histogram"],
        )
        return index

    def _build(self, n, ids, text_iter, corpus: _Corpus, embedder, target_modality, show_progress: bool):
        """Steps (a)-(f) of `build` on checked inputs, with `embedder` the engine of `_embedding_engine`."""
        from semcore_hf.identifiers.index import SIDIndex

        cfg = self.config
        log = logger.info if show_progress else logger.debug
        t = time.perf_counter()
        log("SID building [1/4]: embedding %d texts", n)
        emb = self._embed(n, text_iter, embedder, show_progress)
        self.timings["embed"] = time.perf_counter() - t

        t = time.perf_counter()
        log("SID building [2/4]: K-Means with K=%d", cfg.num_clusters)
        labels, centroids = self._cluster(emb)
        self.timings["cluster"] = time.perf_counter() - t

        t = time.perf_counter()
        log("SID building [3/4]: c-TF-IDF global IDs")
        global_ids, cluster_words = self._verbalise(corpus, labels, n)
        self.timings["verbalise"] = time.perf_counter() - t

        t = time.perf_counter()
        text_keys = corpus.keys
        tree = None
        if cfg.id_kind == "semantic":
            log("SID building [4/4]: KeyBERT lexical IDs")
            ranked, own = _lexical_candidates(
                corpus, n, emb, labels, global_ids, cluster_words, cfg, embedder, show_progress
            )
            if not cfg.use_global_id:  # ablation: nothing to de-duplicate against
                ranked = own
            if not cfg.use_lexical_id:  # ablation: the cluster alone names the target
                ranked = own = [[] for _ in range(n)]
            globals_ = [global_ids[c] if cfg.use_global_id else "" for c in labels]
            self.timings["keybert"] = time.perf_counter() - t
            t = time.perf_counter()
            full = _assign_sids(globals_, ranked, cfg, own=own, text_keys=text_keys.tolist())
        else:
            log("SID building [4/4]: %s identifiers", cfg.id_kind)
            full, tree = _baseline_ids(cfg, emb, list(text_iter()))
        sids, target_sid = _sid_table(full)
        index = SIDIndex(
            config=cfg,
            sids=sids,
            target_ids=ids,
            target_sid=target_sid,
            target_cluster=labels,
            centroids=centroids,
            global_ids=global_ids,
            cluster_words=cluster_words,
            target_modality=target_modality,
            target_text_hash=text_keys,
            numeric_tree=tree,
            global_word_coverage=corpus.global_word_coverage(labels, global_ids),
        )
        self.timings["assign"] = time.perf_counter() - t
        return index

    # ----------------------------------------------------------------------------------------------- extend
    def assign_new_targets(
        self, index, target_ids: Sequence[str], texts: Sequence[str], show_progress: bool = False
    ) -> NewTargets:
        """SIDs of targets added to a built `index`, without re-clustering (what `SIDIndex.add` applies).

        Each new target goes to its nearest centroid and gets a lexical ID as in `build`. SIDs of targets already in
        the index never change; a new target whose SID is taken joins that collision group (unless its text differs:
        then, as in `build`, it is extended with further keyphrases where that separates it). Numeric identifiers
        descend the K-Means tree to the nearest leaf and take its next number; atomic identifiers get new tokens.
        Only the index's public tables are read; nothing is changed.

        Args:
            index (`SIDIndex`): the index the targets join (its `config` is the one used).
            target_ids (`Sequence[str]`): the new target ids; none may be in the index.
            texts (`Sequence[str]`): one non-empty text per new target.
            show_progress (`bool`, defaults to `False`): progress bars.

        Returns:
            `NewTargets`: their SIDs, clusters and text digests, and the global-word coverage they add.
        """
        cfg = index.config
        ids = [str(t) for t in target_ids]
        texts = list(texts)
        if len(ids) != len(texts):
            raise ValueError(f"Got {len(ids)} target ids for {len(texts)} texts: pass exactly one id per text.")
        _check_ids(ids)
        known = set(index.target_ids)
        present = [t for t in ids if t in known]
        if present:
            raise ValueError(f"Target ids already in the index: {present[:10]!r} ({len(present)} in all).")
        bad = _check_texts(texts, ids)
        if bad:
            _raise_bad_texts(bad, ids)
        emb = _kw.embed_texts(self.embedder, texts, cfg.batch_size, show_progress)
        if emb.shape[1] != index.centroids.shape[1]:
            raise ValueError(
                f"The embedder gives {emb.shape[1]}-d vectors but the centroids are {index.centroids.shape[1]}-d: "
                "use the embedder the index was built with."
            )
        if cfg.normalize_embeddings:
            emb = _l2(emb)
        # nearest centroid in Euclidean distance, as K-Means assigns
        centroids = index.centroids
        d2 = (emb**2).sum(1, keepdims=True) - 2 * emb @ centroids.T + (centroids**2).sum(1)[None, :]
        clusters = d2.argmin(1).astype(np.int64)
        keys = [text_key(t) for t in texts]
        if cfg.id_kind == "semantic":
            ranked, own = _lexical_candidates(
                lambda: iter(texts),
                len(texts),
                emb,
                clusters,
                index.global_ids,
                index.cluster_words,
                cfg,
                self.embedder,
                show_progress,
            )
            if not cfg.use_global_id:
                ranked = own
            if not cfg.use_lexical_id:
                ranked = own = [[] for _ in texts]
            sizes = np.bincount(index.target_sid, minlength=index.num_sids)
            fixed = Counter({index.sids[r]: int(c) for r, c in enumerate(sizes) if c})
            fixed_keys: dict[str, set[int]] = {}
            if index.target_text_hash is not None:
                for r, h in zip(index.target_sid.tolist(), index.target_text_hash.tolist()):
                    fixed_keys.setdefault(index.sids[r], set()).add(h)
            globals_ = [index.global_ids[c] if cfg.use_global_id else "" for c in clusters]
            full = _assign_sids(globals_, ranked, cfg, fixed=fixed, own=own, text_keys=keys, fixed_keys=fixed_keys)
        elif cfg.id_kind == "numeric":
            from semcore_hf.identifiers.kinds import numeric_sid

            # GRACE-style paths cannot be re-clustered without retraining: descend the tree, take the next number
            full = [numeric_sid(p) for p in index.numeric_tree.place(emb)]
        else:
            atoms = sum(1 for sid in index.sids if sid.startswith("<sid_atom_"))
            full, _ = _baseline_ids(cfg, emb, texts, start=atoms)
        coverage = _global_word_coverage(texts, clusters, index.global_ids)
        return NewTargets(sids=full, clusters=clusters, text_keys=np.asarray(keys, dtype=np.int64), coverage=coverage)


@dataclass
class NewTargets:
    """What `SIDBuilder.assign_new_targets` gives the targets added to an index (`SIDIndex.add` applies it).

    Attributes:
        sids (`list[str]`): the SID of each new target (existing SIDs for those that join a collision group).
        clusters (`np.ndarray[int64]`): the cluster of each new target.
        text_keys (`np.ndarray[int64]`): the digest of each new target's normalised words (`text_key`).
        coverage (`list[int]`): `[covered, total]` new targets whose text holds a word of their global ID.
    """

    sids: list[str]
    clusters: np.ndarray
    text_keys: np.ndarray
    coverage: list[int]


def _baseline_ids(config: SIDConfig, emb: np.ndarray, texts: list[str], start: int = 0):
    """Identifiers of the baseline kinds (`kinds.py`) for new targets: `(sids, numeric_tree or None)`."""
    from semcore_hf.identifiers import kinds

    if config.id_kind == "numeric":
        paths, tree = kinds.numeric_paths(
            emb, config.numeric_branching, config.numeric_leaf_size, config.seed, config.kmeans_n_init,
            config.kmeans_max_iter,
        )  # fmt: skip
        return [kinds.numeric_sid(p) for p in paths], tree
    if config.id_kind == "atomic":
        return kinds.atomic_ids(len(texts), start), None
    return kinds.text_ids(texts, config.text_id_max_words), None


def _global_word_coverage(texts: Iterable[str], labels: np.ndarray, global_ids: list[str]) -> list[int]:
    """`[covered, total]`: targets whose own text holds a word of their cluster's global ID, and all targets.

    A global ID is meant to describe the whole cluster; one made of words only two or three members contain says
    little about the rest (issue: SID quality), so the share is reported with every index.
    """
    words = [set(g.split()) for g in global_ids]
    covered = total = 0
    for text, c in zip(texts, labels):
        total += 1
        covered += bool(words[int(c)].intersection(_text.words_of(text)))
    return [covered, total]


def _sid_table(full: list[str], sids: list[str] | None = None, rows: dict[str, int] | None = None):
    """Unique SIDs in order of first occurrence (appended to `sids`), and the SID row of every entry of `full`."""
    sids = [] if sids is None else sids
    rows = {s: i for i, s in enumerate(sids)} if rows is None else rows
    out = np.empty(len(full), dtype=np.int64)
    for i, s in enumerate(full):
        r = rows.get(s)
        if r is None:
            r = rows[s] = len(sids)
            sids.append(s)
        out[i] = r
    return sids, out
