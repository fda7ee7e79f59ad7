"""SemCORE's ablations on the demo data, as one command: identifier design, GSV and identifier kinds.

Mirrors the paper's analysis (its Figure 3 and ablation table) on the Tux Paint stamps of `semcore-hf demo`, with the
demo's model (SmolLM2-135M-Instruct, full fine-tuning), data, splits and evaluation (test queries over the test
images). Every configuration is trained from the same base with the same budget (`--epochs`, default 1) on the same
tasks (`t2i` + `memorize_t2i`), except `base + verify (GSV)`, which adds the `verify_t2i` rows GSV needs (so that
`base` against it shows what training the verifier costs generation, and GSV what it adds):

- `K=8`, `K=16`, `K=24` (= `base`), `K=48`: number of K-Means clusters (global IDs);
- `n=1`, `n=2`, `n=3` (= `base`), `n=4`: lexical-ID length (keyphrases per SID);
- `no global ID`, `no lexical ID`: one part of the SID only;
- `global words by coverage`: the global words chosen for how many cluster members contain them, not by c-TF-IDF;
- `base + verify (GSV)`: `base`'s SIDs, trained with `verify_t2i` too; evaluated by generation alone and with
  Generative Semantic Verification (weight chosen on validation);
- `base + pseudo-queries`: `base` plus `pseudo_t2i` rows, 3 pseudo-queries per image written few-shot by the base
  model from its text (6 train-split pairs as examples; `semcore_hf.data.generate_pseudo_queries`), for the images
  of every split, test included (doc2query / DSI-QG: the model meets each test image's SID under query-like text);
- `base, 2 epochs`: `base` trained twice as long, the control for the configurations that add training rows (and so
  steps) at the same epoch budget (GSV's verify rows, pseudo-queries);
- `numeric`, `atomic`, `text`: the baseline identifier kinds;
- `SIDs before issue 11`: `base`'s settings, SIDs built by the builder of commit 3151d64 (before negation words were
  kept, text normalised and emptied lexical IDs refilled; `git archive`, so this one needs a git checkout), then
  trained and evaluated by today's code: the R@1 the SID-quality fixes are worth.

Results: a table on the console, `<output-dir>/ablations.json`, `<output-dir>/ablations.md` and the plots
`<output-dir>/ablation_k.png` and `<output-dir>/ablation_lexical.png` (R@1 against K and against n). Each finished
configuration is cached in `<output-dir>/<name>/result.json`, so an interrupted run resumes.

    python benchmarks/bench_ablations.py                      # every configuration (~1 hour on 2 cores)
    python benchmarks/bench_ablations.py --only K=8 K=48      # a subset
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

GSV_CONFIG = "base + verify (GSV)"
PSEUDO_CONFIG = "base + pseudo-queries"
LEGACY_CONFIG = "SIDs before issue 11"
LEGACY_COMMIT = "3151d64"  # the last commit before the SID-quality fixes (b0cab21, 2f4f653)
CONFIGS = {
    "base": {},
    GSV_CONFIG: {},
    PSEUDO_CONFIG: {},
    # the identifier kinds first: SIDs against numeric, atomic and plain-text IDs is the paper's first claim
    "numeric": {"id_kind": "numeric"},
    "atomic": {"id_kind": "atomic"},
    "text": {"id_kind": "text"},
    "K=8": {"num_clusters": 8},
    "K=16": {"num_clusters": 16},
    "K=48": {"num_clusters": 48},
    "n=1": {"lexical_phrases": 1},
    "n=2": {"lexical_phrases": 2},
    "n=4": {"lexical_phrases": 4},
    "no global ID": {"use_global_id": False},
    "no lexical ID": {"use_lexical_id": False},
    "global words by coverage": {"global_word_rule": "coverage"},
    LEGACY_CONFIG: {},
    # a control for configurations that add rows (and so steps) to the same epoch budget
    "base, 2 epochs": {},
}
EPOCHS = {"base, 2 epochs": 2.0}  # configurations trained for other than --epochs
BASE = {"num_clusters": 24, "lexical_phrases": 3}


def run_config(name: str, overrides: dict, args, assets, rows, held_out, qsets) -> dict:
    from semcore_hf.cli import _experiment as ex

    out = Path(args.output_dir) / "".join(c if c.isalnum() else "_" for c in name).strip("_")
    cached = out / "result.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    minilm, smollm2 = assets
    settings = {**BASE, **overrides}
    config = ex.sid_config(minilm, args.seed, **settings)
    t = time.perf_counter()
    index, texts_by_id = ex.build_index(rows, held_out, config)
    if name == LEGACY_CONFIG:
        index = legacy_index(index, texts_by_id, minilm, settings, args.seed, out)
    index.save_pretrained(out / "t2i_index")
    tasks = ("t2i", "memorize_t2i", "verify_t2i") if name == GSV_CONFIG else ("t2i", "memorize_t2i")
    pseudo = None
    if name == PSEUDO_CONFIG:
        tasks += ("pseudo_t2i",)
        t_pseudo = time.perf_counter()
        pseudo = ex.pseudo_queries(rows, smollm2, out / "pseudo_queries.json", args.seed)
        run_timings = {"pseudo_queries": time.perf_counter() - t_pseudo}
    else:
        run_timings = {}
    n_rows = ex.build_data(rows, index, held_out, out / "dataset", tasks, args.seed, pseudo_queries=pseudo)
    run = ex.Run(config.id_kind, index, out / "model")
    if not (run.model_dir / "config.json").is_file():  # a model trained by an interrupted run is kept
        epochs = EPOCHS.get(name, args.epochs)
        ex.train(args.recipe, smollm2, out / "dataset", tasks, run.model_dir, out / "t2i_index", epochs, args.seed)
    run.timings.update(run_timings)
    run.timings["build_and_train"] = time.perf_counter() - t
    # One beam search per query (no widening): certified widening costs 10x at this budget (about 6 s/query);
    # every configuration is searched alike, and the share of certified first ranks is in the metrics.
    ex.evaluate_kind(
        run, qsets, texts_by_id, args.num_beams, gsv=name == GSV_CONFIG, minilm=minilm, max_num_beams=args.num_beams
    )
    rows_out = {
        row: {"metrics": r["metrics"], "seconds_per_query": r["seconds_per_query"]} for row, r in run.results.items()
    }
    result = {
        "settings": settings,
        "epochs": EPOCHS.get(name, args.epochs),
        "training_rows": n_rows,
        "identifiers": index.collision_report(),
        "rows": rows_out,
        "timings_s": run.timings,
    }
    cached.write_text(json.dumps(result, indent=2))
    return result


def legacy_index(index, texts_by_id: dict, minilm: str, settings: dict, seed: int, out: Path):
    """`index`'s targets with the SIDs the builder of `LEGACY_COMMIT` gives them (run from a `git archive`)."""
    import subprocess
    import sys
    import tempfile

    import numpy as np

    from semcore_hf.identifiers import SIDIndex
    from semcore_hf.identifiers.builder import text_key

    repo = Path(__file__).resolve().parents[1]
    ids = list(index.target_ids)
    texts = [texts_by_id[i] for i in ids]
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "legacy"
        tree.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", LEGACY_COMMIT, "semcore_hf"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        request = Path(tmp) / "request.json"
        legacy_settings = {**settings, "resolve_collisions": True, "seed": seed}
        request.write_text(json.dumps({"ids": ids, "texts": texts, "minilm": minilm, "settings": legacy_settings}))
        out.mkdir(parents=True, exist_ok=True)
        tables_path = (out / "legacy_tables.json").resolve()  # the builder runs in the temporary folder
        env = {**os.environ, "PYTHONPATH": str(tree)}
        script = str(repo / "benchmarks" / "_legacy_sids.py")
        subprocess.run([sys.executable, script, str(request), str(tables_path)], check=True, env=env, cwd=tmp)
    t = json.loads(tables_path.read_text())
    assert t["target_ids"] == ids, "the legacy builder reordered the targets"
    return SIDIndex(
        config=index.config,
        sids=t["sids"],
        target_ids=ids,
        target_sid=np.asarray(t["target_sid"]),
        target_cluster=np.asarray(t["target_cluster"]),
        centroids=np.asarray(t["centroids"], dtype=np.float32),
        global_ids=t["global_ids"],
        cluster_words=t["cluster_words"],
        target_modality="image",
        target_text_hash=np.asarray([text_key(x) for x in texts], dtype=np.int64),
    )


def plot(results: dict, path: Path, prefix: str, label: str, default: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = []
    for name, r in results.items():
        if name == "base":
            points.append((default, r))
        elif name.startswith(prefix):
            points.append((int(name.split("=")[1]), r))
    if not points:
        return
    points.sort()
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    rec1 = [100 * next(iter(r["rows"].values()))["metrics"]["recall@1"] for _, r in points]
    rec10 = [100 * next(iter(r["rows"].values()))["metrics"]["recall@10"] for _, r in points]
    ax.plot([x for x, _ in points], rec1, marker="o", label="R@1")
    ax.plot([x for x, _ in points], rec10, marker="s", label="R@10")
    ax.set_xlabel(label)
    ax.set_ylabel("Recall (%)")
    ax.set_xticks([x for x, _ in points])
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--output-dir", default="outputs/ablations")
    p.add_argument("--cache-dir", default=".cache/semcore_hf")
    p.add_argument(
        "--recipe", default=str(Path(__file__).resolve().parents[1] / "recipes" / "demo_t2i_smollm2_cpu.yaml")
    )
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--num-beams", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", nargs="+", help="configurations to run (default: all)")
    args = p.parse_args()

    from semcore_hf.cli import _assets
    from semcore_hf.cli import _experiment as ex

    cache = Path(args.cache_dir)
    assets = (_assets.minilm_path(), _assets.smollm2_checkpoint(cache))
    rows = ex.stamp_rows(_assets.tuxpaint_stamps(cache), quick=False)
    held_out = {str(i) for i in rows["test"]["image_id"] if ex.is_held_out(str(i))}
    qsets = ex.query_sets(rows, held_out)
    results = {}
    for name, overrides in CONFIGS.items():
        if args.only and name not in args.only:
            continue
        print(f"=== {name}", flush=True)
        results[name] = run_config(name, overrides, args, assets, rows, held_out, qsets)
    out = Path(args.output_dir)
    lines = [
        f"Ablations on the demo data (SmolLM2-135M, {args.epochs:g} epoch(s) per configuration unless the epochs "
        "column says otherwise, test queries over the test images)",
        "",
        "| configuration | row | R@1 | R@5 | R@10 | MRR | SIDs | collision groups | training rows x epochs | ms/query "
        "|",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        rep = r["identifiers"]
        for row, v in r["rows"].items():
            m = v["metrics"]
            lines.append(
                f"| {name} | {row} | {100 * m['recall@1']:.1f} | {100 * m['recall@5']:.1f} | "
                f"{100 * m['recall@10']:.1f} | {m['mrr']:.3f} | {rep['num_sids']} | {rep['num_groups']} | "
                f"{r['training_rows']:,} x {r.get('epochs') or args.epochs:g} | {1000 * v['seconds_per_query']:.0f} |"
            )
    table = "\n".join(lines) + "\n"
    print(table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablations.md").write_text(table)
    (out / "ablations.json").write_text(json.dumps(results, indent=2))
    plot(results, out / "ablation_k.png", "K=", "K (clusters / global IDs)", BASE["num_clusters"])
    plot(results, out / "ablation_lexical.png", "n=", "n (keyphrases per lexical ID)", BASE["lexical_phrases"])


if __name__ == "__main__":
    main()
