"""`semcore-hf retrieve`: ranked targets for text queries (T2I) or images (I2T) from a SID-trained model.

semcore-hf retrieve --model outputs/t2i_lora --index outputs/sids/t2i_index --query "a dog on the grass" -k 5
semcore-hf retrieve --model outputs/vlm --index outputs/sids/i2t_index --image photo.jpg -k 5 --json
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from semcore_hf.cli._args import (
    SearchArguments,
    UsageError,
    existing_file,
    local_or_hub,
    non_empty_str,
    non_negative_float,
    positive_int,
    read_json_object,
)


@dataclass
class RetrieveArguments:
    """The flags of `semcore-hf retrieve` (also the keys of its `--config` YAML)."""

    model: str = field(
        metadata={"help": "Trained model folder or Hub id (LoRA adapters are merged).", "type": local_or_hub}
    )
    index: str | None = field(
        default=None,
        metadata={
            "help": "SIDIndex folder or Hub id of this direction's targets (default: the model's own sid_index/).",
            "type": local_or_hub,
        },
    )
    query: list[str] | None = field(
        default=None,
        metadata={"help": "A text query (T2I); repeat for several.", "type": non_empty_str, "action": "extend"},
    )
    queries_file: str | None = field(
        default=None, metadata={"help": "A text file with one query per line.", "type": existing_file}
    )
    image: list[str] | None = field(
        default=None,
        metadata={"help": "An image path (I2T); repeat for several.", "type": existing_file, "action": "extend"},
    )
    k: int = field(default=10, metadata={"help": "Targets per query.", "type": positive_int, "aliases": ["-k"]})
    gsv_weight: float | None = field(
        default=None,
        metadata={
            "help": "Enable GSV re-ranking: final = generation + WEIGHT * log P(yes) (choose it on a validation "
            "split).",
            "type": non_negative_float,
        },
    )
    candidate_texts: str | None = field(
        default=None,
        metadata={"help": "JSON {target_id: text} shown to GSV (captions of candidates).", "type": existing_file},
    )
    json: bool = field(default=False, metadata={"help": "Print JSON instead of a table."})

    def __post_init__(self):
        given = [name for name in ("query", "queries_file", "image") if getattr(self, name)]
        if len(given) != 1:
            flags = ", ".join(f"--{n.replace('_', '-')}" for n in ("query", "queries_file", "image"))
            raise ValueError(f"give exactly one of {flags}" + (f" (got {', '.join(given)})" if given else ""))


def make_parser(prog: str):
    from semcore_hf.cli._parser import CommandParser

    return CommandParser([RetrieveArguments, SearchArguments], prog=prog, description=__doc__.split("\n\n")[0])


def run(args: RetrieveArguments, search: SearchArguments) -> int:
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
    if texts is not None and args.gsv_weight is None:
        raise UsageError("--candidate-texts is only used by GSV re-ranking: add --gsv-weight")

    from semcore_hf.retrieval import SemCORERetriever

    retriever = SemCORERetriever.from_pretrained(
        args.model,
        args.index,
        device=search.device,
        gsv=args.gsv_weight is not None,
        candidate_texts=texts,
        autocast=search.autocast,
    )
    results = retriever.retrieve(
        queries,
        k=args.k,
        num_beams=search.num_beams,
        batch_size=search.batch_size,
        gsv_weight=args.gsv_weight,
        max_num_beams=search.max_num_beams,
        certify=search.certify,
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
