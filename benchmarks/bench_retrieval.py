"""Benchmark retrieval latency and exactness of a trained SemCORE model against unconstrained `generate`.

Reads a model and index written by `semcore-hf demo` (default `outputs/demo`), takes the demo's test queries and
measures, at batch 1 and batch 8, for each beam count:

- `generate`: the same model's unconstrained `model.generate(num_beams=B, num_return_sequences=B)` with the same
  prompt and exactly as many new tokens as the longest SID (`min_new_tokens = max_new_tokens`): the lower bound a
  constrained search is compared with (issue: performance);
- `search`: `sid_beam_search` with B beams and no widening (one pass), its ms/query, the share of queries whose
  first SID / whole top-10 it certifies exact, and Recall@1/10 of that single pass;
- `search + widening`: `SemCORERetriever.retrieve` as users run it (uncertified queries searched again with twice
  the beams, up to `max_num_beams`).

`--autocast none bf16` repeats every row with the model body under bf16 autocast and the head in fp32
(`semcore_hf.modeling.autocast_inference`, what `--autocast bf16` runs), `generate` included, and prints each row's
ratio to the fp32 `generate` too.

    python benchmarks/bench_retrieval.py --model outputs/demo/semantic/model --index outputs/demo/semantic/t2i_index
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def demo_queries(cache: Path, n: int):
    """The demo's T2I test queries over its indexed test images (the held-out slice is not in the index)."""
    from semcore_hf.cli import _assets
    from semcore_hf.cli import _experiment as ex

    rows = ex.stamp_rows(_assets.tuxpaint_stamps(cache), quick=False)
    held_out = {str(i) for i in rows["test"]["image_id"] if ex.is_held_out(str(i))}
    _, test, _ = ex.query_sets(rows, held_out)
    return test.head(n)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="outputs/demo/semantic/model")
    p.add_argument("--index", default="outputs/demo/semantic/t2i_index")
    p.add_argument("--cache-dir", default=".cache/semcore_hf")
    p.add_argument("--queries", type=int, default=48)
    p.add_argument("--beams", type=int, nargs="+", default=[5, 10, 20])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    p.add_argument("--autocast", nargs="+", default=["none"], choices=["none", "bf16"])
    p.add_argument("--certify", type=int, nargs="*", default=[1, 10], help="widened rows (none: skip them)")
    p.add_argument("--output-dir", default="outputs/bench")
    args = p.parse_args()

    import torch

    from semcore_hf.data.prompts import t2i_prompt
    from semcore_hf.decoding.search import sid_beam_search
    from semcore_hf.evaluation import recall_at_k
    from semcore_hf.modeling import autocast_inference, encode_prompts
    from semcore_hf.modeling.precision import resolve_autocast_dtype
    from semcore_hf.retrieval import SemCORERetriever

    qs = demo_queries(Path(args.cache_dir), args.queries)
    retriever = SemCORERetriever.from_pretrained(args.model, args.index, device="cpu", gallery=qs.gallery)
    model, proc, trie = retriever.model, retriever.processing_class, retriever.trie
    pad = retriever._pad_token_id
    results: list[dict] = []

    def batches(bs):
        for i in range(0, len(qs), bs):
            yield qs.queries[i : i + bs], qs.relevant[i : i + bs]

    def targets(rows):
        out = []
        for r in rows:
            for t in retriever.index.targets_of_row(r):
                if t in retriever.gallery and t not in out:
                    out.append(t)
        return out

    fp32_generate: dict[tuple[int, int], float] = {}
    for precision in args.autocast:
        retriever.autocast = resolve_autocast_dtype(precision)
        for bs in args.batch:
            for beams in args.beams:
                with autocast_inference(model, precision):
                    # unconstrained generate: same prompt, beams and number of new tokens
                    t0 = time.perf_counter()
                    for queries, _ in batches(bs):
                        enc = encode_prompts(proc, [t2i_prompt(q) for q in queries])
                        with torch.no_grad():
                            model.generate(
                                **enc, num_beams=beams, num_return_sequences=beams, do_sample=False,
                                max_new_tokens=trie.max_depth, min_new_tokens=trie.max_depth, pad_token_id=pad,
                                early_stopping=False,
                            )  # fmt: skip
                    gen_ms = 1e3 * (time.perf_counter() - t0) / len(qs)
                    # one constrained pass, no widening
                    t0 = time.perf_counter()
                    ranked, exact1, exact10 = [], 0, 0
                    for queries, _ in batches(bs):
                        enc = encode_prompts(proc, [t2i_prompt(q) for q in queries])
                        out = sid_beam_search(model, enc, trie, beams, 10, pad_token_id=pad)
                        for rows, scores, bound in zip(
                            out.sid_rows.tolist(), out.scores.tolist(), out.pruned_bound.tolist()
                        ):
                            rows = [r for r in rows if r >= 0]
                            ranked.append(targets(rows))
                            exact1 += bool(scores) and scores[0] >= bound
                            exact10 += all(s >= bound for s in scores[: len(rows)])
                    search_ms = 1e3 * (time.perf_counter() - t0) / len(qs)
                if precision == "none":
                    fp32_generate[(bs, beams)] = gen_ms
                m = recall_at_k([r[:10] for r in ranked], qs.relevant, k=(1, 10))
                # as users run it: widening until the top-1 / the top-10 is certified
                widened = {}
                for certify in args.certify:
                    t0 = time.perf_counter()
                    res = retriever.retrieve(qs.queries, k=10, num_beams=beams, batch_size=bs, certify=certify)
                    ms = 1e3 * (time.perf_counter() - t0) / len(qs)
                    wm = recall_at_k([[r["target_id"] for r in per] for per in res], qs.relevant, k=(1, 10))
                    widened[certify] = {
                        "ms_per_query": ms,
                        "recall@1": wm["recall@1"],
                        "recall@10": wm["recall@10"],
                        "exact_at_1": sum(per[0]["exact"] for per in res) / len(res),
                        "exact_top10": sum(all(r["exact"] for r in per) for per in res) / len(res),
                    }
                row = {
                    "autocast": precision,
                    "batch": bs,
                    "beams": beams,
                    "generate_ms": gen_ms,
                    "search_ms": search_ms,
                    "ratio": search_ms / gen_ms,
                    "ratio_to_fp32_generate": search_ms / fp32_generate.get((bs, beams), float("nan")),
                    "search_recall@1": m["recall@1"],
                    "search_recall@10": m["recall@10"],
                    "search_exact_at_1": exact1 / len(qs),
                    "search_exact_top10": exact10 / len(qs),
                    "widened": widened,
                }
                results.append(row)
                print(json.dumps(row), flush=True)

    print(f"\n{len(qs)} demo test queries, gallery {len(qs.gallery)} images, {torch.get_num_threads()} threads, CPU")
    print(
        "| autocast | batch | beams | generate ms/q | search ms/q | ratio | ratio to fp32 generate | R@1 | "
        "certified @1 / top-10 | "
        + " | ".join(f"widened to certify top-{c}: ms/q, R@1, certified" for c in args.certify)
        + " |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|" + "---|" * len(args.certify))
    for r in results:
        widened = " | ".join(
            f"{w['ms_per_query']:.0f}, {100 * w['recall@1']:.1f}, {100 * w['exact_top10']:.0f}%"
            for w in r["widened"].values()
        )
        print(
            f"| {r['autocast']} | {r['batch']} | {r['beams']} | {r['generate_ms']:.0f} | {r['search_ms']:.0f} | "
            f"{r['ratio']:.2f} | {r['ratio_to_fp32_generate']:.2f} | {100 * r['search_recall@1']:.1f} | "
            f"{100 * r['search_exact_at_1']:.0f}% / {100 * r['search_exact_top10']:.0f}% | {widened} |"
        )
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_retrieval.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
