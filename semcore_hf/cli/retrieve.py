"""`semcore-hf retrieve`: ranked targets for text queries (T2I) or images (I2T) from a SID-trained model.

semcore-hf retrieve --model outputs/t2i_lora --index outputs/sids/t2i_index --query "a dog on the grass" -k 5
semcore-hf retrieve --model outputs/vlm --index outputs/sids/i2t_index --image photo.jpg -k 5 --json
"""

from __future__ import annotations

import argparse
import json

from semcore_hf.cli._args import (
    UsageError,
    existing_file,
    local_or_hub,
    non_empty_str,
    positive_int,
    read_json_object,
    unit_float,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", required=True, type=local_or_hub, help="Trained model directory or Hub id (LoRA adapters merge)."
    )
    parser.add_argument(
        "--index", required=True, type=local_or_hub, help="SIDIndex directory or Hub id of this direction's targets."
    )
    q = parser.add_mutually_exclusive_group(required=True)
    q.add_argument("--query", action="append", type=non_empty_str, help="A text query (T2I); repeat for several.")
    q.add_argument("--queries-file", type=existing_file, help="A text file with one query per line.")
    q.add_argument("--image", action="append", type=existing_file, help="An image path (I2T); repeat for several.")
    parser.add_argument("-k", type=positive_int, default=10, help="Targets per query (default: 10).")
    parser.add_argument("--num-beams", type=positive_int, help="Beams of the constrained search (default: k).")
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
    parser.add_argument(
        "--gsv-alpha", type=unit_float, help="Enable GSV re-ranking with this generation weight, in [0, 1]."
    )
    parser.add_argument(
        "--candidate-texts", type=existing_file, help="JSON {target_id: text} shown to GSV (captions of candidates)."
    )
    parser.add_argument("--device", help="cpu, cuda, ... (default: cuda if available).")
    parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")


def run(args: argparse.Namespace) -> int:
    # Queries and candidate texts are read (and checked) before the model is loaded.
    if args.image:
        from semcore_hf.modeling import open_image

        queries = []
        for path in args.image:
            try:
                queries.append(open_image(path))  # decodes fully, transparency on white as in training
            except ValueError as e:
                raise UsageError(f"--image {path}: {e}") from e
        labels = list(args.image)
    elif args.queries_file:
        try:
            with open(args.queries_file, encoding="utf-8") as f:
                queries = [line.strip() for line in f if line.strip()]
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"--queries-file {args.queries_file}: cannot read it ({e})") from e
        if not queries:
            raise UsageError(f"--queries-file {args.queries_file} holds no query (one query per line)")
        labels = queries
    else:
        queries = labels = list(args.query)
    texts = read_json_object(args.candidate_texts, "--candidate-texts") if args.candidate_texts else None
    if texts is not None and args.gsv_alpha is None:
        raise UsageError("--candidate-texts is only used by GSV re-ranking: add --gsv-alpha")

    from semcore_hf.retrieval import SemCORERetriever

    retriever = SemCORERetriever.from_pretrained(
        args.model, args.index, device=args.device, gsv=args.gsv_alpha is not None, candidate_texts=texts
    )
    results = retriever.retrieve(
        queries,
        k=args.k,
        num_beams=args.num_beams,
        batch_size=args.batch_size,
        gsv_alpha=args.gsv_alpha,
        max_num_beams=args.max_num_beams,
        certify=args.certify,
    )
    if args.json:
        print(json.dumps([{"query": q, "results": r} for q, r in zip(labels, results)], indent=2))
        return 0
    for label, res in zip(labels, results):
        exact = "" if all(r["exact"] for r in res) else "  (not certified exact: raise --max-num-beams)"
        print(f"\n{label}{exact}")
        for rank, r in enumerate(res, 1):
            print(f"  {rank:>3}. {r['score']:+.4f}  {r['target_id']}  [{r['sid']}]")
    return 0
