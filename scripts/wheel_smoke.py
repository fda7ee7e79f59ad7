"""Smoke test of an installed semcore_hf wheel (run by .ci/wheel_smoke.sh from outside the checkout).

Checks that the package comes from the installed wheel, that every public name imports, that the files commands read
(recipes, card templates, the `evaluate` module script) are inside it, and runs a tiny end-to-end retrieval offline:
random tiny models built from configs -> SIDs -> a SID-ready model -> constrained search.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path


def main() -> int:
    import semcore_hf

    location = Path(semcore_hf.__file__).resolve()
    assert "site-packages" in location.parts, f"semcore_hf imported from {location}, not from the installed wheel"
    for name in semcore_hf.__all__:
        getattr(semcore_hf, name)
    print(f"semcore_hf {semcore_hf.__version__}: {len(semcore_hf.__all__)} public names import")

    from semcore_hf.model_cards import model_card
    from semcore_hf.training import list_recipes, recipe_path

    assert {"t2i_causal_lm_lora.yaml", "t2i_causal_lm_full.yaml", "vlm_both_directions_lora.yaml"} <= set(
        list_recipes()
    ), list_recipes()
    assert recipe_path("accelerate/multi_gpu_ddp.yaml").is_file()
    assert "semcore" in model_card(name="smoke", base_model="user/base").data.tags
    assert (location.parent / "py.typed").is_file()
    assert (location.parent / "evaluation" / "recall_at_k" / "recall_at_k.py").is_file()

    from semcore_hf import SemCORERetriever, SIDBuilder, SIDConfig, _testing
    from semcore_hf.training import prepare_model_for_sids

    captions = [
        "a dog running on the grass",
        "a cat sitting on a red sofa",
        "three boats float on a calm blue lake",
        "a man rides a bicycle down a busy street",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _testing.build_sentence_transformer(tmp / "st")
        _testing.build_causal_lm(_testing.build_tokenizer(None), tmp / "lm")
        config = SIDConfig(embedding_model=str(tmp / "st"), num_clusters=2, kmeans_n_init=1)
        index = SIDBuilder(config).build(captions, [f"img{i}" for i in range(4)], show_progress=False)
        prepare_model_for_sids(str(tmp / "lm"), tmp / "sid_ready")
        retriever = SemCORERetriever.from_pretrained(str(tmp / "sid_ready"), index, device="cpu")
        (results,) = retriever.retrieve(["a dog on the grass"], k=2)
    ids = [r["target_id"] for r in results]
    assert len(set(ids)) == 2 and set(ids) <= set(index.target_ids), results
    assert all(r["sid"] == index.sid_of(r["target_id"]) for r in results)
    print(f"end-to-end retrieval: {ids}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
