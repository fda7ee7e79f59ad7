"""Build SIDs with the SID builder of an older commit (issue 11's "before"), for `bench_ablations.py`.

Run by `bench_ablations.py` in a subprocess whose `PYTHONPATH` holds that commit's `semcore_hf` (from `git archive`):

    python benchmarks/_legacy_sids.py request.json tables.json

`request.json` holds `ids`, `texts`, `minilm` and the SIDConfig `settings`; `tables.json` receives the index's tables
(SIDs, per-target SID row and cluster, centroids, global IDs, cluster words), which today's `SIDIndex` is built from.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    request = json.loads(open(sys.argv[1]).read())
    import semcore_hf
    from semcore_hf.identifiers import SIDBuilder, SIDConfig

    print(f"legacy builder from {semcore_hf.__file__}", flush=True)
    config = SIDConfig(embedding_model=request["minilm"], **request["settings"])
    index = SIDBuilder(config).build(request["texts"], request["ids"])
    tables = {
        "sids": list(index.sids),
        "target_ids": list(index.target_ids),
        "target_sid": [int(x) for x in index.target_sid],
        "target_cluster": [int(x) for x in index.target_cluster],
        "centroids": index.centroids.tolist(),
        "global_ids": list(index.global_ids),
        "cluster_words": [list(w) for w in index.cluster_words],
    }
    with open(sys.argv[2], "w") as f:
        json.dump(tables, f)


if __name__ == "__main__":
    main()
