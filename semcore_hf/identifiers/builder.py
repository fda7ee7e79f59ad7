"""`SIDBuilder`: captions -> embeddings -> K-Means -> c-TF-IDF global IDs + KeyBERT lexical IDs -> `SIDIndex`."""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from semcore_hf.identifiers import ctfidf as _ctfidf
from semcore_hf.identifiers import keywords as _kw
from semcore_hf.identifiers import text as _text
from semcore_hf.identifiers.config import SIDConfig
from semcore_hf.identifiers.text import make_vectorizer, resolve_stop_words
from semcore_hf.tokenization.sid_format import join_sid, split_sid

logger = logging.getLogger(__name__)

_UNIQUE_SEARCH_WORDS = 50  # words per cluster searched when making global IDs unique


def _load_embedder(config: SIDConfig):
    """Load `config.embedding_model` with sentence-transformers (a Hub id is only fetched if not cached)."""
    from sentence_transformers import SentenceTransformer

    logger.info("Loading the embedder %s", config.embedding_model)
    return SentenceTransformer(config.embedding_model, device=config.device)


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
    Each list holds up to n + max_extra_phrases phrases.
    """
    if callable(texts):
        texts = texts()
    vectorizer = make_vectorizer(resolve_stop_words(config.stop_words), config.keyphrase_ngram_range, binary=True)
    try:
        doc_term, candidates, cand_emb = _kw.keybert_candidates(
            texts, vectorizer, embedder, config.batch_size, show_progress
        )
    except ValueError:  # empty vocabulary: every word is a stop word
        return [[] for _ in range(num_docs)], [[] for _ in range(num_docs)]
    rows, cols, scores = _kw.score_pairs(doc_term, doc_emb, cand_emb)
    banned = [
        g.split() + [w for w in words if w not in g.split()][: config.dedup_extra_words]
        for g, words in zip(global_ids, cluster_words)
    ]
    keep = ~_kw.banned_pairs(candidates, clusters, rows, cols, banned)
    limit = config.lexical_phrases + config.max_extra_phrases
    dedup = _kw.select_phrases(rows, cols, scores, keep, candidates, num_docs, limit)
    own = _kw.select_phrases(rows, cols, scores, np.ones_like(keep), candidates, num_docs, limit)
    return dedup, own


def text_key(text: str) -> int:
    """A 63-bit digest of a text's normalised words: equal exactly for texts no SID could tell apart."""
    import hashlib

    words = " ".join(_text.words_of(text))
    return int.from_bytes(hashlib.blake2b(words.encode("utf-8"), digest_size=8).digest(), "little") >> 1


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


def _collision_report(
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
            # Texts without a single word would all get one empty SID: refuse them before any embedding.
            wordless = []
            for start, batch in zip(range(0, n, bs), col_ds.iter(batch_size=bs)):
                wordless += _text.unrepresentable(batch[text_column], start)
            if wordless:
                _text.raise_unrepresentable(wordless, ids)

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
        wordless = _text.unrepresentable(texts)
        if wordless:
            _text.raise_unrepresentable(wordless, ids)
        return n, ids, (lambda: iter(texts)), None, texts

    def _embed(self, n, ds, texts, text_column, show_progress) -> np.ndarray:
        bs = self.config.batch_size
        embedder = self.embedder
        if ds is not None:
            # datasets.map streams the column through the embedder in batches; only the embeddings are kept.
            def fn(batch):
                return {"embedding": _kw.embed_texts(embedder, batch[text_column], bs)}

            mapped = ds.map(
                fn,
                batched=True,
                batch_size=bs,
                remove_columns=[text_column],
                desc="Embedding texts",
                disable_nullable=True,
            )
            emb = np.asarray(mapped.with_format("numpy")[:]["embedding"], dtype=np.float32)
        else:
            emb = _kw.embed_texts(embedder, texts, bs, show_progress)
        if emb.ndim != 2 or emb.shape[0] != n:
            raise RuntimeError(f"The embedder returned an array of shape {emb.shape} for {n} texts.")
        return _l2(emb) if self.config.normalize_embeddings else emb

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

    def _verbalise(self, text_iter, labels: np.ndarray, num_docs: int) -> tuple[list[str], list[list[str]]]:
        cfg = self.config
        vec = make_vectorizer(resolve_stop_words(cfg.stop_words), (1, 1))
        try:
            doc_word = vec.fit_transform(text_iter()).tocsr()
            vocab = vec.get_feature_names_out()
        except ValueError:  # every word is a stop word
            import scipy.sparse as sp

            doc_word, vocab = sp.csr_matrix((num_docs, 0), dtype=np.int64), np.array([], dtype=object)
        counts = _ctfidf.cluster_term_counts(doc_word, labels, cfg.num_clusters)
        weights = _ctfidf.ctfidf(counts)
        words = _ctfidf.top_words(weights, vocab, max(cfg.cluster_words_top_k, _UNIQUE_SEARCH_WORDS))
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
        from semcore_hf.identifiers.index import SIDIndex, check_target_modality

        check_target_modality(target_modality)
        cfg = self.config
        log = logger.info if show_progress else logger.debug
        t_all = time.perf_counter()
        n, ids, text_iter, ds, text_list = self._prepare(texts, target_ids, text_column, id_column)
        _check_ids(ids)
        if n == 0:
            raise ValueError("No texts given: SIDBuilder.build needs at least one target.")
        if cfg.num_clusters > n:
            raise ValueError(
                f"num_clusters={cfg.num_clusters} is larger than the number of targets ({n}). Use a smaller K, e.g. "
                f"SIDConfig(num_clusters={max(1, min(n, round(n**0.5)))})."
            )
        self.timings = {}

        t = time.perf_counter()
        log("SID building [1/4]: embedding %d texts", n)
        emb = self._embed(n, ds, text_list, text_column, show_progress)
        self.timings["embed"] = time.perf_counter() - t

        t = time.perf_counter()
        log("SID building [2/4]: K-Means with K=%d", cfg.num_clusters)
        labels, centroids = self._cluster(emb)
        self.timings["cluster"] = time.perf_counter() - t

        t = time.perf_counter()
        log("SID building [3/4]: c-TF-IDF global IDs")
        global_ids, cluster_words = self._verbalise(text_iter, labels, n)
        self.timings["verbalise"] = time.perf_counter() - t

        t = time.perf_counter()
        text_keys = [text_key(x) for x in text_iter()]
        tree = None
        if cfg.id_kind == "semantic":
            log("SID building [4/4]: KeyBERT lexical IDs")
            ranked, own = _lexical_candidates(
                text_iter, n, emb, labels, global_ids, cluster_words, cfg, self.embedder, show_progress
            )
            if not cfg.use_global_id:  # ablation: nothing to de-duplicate against
                ranked = own
            if not cfg.use_lexical_id:  # ablation: the cluster alone names the target
                ranked = own = [[] for _ in range(n)]
            globals_ = [global_ids[c] if cfg.use_global_id else "" for c in labels]
            self.timings["keybert"] = time.perf_counter() - t
            t = time.perf_counter()
            full = _assign_sids(globals_, ranked, cfg, own=own, text_keys=text_keys)
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
            target_text_hash=np.asarray(text_keys, dtype=np.int64),
            numeric_tree=tree,
            global_word_coverage=_global_word_coverage(text_iter(), labels, global_ids),
        )
        self.timings["assign"] = time.perf_counter() - t
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
