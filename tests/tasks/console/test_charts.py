"""The confusion heat map stays readable with long class names and few classes."""

from __future__ import annotations

import re

from tasks.console.charts import heat_map


def test_column_names_are_slanted_and_the_caption_fits() -> None:
    heat = str(heat_map([[3, 0, 0], [0, 2, 0], [0, 0, 5]], ["circle", "square", "triangle"], title="h"))
    width = int(re.search(r'<svg[^>]* width="(\d+)"', heat).group(1))  # type: ignore[union-attr]
    assert width >= 270  # the caption "columns: crowd majority · rows: gold answer" is not cut off
    slanted = re.findall(r'<text [^>]*transform="rotate\(-40 [^"]*"[^>]*>([^<]*)</text>', heat)
    assert slanted == ["circle", "square", "triangle"]
