"""GSVScorer on tiny random Qwen2 (text) and LLaVA (VLM): a slow reference, batching, shared prefixes, errors."""

from __future__ import annotations

import logging

import pytest
import torch

from semcore_hf.data.prompts import (
    VERIFY_I2T_INSTRUCTION,
    VERIFY_T2I_INSTRUCTION,
    VERIFY_T2I_TEXT_INSTRUCTION,
    to_text_only,
    user_message,
)
from semcore_hf.verification import GSVScorer

QUERIES = [
    "a dog running on the grass",
    "a cat",
    "two children play with a ball in the park near a lake",
    "a man rides a bicycle",
    "a woman holding an umbrella in the rain on a busy street",
    "boats",
    "a plate of fruit on a wooden table",
    "a red sofa",
    "three boats float on a calm blue lake",
]
CAPTIONS = [
    "a photo of a dog",
    "a cat sitting on a red sofa in the living room",
    "children",
    "a bicycle on a busy street with many cars and people",
    "rain",
    "three boats float on a calm blue lake",
    "fruit",
    "a sofa",
    "a lake at dawn with two small boats",
]


def _slow_reference(model, processor, prompt_text, answer, image=None):
    """Full-sequence log-likelihood of `answer` as the completion of the chat-templated prompt, one pair at a time."""
    tok = getattr(processor, "tokenizer", processor)
    with_image = image is not None
    messages = user_message(prompt_text, with_image=with_image)
    if hasattr(processor, "image_processor"):
        prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    else:
        prompt = tok.apply_chat_template(to_text_only(messages), add_generation_prompt=True, tokenize=False)
    n_answer = len(tok(prompt + answer, add_special_tokens=False)["input_ids"]) - len(
        tok(prompt, add_special_tokens=False)["input_ids"]
    )
    if with_image:
        enc = processor(text=[prompt + answer], images=[image], return_tensors="pt", add_special_tokens=False)
    else:
        enc = tok([prompt + answer], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        logits = model(**enc).logits[0].float()
    ids = enc["input_ids"][0]
    logprobs = torch.log_softmax(logits[:-1], dim=-1).gather(-1, ids[1:, None])[:, 0]
    return float(logprobs[-n_answer:].sum())


def _reference_scores(scorer, prompts, images=None):
    out = []
    for i, p in enumerate(prompts):
        im = images[i] if images is not None else None
        yes = _slow_reference(scorer.model, scorer.processor, p, "yes", im)
        no = _slow_reference(scorer.model, scorer.processor, p, "no", im)
        out.append(yes - no)
    return torch.tensor(out)


# ---------------------------------------------------------------- text-only LM


def test_answer_tokens_single(lm_scorer):
    # The slow reference sums over all answer tokens; it equals the first-token score when answers are one token.
    tok = lm_scorer.tokenizer
    assert tok.convert_ids_to_tokens([lm_scorer.yes_token_id, lm_scorer.no_token_id]) == ["yes", "no"]


def test_lm_matches_slow_reference_and_is_batch_invariant(lm_scorer):
    scores = lm_scorer.score(QUERIES, CAPTIONS)
    assert scores.shape == (len(QUERIES),) and scores.dtype == torch.float32
    prompts = [VERIFY_T2I_TEXT_INSTRUCTION.format(candidate=c, query=q) for q, c in zip(QUERIES, CAPTIONS)]
    torch.testing.assert_close(scores, _reference_scores(lm_scorer, prompts), atol=1e-4, rtol=0)
    one = GSVScorer(lm_scorer.model, lm_scorer.processor, batch_size=1).score(QUERIES, CAPTIONS)
    torch.testing.assert_close(one, scores, atol=1e-4, rtol=0)
    assert scores.std() > 0  # the pairs really differ


def test_lm_empty_and_training_mode_restored(lm_scorer):
    assert lm_scorer.score([], []).shape == (0,)
    lm_scorer.model.train()
    try:
        a = lm_scorer.score(QUERIES[:2], CAPTIONS[:2])
        assert lm_scorer.model.training
    finally:
        lm_scorer.model.eval()
    torch.testing.assert_close(a, lm_scorer.score(QUERIES[:2], CAPTIONS[:2]))  # dropout was off while scoring


def test_pad_token_filled_in(tiny_lm_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir)
    ref = GSVScorer(model, tok).score(QUERIES[:3], CAPTIONS[:3])
    tok.pad_token = None
    scorer = GSVScorer(model, tok, batch_size=3)
    assert tok.pad_token == tok.eos_token
    torch.testing.assert_close(scorer.score(QUERIES[:3], CAPTIONS[:3]), ref, atol=1e-4, rtol=0)


# ---------------------------------------------------------------- VLM


def test_vlm_t2i_image_prompt(vlm_scorer, images):
    scores = vlm_scorer.score(QUERIES, None, candidate_images=images)
    prompts = [VERIFY_T2I_INSTRUCTION.format(query=q) for q in QUERIES]
    torch.testing.assert_close(scores, _reference_scores(vlm_scorer, prompts, images), atol=1e-4, rtol=0)
    one = GSVScorer(vlm_scorer.model, vlm_scorer.processor, batch_size=1).score(QUERIES, None, candidate_images=images)
    torch.testing.assert_close(one, scores, atol=1e-4, rtol=0)
    # The image matters: same query, another image, another score.
    swapped = vlm_scorer.score(QUERIES[:1] * 2, None, candidate_images=images[:2])
    assert abs(float(swapped[0] - swapped[1])) > 1e-6


def test_vlm_i2t(vlm_scorer, images):
    scores = vlm_scorer.score(None, CAPTIONS, direction="i2t", query_images=images)
    prompts = [VERIFY_I2T_INSTRUCTION.format(candidate=c) for c in CAPTIONS]
    torch.testing.assert_close(scores, _reference_scores(vlm_scorer, prompts, images), atol=1e-4, rtol=0)
    one = GSVScorer(vlm_scorer.model, vlm_scorer.processor, batch_size=1)
    torch.testing.assert_close(
        one.score(QUERIES, CAPTIONS, direction="i2t", query_images=images), scores, atol=1e-4, rtol=0
    )


def test_vlm_t2i_text_prompt_without_images(vlm_scorer):
    scores = vlm_scorer.score(QUERIES, CAPTIONS)
    prompts = [VERIFY_T2I_TEXT_INSTRUCTION.format(candidate=c, query=q) for q, c in zip(QUERIES, CAPTIONS)]
    torch.testing.assert_close(scores, _reference_scores(vlm_scorer, prompts), atol=1e-4, rtol=0)


def test_image_paths_are_opened(vlm_scorer, images, tmp_path):
    paths = []
    for i, im in enumerate(images[:2]):
        paths.append(tmp_path / f"{i}.png")
        im.save(paths[-1])
    torch.testing.assert_close(
        vlm_scorer.score(QUERIES[:2], None, candidate_images=paths),
        vlm_scorer.score(QUERIES[:2], None, candidate_images=images[:2]),
    )
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"Cannot read candidate_images\[0\].*bad.png"):
        vlm_scorer.score(QUERIES[:1], None, candidate_images=[tmp_path / "bad.png"])


def test_from_pretrained_picks_classes(lm_scorer, vlm_scorer):
    assert not lm_scorer.is_vlm and type(lm_scorer.model).__name__ == "Qwen2ForCausalLM"
    assert vlm_scorer.is_vlm and type(vlm_scorer.model).__name__ == "LlavaForConditionalGeneration"
    assert not lm_scorer.model.training and "yes" in repr(lm_scorer)


def test_score_errors(lm_scorer, vlm_scorer, images):
    with pytest.raises(ValueError, match="same length"):
        lm_scorer.score(QUERIES[:2], CAPTIONS[:3])
    with pytest.raises(ValueError, match="same length"):
        vlm_scorer.score(QUERIES[:2], None, candidate_images=images[:1])
    with pytest.raises(ValueError, match="direction"):
        lm_scorer.score(QUERIES[:1], CAPTIONS[:1], direction="t2t")
    with pytest.raises(ValueError, match="text-only tokenizer"):
        lm_scorer.score(QUERIES[:1], CAPTIONS[:1], candidate_images=images[:1])
    with pytest.raises(ValueError, match="needs a VLM"):
        lm_scorer.score(None, CAPTIONS[:1], direction="i2t")
    with pytest.raises(ValueError, match="text-only tokenizer"):
        lm_scorer.score(None, CAPTIONS[:1], direction="i2t", query_images=images[:1])
    with pytest.raises(ValueError, match="needs `query_images`"):
        vlm_scorer.score(None, CAPTIONS[:1], direction="i2t")
    with pytest.raises(ValueError, match="needs `candidates`"):
        vlm_scorer.score(None, None, direction="i2t", query_images=images[:1])
    with pytest.raises(ValueError, match="`candidate_images` is for direction='t2i'"):
        vlm_scorer.score(None, CAPTIONS[:1], direction="i2t", query_images=images[:1], candidate_images=images[:1])
    with pytest.raises(ValueError, match="`query_images` is for direction='i2t'"):
        vlm_scorer.score(QUERIES[:1], CAPTIONS[:1], query_images=images[:1])
    with pytest.raises(ValueError, match="`candidate_images` \\(VLM\\) or `candidates`"):
        vlm_scorer.score(QUERIES[:1], None)
    with pytest.raises(ValueError, match="needs `queries`"):
        lm_scorer.score(None, CAPTIONS[:1])
    with pytest.raises(ValueError, match=r"candidate_images\[0\] is None"):
        vlm_scorer.score(QUERIES[:1], None, candidate_images=[None])
    with pytest.raises(TypeError, match="`queries` must be a list"):
        lm_scorer.score("a dog", "a photo of a dog")
    with pytest.raises(TypeError, match=r"`candidates\[1\]` must be a string"):
        lm_scorer.score(QUERIES[:2], ["a", 3])


def test_constructor_errors(tiny_lm_dir, lm_scorer, caplog):
    model, tok = lm_scorer.model, lm_scorer.processor
    with pytest.raises(ValueError, match="batch_size"):
        GSVScorer(model, tok, batch_size=0)
    # "Yes" -> ["Y", "es"] and "Yellow" -> ["Y", ...]: same first token.
    with pytest.raises(ValueError, match="start with the same token"):
        GSVScorer(model, tok, yes="Yes", no="Yellow")
    with pytest.raises(ValueError, match="non-empty strings"):
        GSVScorer(model, tok, no="")
    with caplog.at_level(logging.WARNING, logger="semcore_hf.verification.gsv"):
        scorer = GSVScorer(model, tok, yes="Yes", no="No")
    assert "first token only" in caplog.text
    assert tok.convert_ids_to_tokens([scorer.yes_token_id, scorer.no_token_id]) == ["Y", "N"]

    from transformers import AutoTokenizer

    bare = AutoTokenizer.from_pretrained(tiny_lm_dir)
    bare.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        GSVScorer(model, bare)


# ---------------------------------------------------------------- shared prompt prefixes


def test_shared_prefix_equals_plain_scoring_lm(lm_scorer):
    # several candidates per query, as the retriever sends them: the query's prefix is encoded once
    queries = [q for q in QUERIES[:3] for _ in range(4)]
    cands = [CAPTIONS[(i * 3) % len(CAPTIONS)] for i in range(len(queries))]
    plain = GSVScorer(lm_scorer.model, lm_scorer.processor, share_prefix=False).score(queries, cands)
    shared = GSVScorer(lm_scorer.model, lm_scorer.processor, batch_size=3).score(queries, cands)
    torch.testing.assert_close(shared, plain, atol=1e-4, rtol=0)
    prompts = [VERIFY_T2I_TEXT_INSTRUCTION.format(candidate=c, query=q) for q, c in zip(queries, cands)]
    torch.testing.assert_close(shared, _reference_scores(lm_scorer, prompts), atol=1e-4, rtol=0)


def test_shared_prefix_equals_plain_scoring_vlm_i2t(vlm_scorer, images):
    query_images = [images[i // 3] for i in range(9)]  # 3 query images, 3 candidate captions each
    plain = GSVScorer(vlm_scorer.model, vlm_scorer.processor, share_prefix=False)
    shared = GSVScorer(vlm_scorer.model, vlm_scorer.processor)
    assert shared._prefix_sharing_supported()
    a = plain.score(None, CAPTIONS, direction="i2t", query_images=query_images)
    b = shared.score(None, CAPTIONS, direction="i2t", query_images=query_images)
    torch.testing.assert_close(b, a, atol=1e-4, rtol=0)


# ---------------------------------------------------------------- a verifier trained on planted pairs


def test_trained_verifier_ranks_the_planted_match_first(tiny_lm_dir, tmp_path):
    """After SFT on `verify_*`-format rows, GSV ranks the planted match above every distractor.

    The planted match is marked in its own text (the tiny random model cannot learn a real query-candidate match in
    a unit test's budget): what this checks is that the prompt, the answer position and the yes/no tokens GSV reads
    are exactly those the verify training rows teach. Before training the scores carry no such order.
    """
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from semcore_hf.data.prompts import NO, YES, verify_t2i_text_prompt

    queries = ["a dog on the grass", "a cat on a sofa", "boats on a lake", "a man on a bicycle"]
    distractors = ["a red ball", "a wooden table", "an umbrella in the rain"]
    match = "the planted match"
    rows = [
        {
            "prompt": to_text_only(verify_t2i_text_prompt(q, c)),
            "completion": [{"role": "assistant", "content": YES if c == match else NO}],
        }
        for q in queries
        for c in [match, *distractors]
    ] * 6  # fmt: skip
    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir)
    args = SFTConfig(
        output_dir=str(tmp_path), use_cpu=True, report_to="none", max_steps=100, learning_rate=5e-3,
        per_device_train_batch_size=16, bf16=False, save_strategy="no", logging_steps=1000, seed=0,
    )  # fmt: skip
    SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok).train()
    scorer = GSVScorer(model.eval(), tok)
    for q in queries:
        scores = scorer.score([q] * 4, [*distractors, match])
        assert int(scores.argmax()) == 3 and float(scores[3] - scores[:3].max()) > 1.0, (q, scores)
    assert int(scorer.score(["a new query about a horse"] * 4, [*distractors, match]).argmax()) == 3


@pytest.mark.parametrize("kind", ["lm", "vlm"])
def test_bf16_autocast_scores_track_fp32(lm_scorer, vlm_scorer, images, kind):
    """Body in bf16, head in fp32: scores move by the body's rounding only (plain bf16 autocast quantises them)."""
    scorer = lm_scorer if kind == "lm" else vlm_scorer
    fast = GSVScorer(scorer.model, scorer.processor, autocast="bf16")
    if kind == "lm":
        args, kwargs = (QUERIES, CAPTIONS), {}
    else:
        args, kwargs = (QUERIES, None), {"candidate_images": images}
    ref, got = scorer.score(*args, **kwargs), fast.score(*args, **kwargs)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref, atol=0.05, rtol=0)
    assert len(torch.unique(got)) == len(torch.unique(ref))  # no ties made by rounding
    assert not torch.is_autocast_enabled("cpu")
