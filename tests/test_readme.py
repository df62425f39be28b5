"""The README's example runs as written (a tiny checkpoint and a made-up photo stand in for the user's)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
    section = README.read_text().split("## Use camseg on your own images", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_is_short_and_cites_no_external_spec():
    text = README.read_text()
    assert len(text.splitlines()) <= 150
    assert "SPEC" not in text


def test_readme_example_runs(tmp_path, tiny_checkpoint, monkeypatch):
    code = _example()
    assert "import camseg" in code and "camseg.segment_image" in code
    photo = np.full((90, 120, 3), 30, np.uint8)
    photo[30:60, 40:80] = (220, 40, 40)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    monkeypatch.chdir(tmp_path)
    code = code.replace("artifacts/classifier-efficientnet_lite0.pt", str(tiny_checkpoint))
    code = code.replace('get_segmenter("auto")', 'get_segmenter("offline")')
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    mask = np.asarray(Image.open(tmp_path / "mask.png"))
    assert mask.shape == (90, 120)
    assert namespace["result"].point_coords.shape[-1] == 2
