"""`semcore-hf evaluate`: Recall@K / MRR of a SID-trained model under the standard CMR protocol.

    semcore-hf evaluate --model outputs/t2i_lora --index outputs/sids/t2i_index \
        --source dataset_flickr30k.json --image-root flickr30k-images --direction t2i --split test

Writes `<output-dir>/metrics.json`, `<output-dir>/predictions.jsonl` and `<output-dir>/recall.png`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from semcore_hf.cli._args import existing_dir, existing_path, local_or_hub, non_empty_str, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=local_or_hub, help="Trained model directory or Hub id.")
    parser.add_argument("--index", required=True, type=local_or_hub, help="SIDIndex of the direction's targets.")
    parser.add_argument(
        "--source", required=True, type=existing_path, help="The image-caption source given to build-sids."
    )
    parser.add_argument("--image-root", type=existing_dir, help="Base folder of relative image paths.")
    parser.add_argument("--direction", choices=["t2i", "i2t"], default="t2i")
    parser.add_argument("--split", type=non_empty_str, default="test")
    parser.add_argument("-k", type=positive_int, nargs="+", default=[1, 5, 10], help="Cut-offs K (default: 1 5 10).")
    parser.add_argument("--num-beams", type=positive_int, help="Beams (default: max k).")
    parser.add_argument(
        "--max-num-beams",
        type=positive_int,
        help="Most beams the exact search may widen to for a query it cannot certify (default: max(4 x beams, 32)).",
    )
    parser.add_argument(
        "--certify",
        type=positive_int,
        help="Widen the search until this many leading ranks are certified exact (default: 1).",
    )
    parser.add_argument("--batch-size", type=positive_int, default=8, help="Queries per batch (default: 8).")
    parser.add_argument("--max-queries", type=positive_int, help="Evaluate only the first N queries (quick checks).")
    parser.add_argument("--full-index", action="store_true", help="Rank every target of the index, not the split's.")
    parser.add_argument("--device", help="cpu, cuda, ... (default: cuda if available).")
    parser.add_argument("--output-dir", default="outputs/eval")


def run(args: argparse.Namespace) -> int:
    from semcore_hf._io import atomic_write_text
    from semcore_hf.data import load_image_caption_source
    from semcore_hf.evaluation import build_query_set, evaluate_retriever, plot_recall_curves
    from semcore_hf.retrieval import SemCORERetriever

    # Images are decoded up front only where they are the queries (I2T); T2I ranks image ids.
    check_images = True if args.direction == "i2t" else "exists"
    rows = load_image_caption_source(args.source, image_root=args.image_root, check_images=check_images)
    qs = build_query_set(rows, args.direction, args.split).head(args.max_queries)
    retriever = SemCORERetriever.from_pretrained(
        args.model, args.index, device=args.device, gallery=None if args.full_index else qs.gallery
    )
    res = evaluate_retriever(
        retriever,
        qs,
        k=args.k,
        num_beams=args.num_beams,
        batch_size=args.batch_size,
        max_num_beams=args.max_num_beams,
        certify=args.certify,
    )
    out = Path(args.output_dir)
    summary = {"direction": args.direction, "split": args.split, "num_queries": len(qs), "gallery": len(qs.gallery)}
    summary.update(
        metrics=res["metrics"],
        seconds_per_query=res["seconds_per_query"],
        exact_fraction=res["exact_fraction"],
        exact_at_1_fraction=res["exact_at_1_fraction"],
    )
    atomic_write_text(out / "metrics.json", json.dumps(summary, indent=2))
    atomic_write_text(out / "predictions.jsonl", "".join(json.dumps(p) + "\n" for p in res["predictions"]))
    plot_recall_curves({f"SemCORE {args.direction.upper()}": res["metrics"]}, out / "recall.png")
    m = res["metrics"]
    print(" | ".join(f"{key} {100 * m[key]:.1f}" for key in m if key.startswith("recall@")) + f" | mrr {m['mrr']:.3f}")
    print(
        f"{len(qs)} queries, gallery {len(qs.gallery)}, {1000 * res['seconds_per_query']:.0f} ms/query, "
        f"first rank certified exact for {100 * res['exact_at_1_fraction']:.0f}% of queries, the whole ranking for "
        f"{100 * res['exact_fraction']:.0f}% -> {out}"
    )
    return 0
