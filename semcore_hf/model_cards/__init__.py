"""Jinja templates for the model, dataset and index cards (installed as `semcore_hf.model_cards`)."""

from __future__ import annotations

from importlib import resources


def render_card(template: str, **context) -> str:
    """Render `model_cards/<template>.md` with Jinja2; unknown variables render empty (optional facts may be missing).

    Args:
        template (`str`): `"model_card"`, `"dataset_card"` or `"index_card"`.
        **context: the template variables.
    """
    import jinja2

    text = resources.files(__name__).joinpath(f"{template}.md").read_text(encoding="utf-8")
    env = jinja2.Environment(undefined=jinja2.Undefined, keep_trailing_newline=True, trim_blocks=True)
    return env.from_string(text).render(**context)
