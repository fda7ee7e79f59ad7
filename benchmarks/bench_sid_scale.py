"""Benchmark the million-SID artefact paths: SIDs -> token ids for the trie, and loading a 1M-SID index and trie.

Synthetic SemCORE-like SIDs (`bench_constrained_decoding.make_sids`: 2 global words per cluster + 3 keyphrases of
1-2 Zipf-drawn real words), the SmolLM2 tokenizer (49k ids, offline; a 32k byte-level BPE trained here if missing).
Every figure is a ratio against a baseline timed in the same run:

- `encode`: `SIDTokenizerExtension.encode` (each distinct global ID once, many lexical IDs per tokenizer call) vs
  the spliced path of the previous release (every SID's completion spliced into the rendered conversation and
  tokenised whole; kept as the fallback, `_encode_spliced`); the outputs are checked identical. Twice: with SmolLM2's
  own chat template (a default system prompt in front of every SID: the issue's 106 s setting) and with the compact
  template `prepare_model_for_sids` installs.
- `index load`: `SIDIndex.from_pretrained` of an index of N targets, vs the floor: reading its three files and
  parsing them (`json.loads`, `safetensors.numpy.load`) without building anything;
- `trie load`: `SIDTrie.from_pretrained` vs the same floor for its two files.

    python benchmarks/bench_sid_scale.py                    # 1M SIDs (a few minutes on 2 cores)
    python benchmarks/bench_sid_scale.py --num-sids 100000  # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_constrained_decoding import load_tokenizer, make_sids  # noqa: E402

from semcore_hf.decoding import SIDTrie  # noqa: E402
from semcore_hf.identifiers import SIDConfig, SIDIndex  # noqa: E402
from semcore_hf.tokenization import SIDTokenizerExtension  # noqa: E402
from semcore_hf.tokenization.extension import _DEFAULT_PROMPT, _chat_template  # noqa: E402


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn, repeats: int = 1):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, statistics.median(times)


def spliced_encode(ext: SIDTokenizerExtension, tok, sids: list[str]) -> list[list[int]]:
    """The previous release's bulk path: every completion spliced into the rendered template, tokenised whole."""
    template = _chat_template(tok)
    completions = [ext.completion(s) for s in sids]
    head, tail = ext._splice_template(tok, template, _DEFAULT_PROMPT, completions[:16])
    return ext._encode_spliced(tok, template, _DEFAULT_PROMPT, head, tail, completions, sids, ext.token_ids(tok)[2])


def bench_encode(tok, sids: list[str], label: str) -> dict:
    ext = SIDTokenizerExtension()
    new, t_new = _timed(lambda: ext.encode(sids, tok))
    old, t_old = _timed(lambda: spliced_encode(ext, tok, sids))
    assert new == old, "the pieces path must give the spliced path's ids"
    return {"step": f"encode ({label})", "seconds": t_new, "baseline_s": t_old, "target_s": 20.0, "seqs": new}


def _floor(paths: list[Path]) -> None:
    from safetensors.numpy import load

    for p in paths:
        raw = p.read_bytes()
        json.loads(raw) if p.suffix == ".json" else load(raw)


def bench_loads(sids: list[str], seqs: list[list[int]], vocab: int, fingerprint: str, repeats: int) -> list[dict]:
    n = len(sids)
    rng = np.random.default_rng(0)
    glob = sorted({s.split(" | ")[0] for s in sids})
    index = SIDIndex(
        config=SIDConfig(num_clusters=len(glob)),
        sids=sids,
        target_ids=[f"img{i:07d}" for i in range(n)],
        target_sid=np.arange(n),
        target_cluster=rng.integers(0, len(glob), n),
        centroids=rng.standard_normal((len(glob), 384)).astype(np.float32),
        global_ids=glob,
        cluster_words=[g.split() + [f"w{j}" for j in range(8)] for g in glob],
        target_text_hash=rng.integers(0, 2**62, n),
    )
    out = []
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        _, t_save = _timed(lambda: index.save_pretrained(d / "index"))
        files = [d / "index" / f for f in ("sid_index.json", "sid_index_config.json", "sid_index.safetensors")]
        loaded, t_load = _timed(lambda: SIDIndex.from_pretrained(d / "index"), repeats)
        assert loaded.sids == index.sids and loaded.target_ids == index.target_ids
        _, t_floor = _timed(lambda: _floor(files), repeats)
        size = sum(f.stat().st_size for f in files) / 2**20
        out.append({"step": f"index load ({size:.0f} MB)", "seconds": t_load, "baseline_s": t_floor, "target_s": 5.0})
        out.append({"step": "index save", "seconds": t_save})
        trie, t_build = _timed(lambda: SIDTrie.build(seqs, vocab, tokenizer_fingerprint=fingerprint))
        _, t_save = _timed(lambda: trie.save_pretrained(d / "trie"))
        files = [d / "trie" / f for f in ("sid_trie.json", "sid_trie.safetensors")]
        loaded, t_load = _timed(lambda: SIDTrie.from_pretrained(d / "trie"), repeats)
        assert loaded.num_sids == trie.num_sids and np.array_equal(loaded.child_token, trie.child_token)
        _, t_floor = _timed(lambda: _floor(files), repeats)
        mb = trie.nbytes / 2**20
        out.append({"step": f"trie load ({mb:.0f} MB)", "seconds": t_load, "baseline_s": t_floor, "target_s": 5.0})
        out.append({"step": f"trie build ({trie.num_nodes:,} nodes)", "seconds": t_build})
        out.append({"step": "trie save", "seconds": t_save})
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-sids", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3, help="loads are timed this many times (median)")
    parser.add_argument("--output-dir", default="outputs/bench")
    args = parser.parse_args(argv)

    tok, tok_name = load_tokenizer()
    SIDTokenizerExtension().apply(tok)
    t = time.perf_counter()
    sids = make_sids(tok, args.num_sids)
    print(f"{len(sids):,} SIDs made in {time.perf_counter() - t:.1f}s; e.g. {sids[0]!r}", flush=True)

    rows = []
    own = bench_encode(tok, sids, "SmolLM2 chat template")
    rows.append(own)
    print(f"{own['step']}: {own['seconds']:.1f}s vs {own['baseline_s']:.1f}s", flush=True)
    from semcore_hf.modeling.inputs import COMPACT_CHAT_TEMPLATE

    tok.chat_template = COMPACT_CHAT_TEMPLATE
    compact = bench_encode(tok, sids, "compact template")
    rows.append(compact)
    print(f"{compact['step']}: {compact['seconds']:.1f}s vs {compact['baseline_s']:.1f}s", flush=True)
    seqs = compact.pop("seqs")
    own.pop("seqs")
    ext = SIDTokenizerExtension()
    rows += bench_loads(sids, seqs, len(tok), ext.fingerprint(tok), args.repeats)

    cores = os.cpu_count()
    print(f"\nMillion-SID artefacts: {len(sids):,} SIDs, tokenizer {tok_name}, {cores} CPU cores, peak RSS "
          f"{_rss_mb():,.0f} MB")  # fmt: skip
    header = f"{'step':<36} | {'seconds':>8} | {'baseline s':>10} | {'ratio':>14} | target"
    print(header)
    print("-" * (len(header) + 8))
    for r in rows:
        base = r.get("baseline_s")
        if base is None:
            ratio = ""
        elif r["step"].startswith("encode"):
            ratio = f"{base / r['seconds']:.1f}x faster"
        else:
            ratio = f"{r['seconds'] / base:.1f}x the floor"
        target = r.get("target_s")
        mark = f"< {target:.0f} s: {'yes' if r['seconds'] < target else 'NO'}" if target else ""
        base_cell = f"{base:>10.2f}" if base is not None else f"{'':>10}"
        print(f"{r['step']:<36} | {r['seconds']:>8.2f} | {base_cell} | {ratio:>14} | {mark}")
    print("baselines: encode = the previous release's spliced path; loads = reading + parsing the files (the floor)")
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"num_sids": len(sids), "tokenizer": tok_name, "cpu_count": cores, "peak_rss_mb": _rss_mb()}
    (out / "bench_sid_scale.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    print(f"wrote {out / 'bench_sid_scale.json'}")
    return rows


if __name__ == "__main__":
    main()
