"""`semcore-hf retrieve`: ranked targets for text queries (T2I) or images (I2T) from a SID-trained model.

semcore-hf retrieve --model outputs/t2i_lora --index outputs/sids/t2i_index --query "a dog on the grass" -k 5
semcore-hf retrieve --model outputs/vlm --index outputs/sids/i2t_index --image photo.jpg -k 5 --json
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="Trained model directory or Hub id (LoRA adapters merge).")
    parser.add_argument("--index", required=True, help="SIDIndex directory or Hub id of this direction's targets.")
    q = parser.add_mutually_exclusive_group(required=True)
    q.add_argument("--query", action="append", help="A text query (T2I); repeat for several.")
    q.add_argument("--queries-file", help="A text file with one query per line.")
    q.add_argument("--image", action="append", help="An image path (I2T); repeat for several.")
    parser.add_argument("-k", type=int, default=10, help="Targets per query (default: 10).")
    parser.add_argument("--num-beams", type=int, help="Beams of the constrained search (default: k).")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--gsv-alpha", type=float, help="Enable GSV re-ranking with this generation weight.")
    parser.add_argument("--candidate-texts", help="JSON {target_id: text} shown to GSV (captions of candidates).")
    parser.add_argument("--device", help="cpu, cuda, ... (default: cuda if available).")
    parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")


def run(args: argparse.Namespace) -> int:
    from semcore_hf.retrieval import SemCORERetriever

    if args.image:
        from PIL import Image

        queries = []
        for path in args.image:
            try:
                queries.append(Image.open(path).convert("RGB"))
            except OSError as e:
                raise ValueError(f"Cannot read image {path!r}: {e}") from e
        labels = list(args.image)
    elif args.queries_file:
        with open(args.queries_file, encoding="utf-8") as f:
            queries = [line.strip() for line in f if line.strip()]
        labels = queries
    else:
        queries = labels = list(args.query)
    texts = None
    if args.candidate_texts:
        with open(args.candidate_texts, encoding="utf-8") as f:
            texts = json.load(f)
    retriever = SemCORERetriever.from_pretrained(
        args.model, args.index, device=args.device, gsv=args.gsv_alpha is not None, candidate_texts=texts
    )
    results = retriever.retrieve(
        queries, k=args.k, num_beams=args.num_beams, batch_size=args.batch_size, gsv_alpha=args.gsv_alpha
    )
    if args.json:
        print(json.dumps([{"query": q, "results": r} for q, r in zip(labels, results)], indent=2))
        return 0
    for label, res in zip(labels, results):
        print(f"\n{label}")
        for rank, r in enumerate(res, 1):
            print(f"  {rank:>3}. {r['score']:+.4f}  {r['target_id']}  [{r['sid']}]")
    return 0
