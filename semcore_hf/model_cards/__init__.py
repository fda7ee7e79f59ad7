"""Model, dataset and index cards: huggingface_hub `ModelCard` / `DatasetCard` built from card data + a template.

Each card is `---\\n<card data YAML>\\n---` followed by the body that `model_cards/<template>.md` (installed as
`semcore_hf.model_cards`) renders. The body of a model card is a function of its card data alone (base model, data,
SID configuration, framework versions, evaluation results), so `add_eval_results` can re-render it after
`semcore-hf evaluate` without losing anything that training wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from semcore_hf.hub import is_hub_id

MODEL_TAGS = ["semcore", "generative-retrieval", "cross-modal-retrieval", "sid", "trl", "sft"]
# card data key of the facts only the semcore_hf body uses (directions, index, training data as given)
SEMCORE_KEY = "semcore"
TASK_TYPES = {
    "t2i": ("text-to-image-retrieval", "Text-to-image retrieval"),
    "i2t": ("image-to-text-retrieval", "Image-to-text retrieval"),
}


def render_card(template: str, **context: Any) -> str:
    """Render `model_cards/<template>.md` with Jinja2; unknown variables render empty (optional facts may be missing).

    Args:
        template (`str`): `"model_card"`, `"dataset_card"` or `"index_card"`.
        **context: the template variables (`card_data` is the YAML header's content).
    """
    import jinja2

    text = resources.files(__name__).joinpath(f"{template}.md").read_text(encoding="utf-8")
    env = jinja2.Environment(undefined=jinja2.Undefined, keep_trailing_newline=True, trim_blocks=True)
    return env.from_string(text).render(**context)


def model_card(
    *,
    name: str | None = None,
    base_model: str | None = None,
    peft: bool = False,
    model_kind: str = "causal_lm",
    datasets: Sequence[str] = (),
    sid_config: Mapping[str, Any] | None = None,
    index_id: str | None = None,
    index_in_repo: bool = False,
    repo_id: str | None = None,
    framework_versions: Mapping[str, str] | None = None,
    eval_results: Sequence[Any] | None = None,
    license: str | None = None,
) -> Any:
    """The model card of a SID-trained model (`huggingface_hub.ModelCard`).

    Args:
        name (`str`, *optional*): the model's name (title and `model-index` name).
        base_model (`str`, *optional*): the base model; recorded in the card data only when it is a Hub id (a
            local path means nothing on another machine).
        peft (`bool`, *optional*, defaults to `False`): a LoRA adapter (library `peft`) rather than a full model.
        model_kind (`str`, *optional*, defaults to `"causal_lm"`): `"causal_lm"` (T2I) or `"image_text_to_text"`.
        datasets (`Sequence[str]`, *optional*): the training data as given (paths or Hub ids; only Hub ids go into
            the card data's `datasets`).
        sid_config (`Mapping`, *optional*): the SID structure tokens, prompt format and `SIDConfig` of the index.
        index_id (`str`, *optional*): the SID index (path or Hub id).
        index_in_repo (`bool`, *optional*, defaults to `False`): the repo holds a copy of the index in `sid_index/`.
        repo_id (`str`, *optional*): the Hub repo, shown in the usage snippet.
        framework_versions (`Mapping[str, str]`, *optional*): defaults to the installed stack
            (`semcore_hf._env.framework_versions`).
        eval_results (`Sequence[huggingface_hub.EvalResult]`, *optional*): rendered as `model-index`.
        license (`str`, *optional*): the model's license (usually the base model's).
    """
    from huggingface_hub import ModelCardData

    from semcore_hf._env import framework_versions as installed

    hub_data = [d for d in datasets if is_hub_id(d)]
    data = ModelCardData(
        base_model=base_model if is_hub_id(base_model) else None,
        datasets=hub_data or None,
        library_name="peft" if peft else "transformers",
        pipeline_tag="image-text-to-text" if model_kind == "image_text_to_text" else "text-generation",
        tags=[*MODEL_TAGS, *(["peft", "lora"] if peft else [])],
        model_name=name,
        license=license,
        eval_results=list(eval_results) if eval_results else None,
        sid_config=dict(sid_config) if sid_config else None,
        framework_versions=dict(framework_versions) if framework_versions is not None else installed(),
        **{
            SEMCORE_KEY: {
                "model_kind": model_kind,
                "base_model": base_model,
                "training_data": list(datasets),
                "sid_index": index_id,
                "sid_index_in_repo": bool(index_in_repo),
                "repo_id": repo_id,
            }
        },
    )
    return _render_model_card(data)


def _render_model_card(data: Any) -> Any:
    from huggingface_hub import ModelCard

    extra = data.to_dict()
    facts = extra.get(SEMCORE_KEY) or {}
    kind = facts.get("model_kind", "causal_lm")
    metrics: dict[str, dict[str, float]] = {}
    for r in data.eval_results or []:
        label = f"{r.task_name or r.task_type} ({r.dataset_name}, {r.dataset_split or 'test'})"
        metrics.setdefault(label, {})[r.metric_name or r.metric_type] = float(r.metric_value)
    metric_names = list(dict.fromkeys(k for values in metrics.values() for k in values))
    body = render_card(
        "model_card",
        card_data=data.to_yaml(),
        name=data.model_name,
        base_model=facts.get("base_model") or data.base_model,
        peft=data.library_name == "peft",
        directions="text-to-image" if kind == "causal_lm" else "text-to-image and image-to-text",
        dataset=", ".join(facts.get("training_data") or []),
        index_id=facts.get("sid_index"),
        index_in_repo=facts.get("sid_index_in_repo"),
        repo_id=facts.get("repo_id"),
        sid_config=extra.get("sid_config"),
        framework_versions=extra.get("framework_versions"),
        metrics=metrics,
        metric_names=metric_names,
    )
    return ModelCard(body)


def is_semcore_card(card: Any) -> bool:
    """Whether `card` (a `ModelCard`) was written by `model_card` (its body can be re-rendered from its data)."""
    return SEMCORE_KEY in card.data.to_dict()


def eval_results(
    metrics: Mapping[str, float],
    direction: str,
    dataset_name: str,
    dataset_type: str | None = None,
    split: str = "test",
    keys: Sequence[str] | None = None,
) -> list[Any]:
    """`huggingface_hub.EvalResult`s of one evaluation: Recall@K (and MRR) of `direction` on one dataset split.

    Args:
        metrics (`Mapping[str, float]`): `recall@K` / `mrr` values in [0, 1] (`evaluate_retriever(...)["metrics"]`).
        direction (`str`): `"t2i"` or `"i2t"`.
        dataset_name (`str`): the dataset's name (a Hub id, or the local source's name).
        dataset_type (`str`, *optional*): the dataset's Hub id; defaults to `dataset_name`.
        split (`str`, *optional*, defaults to `"test"`): the evaluated split.
        keys (`Sequence[str]`, *optional*): which metrics (default: every `recall@K`, then `mrr`).
    """
    from huggingface_hub import EvalResult

    task_type, task_name = TASK_TYPES[direction]
    keys = list(keys) if keys is not None else [k for k in metrics if k.startswith("recall@")] + ["mrr"]
    out = []
    for key in keys:
        if key not in metrics:
            continue
        label = f"Recall@{key.split('@', 1)[1]}" if key.startswith("recall@") else key.upper()
        out.append(
            EvalResult(
                task_type=task_type,
                task_name=task_name,
                dataset_type=dataset_type or dataset_name,
                dataset_name=dataset_name,
                dataset_split=split,
                metric_type=key,
                metric_name=label,
                metric_value=round(float(metrics[key]), 6),
            )
        )
    return out


def add_eval_results(card: Any, results: Sequence[Any], model_name: str | None = None) -> Any:
    """`card` with `results` in its `model-index`: a result of the same task, dataset, split and metric is replaced,
    every other result and every other card field is kept. A `semcore_hf` card's body is re-rendered (its results
    table); any other card keeps its body.

    Args:
        card (`huggingface_hub.ModelCard`): the model's card.
        results (`Sequence[huggingface_hub.EvalResult]`): from `eval_results`.
        model_name (`str`, *optional*): the `model-index` name, needed when the card has none.
    """
    from huggingface_hub import ModelCard

    def key(r: Any) -> tuple:
        return (r.task_type, r.dataset_type, r.dataset_name, r.dataset_split, r.dataset_config, r.metric_type)

    new = {key(r): r for r in results}
    kept = [r for r in card.data.eval_results or [] if key(r) not in new]
    card.data.eval_results = kept + list(results)
    if not card.data.model_name:
        card.data.model_name = model_name or "semcore-retriever"
    if is_semcore_card(card):
        return _render_model_card(card.data)
    return ModelCard(f"---\n{card.data.to_yaml()}\n---\n{card.text}")


def dataset_card(configs: list[dict[str, Any]], tags: Sequence[str], pretty_name: str, **context: Any) -> Any:
    """The dataset card of SID training data (`huggingface_hub.DatasetCard`), with its `configs:` block.

    Args:
        configs (`list[dict]`): the `configs:` entries (`config_name`, `data_files`, `default`).
        tags (`Sequence[str]`): the card's tags.
        pretty_name (`str`): the title.
        **context: the body's template variables (`split_rows`, `default_task`, `card_text`).
    """
    from huggingface_hub import DatasetCard, DatasetCardData

    data = DatasetCardData(pretty_name=pretty_name, tags=list(tags), configs=configs)
    return DatasetCard(render_card("dataset_card", card_data=data.to_yaml(), pretty_name=pretty_name, **context))


def index_card(*, tags: Sequence[str], sid_config: Mapping[str, Any], license: str | None = None, **context: Any):
    """The card of a `SIDIndex` (`huggingface_hub.ModelCard`, library `semcore_hf`).

    Args:
        tags (`Sequence[str]`): the card's tags.
        sid_config (`Mapping`): the index's `SIDConfig.to_dict()`, recorded in the card data.
        license (`str`, *optional*): the license of the data the SIDs come from.
        **context: the body's template variables (see `index_card.md`).
    """
    from huggingface_hub import ModelCard, ModelCardData

    from semcore_hf._env import framework_versions

    data = ModelCardData(
        library_name="semcore_hf",
        tags=list(tags),
        license=license,
        sid_config=dict(sid_config),
        framework_versions=framework_versions(("semcore_hf", "sentence-transformers", "scikit-learn")),
    )
    return ModelCard(render_card("index_card", card_data=data.to_yaml(), **context))
