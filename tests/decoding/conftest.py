"""Fixtures for the decoding tests: a tiny LM with the SID tokens and a handful of SIDs."""

from __future__ import annotations

import pytest
from _sid_decoding_ref import SIDS


@pytest.fixture(scope="session")
def sid_lm(tiny_lm_dir):
    """(model, tokenizer, extension, sids, token sequences) with the SID tokens added and embeddings resized."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from semcore_hf.tokenization import SIDTokenizerExtension

    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).eval()
    ext = SIDTokenizerExtension()
    ext.apply(tok, model)
    # make the new rows distinct so the structure tokens get non-trivial scores
    torch.manual_seed(0)
    with torch.no_grad():
        model.get_input_embeddings().weight[-3:].normal_(0, 0.5)
    seqs = ext.encode(SIDS, tok)
    return model, tok, ext, SIDS, seqs
