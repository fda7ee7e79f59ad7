"""Scorers on the session's tiny models, loaded once per module; small PIL images."""

from __future__ import annotations

import pytest
from PIL import Image


@pytest.fixture(scope="module")
def lm_scorer(tiny_lm_dir):
    from semcore_hf.verification import GSVScorer

    return GSVScorer.from_pretrained(tiny_lm_dir, batch_size=7)


@pytest.fixture(scope="module")
def vlm_scorer(tiny_llava_dir):
    from semcore_hf.verification import GSVScorer

    return GSVScorer.from_pretrained(tiny_llava_dir, batch_size=7)


@pytest.fixture(scope="module")
def images():
    # Different sizes and colours: the processor resizes them, the scores must still differ per image.
    return [
        Image.new("RGB", (24 + 8 * i, 40 - 3 * i), ((53 * i) % 256, (97 * i) % 256, (31 * i) % 256)) for i in range(9)
    ]
