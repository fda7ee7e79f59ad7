"""The Hub side of a trained retriever: download any artefact by id, push a trained model with its card and index.

Every artefact round-trips by id: `SIDIndex` and `SIDTrie` (`push_to_hub` / `from_pretrained`), the training data
(`semcore_hf.data.push_sid_dataset_to_hub` / `load_sid_dataset`), a SID-ready base (`push_sid_ready_model`) and a
trained model or LoRA adapter with its tokenizer / processor, SID structure tokens and index (`push_trained_model`,
then `SemCORERetriever.from_pretrained("user/name")`).

A LoRA adapter records its base as `base_model_name_or_path`. Trained on a local SID-ready copy, that is a path of
the training machine; `push_trained_model` records a Hub id instead: the SID-ready base's own Hub id, or, when the
adapter stores the rows of every new token (peft `trainable_token_indices`, or `modules_to_save` with the embedding
layers), the original base model the SID-ready copy was made from. Loading grows that base to the tokenizer's size
before applying the adapter (`semcore_hf.modeling.load_trained_model`, as `peft.AutoPeftModelForCausalLM` does).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from semcore_hf._io import MANIFEST_FILE

logger = logging.getLogger(__name__)

#: Where a model repo (or a trained model folder) keeps the SID index of its targets.
INDEX_SUBFOLDER = "sid_index"
#: Files of a training output folder that never go to the Hub: checkpoints, logs, the pickled TrainingArguments,
#: the local SID-ready base and semcore's local bookkeeping (manifests, staging folders).
TRAINING_LEFTOVERS = [
    "checkpoint-*",
    "checkpoint-*/**",
    "runs/**",
    "sid_ready_base/**",
    "training_args.bin",
    ".*",
    "**/.*",
]
# Weights in formats semcore_hf never writes (pickles, other frameworks): not downloaded with a model repo.
_FOREIGN_WEIGHTS = ["*.bin", "*.pth", "*.pt", "*.ckpt", "*.h5", "*.msgpack", "*.onnx", "*.gguf"]
INPUT_EMBEDDING_NAMES = ("embed_tokens", "wte", "word_embeddings", "embed_in", "tok_embeddings")
OUTPUT_EMBEDDING_NAMES = ("lm_head", "embed_out", "output")


def is_hub_id(value: str | os.PathLike | None) -> bool:
    """Whether `value` reads as a Hub repo id (``name`` or ``user/name``) rather than a local path."""
    if not value:
        return False
    value = str(value)
    if os.path.isabs(value) or value.startswith((".", "~")) or os.path.exists(value):
        return False
    parts = value.split("/")
    return len(parts) <= 2 and all(p and p not in (".", "..") for p in parts)


def snapshot(
    name_or_path: str | os.PathLike,
    *,
    repo_type: str = "model",
    revision: str | None = None,
    token: str | bool | None = None,
    allow_patterns: Sequence[str] | None = None,
    ignore_patterns: Sequence[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """A local folder holding `name_or_path`: the folder itself, or a snapshot of the Hub repo of that id.

    Args:
        name_or_path (`str` or `os.PathLike`): a local folder or a Hub repo id.
        repo_type (`str`, *optional*, defaults to `"model"`): `"model"` or `"dataset"`.
        revision (`str`, *optional*), token (`str` or `bool`, *optional*), cache_dir (`str`, *optional*): passed to
            `huggingface_hub.snapshot_download`.
        allow_patterns / ignore_patterns (`Sequence[str]`, *optional*): which files of the repo to download.

    Returns:
        `pathlib.Path`: the folder.

    Raises:
        FileNotFoundError: `name_or_path` can only be a local path, and there is no such folder.
    """
    path = Path(os.path.expanduser(str(name_or_path)))
    if path.is_dir():
        return path
    if not is_hub_id(str(name_or_path)):
        raise FileNotFoundError(f"No such folder: {name_or_path} (and it is not a Hub repo id user/name).")
    from huggingface_hub import snapshot_download

    return Path(
        snapshot_download(
            str(name_or_path),
            repo_type=repo_type,
            revision=revision,
            token=token,
            allow_patterns=list(allow_patterns) if allow_patterns else None,
            ignore_patterns=list(ignore_patterns) if ignore_patterns else None,
            cache_dir=cache_dir,
        )
    )


def model_snapshot(name_or_path: str | os.PathLike, **kwargs: Any) -> Path:
    """`snapshot` of a model repo without training leftovers and weights in formats semcore_hf does not read."""
    return snapshot(name_or_path, ignore_patterns=[*TRAINING_LEFTOVERS, *_FOREIGN_WEIGHTS], **kwargs)


# --------------------------------------------------------------------------------------------------------------------
# adapters: which new rows they carry, and a base that means something on another machine
# --------------------------------------------------------------------------------------------------------------------


def adapter_stores_token_rows(adapter_config: dict[str, Any], token_ids: Iterable[int], tied: bool) -> bool:
    """Whether a peft adapter carries the input (and, untied, output) embedding rows of every id in `token_ids`.

    True when the embedding layers are in `modules_to_save` (whole matrices) or `trainable_token_indices` holds
    the ids for them; with tied embeddings the input layer suffices (peft ties the output rows to it).

    Args:
        adapter_config (`dict`): the adapter's `adapter_config.json`.
        token_ids (`Iterable[int]`): the ids of the tokens the base model lacks.
        tied (`bool`): whether the model ties its input and output embeddings.
    """
    ids = set(int(i) for i in token_ids)
    saved = {m.split(".")[-1] for m in adapter_config.get("modules_to_save") or []}
    indices = adapter_config.get("trainable_token_indices") or {}
    if isinstance(indices, list):  # a plain list targets the input embedding
        indices = {INPUT_EMBEDDING_NAMES[0]: indices}
    indices = {name.split(".")[-1]: set(v) for name, v in indices.items()}

    def covers(names: Sequence[str]) -> bool:
        return any(n in saved or (n in indices and ids <= indices[n]) for n in names)

    return covers(INPUT_EMBEDDING_NAMES) and (tied or covers(OUTPUT_EMBEDDING_NAMES))


def new_token_ids(folder: str | os.PathLike) -> list[int]:
    """Ids of the SID structure (and identifier) tokens in the tokenizer / processor saved in `folder`."""
    from transformers import AutoTokenizer

    from semcore_hf.tokenization import SIDTokenizerExtension
    from semcore_hf.tokenization.extension import CONFIG_NAME

    folder = Path(folder)
    extension = (
        SIDTokenizerExtension.from_pretrained(folder) if (folder / CONFIG_NAME).is_file() else SIDTokenizerExtension()
    )
    tok = AutoTokenizer.from_pretrained(str(folder))
    return tok.convert_tokens_to_ids([*extension.tokens, *extension.identifier_tokens])


def ties_embeddings(model_dir: str | os.PathLike) -> bool:
    """Whether the model saved in `model_dir` ties its input and output embeddings (read from its config)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(model_dir))
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return bool(getattr(text, "tie_word_embeddings", getattr(config, "tie_word_embeddings", False)))


def portable_base_model(adapter_dir: str | os.PathLike, base_model: str | None = None) -> str:
    """The base of a local adapter folder as a Hub id, for its pushed `adapter_config.json`.

    Args:
        adapter_dir (`str` or `os.PathLike`): the trained adapter (`semcore-hf train` or `trl sft` output).
        base_model (`str`, *optional*): the Hub id to record; it must be a SID-ready base (`push_sid_ready_model`),
            or the original base when the adapter stores the new tokens' rows.

    Returns:
        `str`: the recorded base if it already is a Hub id (trained on a SID-ready base from the Hub); else the
        original model the local SID-ready base was prepared from, if that is a Hub id and the adapter stores every
        new token's rows.

    Raises:
        ValueError: no Hub id can stand for the base (the message says how to push one).
    """
    from semcore_hf.modeling.loading import adapter_base_model
    from semcore_hf.training.prepare import prepared_from

    adapter_dir = Path(adapter_dir)
    recorded = adapter_base_model(adapter_dir)
    local = [Path(os.path.expanduser(recorded)), adapter_dir / "sid_ready_base"]
    sid_ready = next((d for d in local if d.is_dir() and prepared_from(d) is not None), None)
    config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    stores_rows = None
    if sid_ready is not None:
        stores_rows = adapter_stores_token_rows(config, new_token_ids(adapter_dir), ties_embeddings(sid_ready))
    if base_model is not None:
        if not is_hub_id(base_model):
            raise ValueError(f"base_model must be a Hub id (user/name), got {base_model!r}.")
        if sid_ready is not None and base_model == prepared_from(sid_ready) and not stores_rows:
            raise ValueError(
                f"{base_model} lacks the rows of the SID tokens and the adapter does not store them (train them with "
                "peft `trainable_token_indices` or `modules_to_save`); push the SID-ready base instead "
                "(`semcore-hf prepare-model --push_to_hub`) and pass its id."
            )
        return base_model
    if is_hub_id(recorded) and not Path(os.path.expanduser(recorded)).exists():
        return recorded
    origin = prepared_from(sid_ready) if sid_ready is not None else None
    if origin is not None and is_hub_id(origin) and stores_rows:
        return origin
    why = (
        f"its base {recorded} is a local folder"
        + (f" prepared from the local model {origin}" if origin and not is_hub_id(origin) else "")
        + (
            " and the adapter does not store the rows of the SID tokens"
            if sid_ready is not None and not stores_rows
            else ""
        )
    )
    raise ValueError(
        f"Cannot record the adapter's base portably: {why}. Push the SID-ready base first (`semcore-hf prepare-model "
        "--model_name_or_path <base> --output_dir <dir> --push_to_hub --hub_model_id <user/base>`) and pass "
        "base_model='<user/base>'."
    )


# --------------------------------------------------------------------------------------------------------------------
# pushing
# --------------------------------------------------------------------------------------------------------------------


def _ignored(rel: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(rel, p) for p in patterns)  # fnmatch's `*` also matches `/`


def _stage(src: Path, dst: Path, patterns: Sequence[str]) -> None:
    """Hard-link (or copy) every file of `src` not matching `patterns` into `dst`."""
    for root, dirs, files in os.walk(src):
        rel_root = Path(root).relative_to(src)
        dirs[:] = [d for d in dirs if not _ignored((rel_root / d).as_posix(), patterns)]
        for name in files:
            rel = (rel_root / name).as_posix()
            if _ignored(rel, patterns):
                continue
            target = dst / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(Path(root) / name, target)
            except OSError:
                shutil.copy2(Path(root) / name, target)


def upload_artefact(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "Upload",
    create_pr: bool = False,
    repo_type: str = "model",
) -> Any:
    """Upload a saved artefact folder (without semcore's local manifests) to a Hub repo, created if missing, in one
    commit; returns the `huggingface_hub.CommitInfo`."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        repo_type=repo_type,
        revision=revision,
        commit_message=commit_message,
        create_pr=create_pr,
        ignore_patterns=[MANIFEST_FILE, "**/" + MANIFEST_FILE],
    )


def _card_facts(model_dir: Path) -> dict[str, Any]:
    """The semcore facts of `model_dir`'s card, if `model_card` wrote it."""
    from huggingface_hub import ModelCard

    from semcore_hf.model_cards import SEMCORE_KEY

    readme = model_dir / "README.md"
    if not readme.is_file():
        return {}
    try:
        card = ModelCard.load(readme)
    except Exception:  # a card that is not YAML + Markdown: build ours instead
        return {}
    data = card.data.to_dict()
    facts = dict(data.get(SEMCORE_KEY) or {})
    facts.update(sid_config=data.get("sid_config"), license=data.get("license"), eval_results=card.data.eval_results)
    return facts


def push_trained_model(
    model_dir: str | os.PathLike,
    repo_id: str,
    *,
    index: Any = None,
    base_model: str | None = None,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "Upload SemCORE retriever",
    create_pr: bool = False,
) -> Any:
    """Push a trained model or LoRA adapter, its tokenizer / processor, SID tokens, index and card in one commit.

    The local folder is not changed: the files are staged in a temporary folder, where the adapter's base is
    recorded portably (`portable_base_model`), the index is copied to `sid_index/` and `README.md` is (re)built
    with `semcore_hf.model_cards.model_card`, keeping the facts the training run recorded in it. Checkpoints,
    logs, `training_args.bin` and the local `sid_ready_base/` are not pushed (`TRAINING_LEFTOVERS`). Afterwards
    `SemCORERetriever.from_pretrained(repo_id)` loads model and index by id.

    Args:
        model_dir (`str` or `os.PathLike`): a `semcore-hf train` or `trl sft` output folder.
        repo_id (`str`): the Hub model repo (created if missing).
        index (`SIDIndex` or `str`, *optional*): the targets' index (object, folder or Hub id); defaults to the
            folder's own `sid_index/`.
        base_model (`str`, *optional*): adapters: the Hub id to record as base (see `portable_base_model`).
        token (`str`, *optional*), private (`bool`, *optional*), revision (`str`, *optional*), commit_message
            (`str`), create_pr (`bool`): as in `huggingface_hub.HfApi.upload_folder`.

    Returns:
        `huggingface_hub.CommitInfo`: the commit.
    """
    from semcore_hf.identifiers import SIDIndex
    from semcore_hf.modeling.loading import adapter_base_model, is_adapter_dir
    from semcore_hf.tokenization import SIDTokenizerExtension
    from semcore_hf.tokenization.extension import CONFIG_NAME

    model_dir = Path(model_dir)
    adapter = is_adapter_dir(model_dir)
    if not adapter and not (model_dir / "config.json").is_file():
        raise ValueError(f"{model_dir} holds neither a model (config.json) nor a peft adapter (adapter_config.json).")
    facts = _card_facts(model_dir)
    with tempfile.TemporaryDirectory(prefix="semcore_push_") as tmp:
        stage = Path(tmp) / "repo"
        stage.mkdir()
        _stage(model_dir, stage, [*TRAINING_LEFTOVERS, "README.md", *(["sid_index/**"] if index is not None else [])])
        if index is not None:
            index = index if isinstance(index, SIDIndex) else SIDIndex.from_pretrained(str(index))
            index.save_pretrained(stage / INDEX_SUBFOLDER)
        has_index = (stage / INDEX_SUBFOLDER / "sid_index.json").is_file()
        base = facts.get("base_model")
        kind = facts.get("model_kind")
        if adapter:
            base = portable_base_model(model_dir, base_model)
            config_path = stage / "adapter_config.json"
            config = json.loads(config_path.read_text(encoding="utf-8"))
            config["base_model_name_or_path"] = base
            config_path.unlink()  # a hard link to the local file: replace it, never write through it
            config_path.write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")
            if kind is None:
                local = Path(os.path.expanduser(adapter_base_model(model_dir)))
                kind = _model_kind(local if local.is_dir() else model_dir / "sid_ready_base")
        elif kind is None:
            kind = _model_kind(model_dir)
        sid_config = dict(facts.get("sid_config") or {})
        extension = (
            SIDTokenizerExtension.from_pretrained(model_dir)
            if (model_dir / CONFIG_NAME).is_file()
            else SIDTokenizerExtension()
        )
        sid_config.setdefault("structure_tokens", extension.tokens)
        sid_config.setdefault("prompt_format", extension.prompt_format)
        if has_index:
            sid_config.update(SIDIndex.from_pretrained(str(stage / INDEX_SUBFOLDER)).config.to_dict())
        from semcore_hf.model_cards import model_card

        card = model_card(
            name=repo_id.split("/")[-1],
            base_model=base,
            peft=adapter,
            model_kind=kind or "causal_lm",
            datasets=facts.get("training_data") or (),
            sid_config=sid_config,
            index_id=repo_id + "/" + INDEX_SUBFOLDER if has_index else facts.get("sid_index"),
            index_in_repo=has_index,
            repo_id=repo_id,
            license=facts.get("license"),
            eval_results=facts.get("eval_results"),  # `semcore-hf evaluate` results survive the push
        )
        (stage / "README.md").write_text(card.content, encoding="utf-8")
        return upload_artefact(
            stage,
            repo_id,
            token=token,
            private=private,
            revision=revision,
            commit_message=commit_message,
            create_pr=create_pr,
        )


def _model_kind(model_dir: Path) -> str | None:
    if not (model_dir / "config.json").is_file():
        return None
    from semcore_hf.modeling.loading import detect_model_kind

    return detect_model_kind(str(model_dir))


def push_sid_ready_model(
    model_dir: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "Upload SID-ready base model",
    create_pr: bool = False,
) -> Any:
    """Push a SID-ready base (`prepare_model_for_sids` output) so that `trl sft` can train it by Hub id.

    An adapter trained on `repo_id` then records `repo_id` as its base: portable as it is.

    Args:
        model_dir (`str` or `os.PathLike`): the `prepare_model_for_sids` output folder.
        repo_id (`str`): the Hub model repo (created if missing).
        token, private, revision, commit_message, create_pr: as in `huggingface_hub.HfApi.upload_folder`.

    Returns:
        `huggingface_hub.CommitInfo`: the commit.
    """
    from huggingface_hub import ModelCard, ModelCardData

    from semcore_hf._env import framework_versions
    from semcore_hf.training.prepare import preparation

    model_dir = Path(model_dir)
    info = preparation(model_dir)
    if info is None:
        raise ValueError(f"{model_dir} was not written by prepare_model_for_sids (no SID-ready manifest).")
    origin = info["base_model"]
    kind = _model_kind(model_dir) or "causal_lm"
    data = ModelCardData(
        base_model=origin if is_hub_id(origin) else None,
        library_name="transformers",
        pipeline_tag="image-text-to-text" if kind == "image_text_to_text" else "text-generation",
        tags=["semcore", "sid-ready", "generative-retrieval"],
        sid_config={k: v for k, v in info.items() if k != "base_model"},
        framework_versions=framework_versions(),
    )
    body = (
        f"# SID-ready {origin}\n\n`{origin}` with the SemCORE SID structure tokens added to its tokenizer and its "
        "embeddings grown to match (`semcore-hf prepare-model`), untrained. Train it with TRL's own CLI:\n\n"
        f"```bash\ntrl sft --config recipes/t2i_causal_lm_lora.yaml --model_name_or_path {repo_id}\n```\n"
    )
    with tempfile.TemporaryDirectory(prefix="semcore_push_") as tmp:
        stage = Path(tmp) / "repo"
        stage.mkdir()
        _stage(model_dir, stage, [*TRAINING_LEFTOVERS, "README.md"])
        (stage / "README.md").write_text(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}").content, encoding="utf-8")
        return upload_artefact(
            stage,
            repo_id,
            token=token,
            private=private,
            revision=revision,
            commit_message=commit_message,
            create_pr=create_pr,
        )


def update_model_card(
    model: str | os.PathLike,
    results: Sequence[Any],
    *,
    output_path: str | os.PathLike | None = None,
    push: bool = False,
    token: str | None = None,
    model_name: str | None = None,
) -> Any:
    """Merge evaluation results into a model's card `model-index` (`semcore_hf.model_cards.add_eval_results`).

    A local model folder's `README.md` is updated in place (atomically); a Hub model's card is loaded by id, and a
    card-less folder (a SID-ready base) gets a new one: both are written to `output_path`, and with `push=True` a Hub
    model's card is committed back to its repo. Every other card field is kept.

    Args:
        model (`str` or `os.PathLike`): a local model folder or a Hub id.
        results (`Sequence[huggingface_hub.EvalResult]`): from `semcore_hf.model_cards.eval_results`.
        output_path (`str` or `os.PathLike`, *optional*): where the updated card of a Hub model is written.
        push (`bool`, *optional*, defaults to `False`): commit the updated card to the Hub repo `model`.
        token (`str`, *optional*): Hub token.
        model_name (`str`, *optional*): the `model-index` name when the card has none (default: the folder / repo
            name).

    Returns:
        `huggingface_hub.ModelCard`: the updated card.
    """
    from huggingface_hub import ModelCard

    from semcore_hf._io import atomic_write_text
    from semcore_hf.model_cards import add_eval_results

    local = Path(os.path.expanduser(str(model)))
    name = model_name or (local.resolve().name if local.is_dir() else str(model).split("/")[-1])
    in_place = local.is_dir() and (local / "README.md").is_file()
    if local.is_dir():
        card = ModelCard.load(local / "README.md") if in_place else ModelCard("---\n---\n")
    else:
        card = ModelCard.load(str(model), token=token)
    card = add_eval_results(card, results, model_name=name)
    if in_place:
        atomic_write_text(local / "README.md", card.content)
    elif output_path is not None:
        atomic_write_text(Path(output_path), card.content)
    if push:
        if local.is_dir():
            raise ValueError(f"{model} is a local folder: push_model_card needs a Hub id.")
        from huggingface_hub import HfApi

        # a plain commit of README.md (`ModelCard.push_to_hub` would first ask the Hub's YAML validator)
        HfApi(token=token).upload_file(
            path_or_fileobj=card.content.encode("utf-8"),
            path_in_repo="README.md",
            repo_id=str(model),
            commit_message="Add SemCORE evaluation results",
        )
    return card
