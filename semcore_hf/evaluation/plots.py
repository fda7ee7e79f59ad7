"""Recall@K curves (recall vs K) for several systems / retrieval directions, written as one PNG."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping
from pathlib import Path

from semcore_hf._io import atomic_write_bytes

__all__ = ["plot_recall_curves"]

_RECALL_KEY = re.compile(r"^recall@(\d+)$")


def plot_recall_curves(
    results: Mapping[str, Mapping[str, float]],
    path: str | os.PathLike,
    title: str = "Recall@K",
    percent: bool = True,
) -> Path:
    """Plot Recall@K against K, one line per system (or direction), and write the figure as a PNG.

    Args:
        results (`dict[str, dict[str, float]]`):
            Maps a label (e.g. `"SemCORE T2I"`, `"CLIP I2T"`) to a metrics dict as returned by `recall_at_k`; only
            its `"recall@K"` keys are plotted (other keys such as `"mrr"` are ignored).
        path (`str` or `os.PathLike`):
            Where the PNG goes. Parent folders are created; the file is written atomically (temporary file, then
            rename), so a crash never leaves a half-written image.
        title (`str`, *optional*, defaults to `"Recall@K"`):
            The figure title.
        percent (`bool`, *optional*, defaults to `True`):
            Plot recall x 100, as papers report it.

    Returns:
        `pathlib.Path`: the path written.

    Raises:
        ValueError: `results` is empty, or a system has no `"recall@K"` entry.
    """
    if not results:
        raise ValueError("`results` is empty; pass {label: recall_at_k(...) output} for at least one system.")
    curves = {}
    for label, metrics in results.items():
        points = sorted((int(m.group(1)), float(v)) for key, v in metrics.items() if (m := _RECALL_KEY.match(key)))
        if not points:
            raise ValueError(f"`results[{label!r}]` has no 'recall@K' key (keys: {sorted(metrics)}).")
        curves[label] = points

    # Agg: no display needed (servers, CI); a Figure object keeps pyplot's global state out of it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.0), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    scale = 100.0 if percent else 1.0
    all_k = sorted({k for points in curves.values() for k, _ in points})
    for label, points in curves.items():
        ax.plot([k for k, _ in points], [v * scale for _, v in points], marker="o", label=label)
    ax.set_xscale("log" if all_k[-1] / all_k[0] >= 20 else "linear")
    ax.set_xticks(all_k, [str(k) for k in all_k])
    ax.set_xlabel("K")
    ax.set_ylabel("Recall@K (%)" if percent else "Recall@K")
    ax.set_ylim(0, scale * 1.02)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path
