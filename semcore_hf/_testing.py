"""Tiny random models and tokenizers built offline, for the test-suite and the benchmarks (private).

Everything here is built from configs in well under a second; nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

CORPUS = [
    "a photo of a dog running on the grass",
    "a cat sitting on a red sofa",
    "two children play with a ball in the park",
    "a man rides a bicycle down a busy street",
    "a woman holding an umbrella in the rain",
    "three boats float on a calm blue lake",
    "a plate of fruit on a wooden table",
    "animal dog outdoor grass running",
    "user: retrieve the image id. assistant:",
    "does the candidate match the query? yes no",
]

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for c in m['content'] %}"
    "{% if c['type'] == 'text' %}{{ c['text'] }}{% elif c['type'] == 'image' %}<image>{% endif %}"
    "{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer(
    out_dir: str | os.PathLike | None = None, vocab_size: int = 600, extra_special=(), bos: bool = False
):
    """A byte-level BPE tokenizer with a chat template (ChatML-like), trained in well under a second.

    With `bos=True` it behaves like Llama's: `tokenizer(text)` prepends `<s>` and the chat template renders
    `{{ bos_token }}` first, so encoding a rendered prompt with special tokens gives a doubled BOS.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>", *(["<s>"] if bos else []), *extra_special]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS * 50, trainer)
    if bos:
        bos_id = tok.token_to_id("<s>")
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos_id)]
        )
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<pad>",
        bos_token="<s>" if bos else None,
        unk_token=None,
    )
    hf.chat_template = ("{{ bos_token }}" if bos else "") + CHAT_TEMPLATE
    if out_dir is not None:
        hf.save_pretrained(out_dir)
    return hf


def build_causal_lm(
    tokenizer,
    out_dir: str | os.PathLike | None = None,
    hidden_size: int = 64,
    layers: int = 2,
    seed=0,
    tie_word_embeddings: bool = True,
):
    """A random Qwen2 causal LM (~0.1M parameters) matching `tokenizer`; `tie_word_embeddings=False` gives it an
    output embedding of its own (as Llama, Mistral or Qwen2.5-7B have)."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=tie_word_embeddings,
    )
    model = AutoModelForCausalLM.from_config(cfg).eval()
    if out_dir is not None:
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    return model


def build_sentence_transformer(out_dir: str | os.PathLike, dim: int = 32, seed: int = 0):
    """A random 2-layer BERT with mean pooling, saved as a sentence-transformers folder; returns the loaded model."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    out_dir = Path(out_dir)
    bert_dir = out_dir / "_bert"
    tok = build_tokenizer(None, vocab_size=800)
    tok.model_max_length = 128
    torch.manual_seed(seed)
    bert = BertModel(
        BertConfig(
            vocab_size=len(tok),
            hidden_size=dim,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=2 * dim,
            max_position_embeddings=128,
            pad_token_id=tok.pad_token_id,
        )
    )
    bert.save_pretrained(bert_dir)
    tok.save_pretrained(bert_dir)
    st = SentenceTransformer(
        modules=[Transformer(str(bert_dir), max_seq_length=64), Pooling(dim, pooling_mode="mean"), Normalize()],
        device="cpu",
    )
    st.save(str(out_dir))
    return SentenceTransformer(str(out_dir), device="cpu")


def build_llava(
    out_dir: str | os.PathLike, image_size: int = 32, patch_size: int = 8, seed: int = 0, bos: bool = False
):
    """A random tiny LLaVA (CLIP vision tower + llama text model) and its processor, saved to `out_dir`.

    `bos=True` gives it a Llama-style BOS-adding tokenizer (see `build_tokenizer`).
    """
    import torch
    from transformers import AutoModelForImageTextToText, CLIPImageProcessorPil, LlavaConfig, LlavaProcessor

    tok = build_tokenizer(None, extra_special=["<image>"], bos=bos)
    proc = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(
            size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
        ),
        tokenizer=tok,
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=tok.chat_template,
    )
    torch.manual_seed(seed)
    cfg = LlavaConfig(
        vision_config=dict(
            model_type="clip_vision_model",
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=image_size,
            patch_size=patch_size,
            projection_dim=32,
        ),
        text_config=dict(
            model_type="llama",
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            bos_token_id=tok.bos_token_id,
        ),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    model = AutoModelForImageTextToText.from_config(cfg).eval()
    model.save_pretrained(out_dir)
    proc.save_pretrained(out_dir)
    return model, proc


@contextlib.contextmanager
def local_hub(root):
    """Mock the Hub on a local folder: a push of `repo_id` lands in `root/{repo_type}s/{repo_id}`; loads by id work.

    HF's own suites push to a staging Hub; offline we patch `create_repo`, `create_commit`, `preupload_lfs_files`
    and `_validate_yaml` (and disable xet) so `push_to_hub` / `upload_folder` write plain files. Every commit is also
    mirrored into a Hub cache (`root/cache`, the standard `models--user--name/snapshots/<commit>` layout with
    `refs/main`), and while the context is active `huggingface_hub` uses that cache in offline mode: `hf_hub_download`,
    `snapshot_download` and every `from_pretrained("user/name")` (transformers, peft, `SIDIndex`, ...) then resolve a
    pushed repo by its id exactly as they resolve a previously downloaded one, with no `HF_ENDPOINT` or server. The
    state lives on disk, so re-entering `local_hub(root)` sees earlier pushes. Yields the list of commits as
    `(repo_id, repo_type, [paths])`.
    """
    import hashlib
    from unittest import mock

    from huggingface_hub import CommitInfo, CommitOperationAdd, CommitOperationDelete, HfApi, constants
    from huggingface_hub.hf_api import RepoUrl

    commits = []

    def repo_dir(repo_id, repo_type):
        return os.path.join(root, (repo_type or "model") + "s", repo_id)

    def create_repo(self, repo_id=None, *, repo_type=None, **kw):
        os.makedirs(repo_dir(repo_id, repo_type), exist_ok=True)
        return RepoUrl(f"https://huggingface.co/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}")

    cache = os.path.join(root, "cache")

    def mirror(repo_id, repo_type):
        """The repo's current files as a new cache snapshot, `refs/main` pointing at it."""
        folder = os.path.join(cache, f"{repo_type or 'model'}s--{repo_id.replace('/', '--')}")
        refs = os.path.join(folder, "refs")
        previous = len(os.listdir(os.path.join(folder, "snapshots"))) if os.path.isdir(folder) else 0
        commit = hashlib.sha1(f"{repo_type}/{repo_id}@{previous}".encode()).hexdigest()
        snapshot = os.path.join(folder, "snapshots", commit)
        shutil.rmtree(snapshot, ignore_errors=True)
        shutil.copytree(repo_dir(repo_id, repo_type), snapshot)
        os.makedirs(refs, exist_ok=True)
        with open(os.path.join(refs, "main"), "w") as f:
            f.write(commit)
        return commit

    def create_commit(self, repo_id=None, operations=(), *, commit_message="", repo_type=None, **kw):
        d = repo_dir(repo_id, repo_type)
        for op in operations:
            dst = os.path.join(d, op.path_in_repo)
            if isinstance(op, CommitOperationAdd):
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                src = op.path_or_fileobj
                if isinstance(src, (str, os.PathLike)):
                    shutil.copy(src, dst)
                elif isinstance(src, bytes):
                    with open(dst, "wb") as f:
                        f.write(src)
                else:
                    src.seek(0)
                    with open(dst, "wb") as f:
                        f.write(src.read())
            elif isinstance(op, CommitOperationDelete) and os.path.exists(dst):
                (shutil.rmtree if os.path.isdir(dst) else os.remove)(dst)
        commits.append((repo_id, repo_type, [o.path_in_repo for o in operations]))
        oid = mirror(repo_id, repo_type)
        return CommitInfo(
            commit_url=f"https://huggingface.co/{repo_id}/commit/{oid}",
            commit_message=commit_message,
            commit_description="",
            oid=oid,
            pr_url=None,
        )

    with (
        mock.patch.object(HfApi, "create_repo", create_repo),
        mock.patch.object(HfApi, "create_commit", create_commit),
        mock.patch.object(HfApi, "preupload_lfs_files", lambda self, *a, **k: None),
        mock.patch.object(HfApi, "_validate_yaml", lambda self, *a, **k: None),
        mock.patch("huggingface_hub.hf_api.is_xet_available", lambda: False),
        mock.patch.object(constants, "HF_HUB_CACHE", cache),
        mock.patch.object(constants, "HF_HUB_OFFLINE", True),
    ):
        yield commits


def dict_trie(seqs) -> dict:
    """GENRE's nested-dict trie: the reference every generative-retrieval code base reuses."""
    root: dict = {}
    for s in seqs:
        node = root
        for t in s:
            node = node.setdefault(t, {})
    return root


def reference_fn(root: dict, prompt_length: int, stop_id: int):
    """GENRE's `prefix_allowed_tokens_fn` for transformers' `PrefixConstrainedLogitsProcessor`.

    One `.tolist()` and a Python walk from the root per row per step (the slow pattern our processor replaces);
    finished or off-trie rows get only `stop_id`.
    """

    def fn(batch_id, input_ids):
        node = root
        for t in input_ids[prompt_length:].tolist():
            if t not in node:
                return [stop_id]
            node = node[t]
        return sorted(node) or [stop_id]

    return fn


def exhaustive_sid_scores(
    model, processing_class, token_sequences, prompt, images=None, score: str = "total"
) -> list[float]:
    """Teacher-forced log-probability of every SID token sequence after one prompt (no search at all).

    The reference the constrained search must equal: one forward pass per SID over prompt + SID tokens, log-softmax
    over the whole vocabulary, summed over the SID's tokens.

    Args:
        model: a causal LM or VLM.
        processing_class: its tokenizer or processor.
        token_sequences (`list[list[int]]`): `SIDTokenizerExtension.encode(sids, processing_class)`.
        prompt (`list[dict]`): the conversational prompt (`semcore_hf.data.prompts`).
        images (`list`, *optional*): the prompt's images (VLM).
        score (`str`, *optional*, defaults to `"total"`): `"total"` (the sum) or `"mean"` (per token).
    """
    import torch

    from semcore_hf.modeling import encode_prompts

    enc = encode_prompts(processing_class, [prompt], None if images is None else [images])
    p_ids = enc["input_ids"][0].tolist()
    extra = {k: v for k, v in enc.items() if k not in ("input_ids", "attention_mask")}
    scores = []
    with torch.no_grad():
        for seq in token_sequences:
            ids = torch.tensor([p_ids + list(seq)])
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), **extra).logits[0, :-1].float()
            logp = torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None])[:, 0]
            total = float(logp[len(p_ids) - 1 :].sum())
            scores.append(total if score == "total" else total / len(seq))
    return scores
