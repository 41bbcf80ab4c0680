"""Demo content the project generates itself: shape images (SVG data URIs) and short review texts."""

from __future__ import annotations

import base64
import random

SHAPES = ("circle", "square", "triangle")
COLORS = {"red": "#d64545", "green": "#2f9e44", "blue": "#2f6fed", "orange": "#f08c00", "purple": "#7048e8"}


def shape_svg(shape: str, color: str, rng: random.Random) -> str:
    size = rng.randint(60, 110)
    cx, cy = rng.randint(size, 320 - size), rng.randint(size, 240 - size)
    fill = COLORS[color]
    if shape == "circle":
        body = f'<circle cx="{cx}" cy="{cy}" r="{size // 2 + 10}" fill="{fill}"/>'
    elif shape == "square":
        body = f'<rect x="{cx - size // 2}" y="{cy - size // 2}" width="{size}" height="{size}" fill="{fill}"/>'
    else:
        h = size
        points = f"{cx},{cy - h // 2} {cx - h // 2},{cy + h // 2} {cx + h // 2},{cy + h // 2}"
        body = f'<polygon points="{points}" fill="{fill}"/>'
    noise = "".join(
        f'<circle cx="{rng.randint(0, 320)}" cy="{rng.randint(0, 240)}" r="{rng.randint(1, 3)}" fill="#c9ced6"/>'
        for _ in range(25)
    )
    background = '<rect width="320" height="240" fill="#f4f5f7"/>'
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240">{background}{noise}{body}</svg>'


def shape_items(n: int, seed: int = 7) -> list[dict[str, str]]:
    return [item for item, _shape in shape_items_with_truth(n, seed)]


def shape_items_with_truth(n: int, seed: int = 7) -> list[tuple[dict[str, str], str]]:
    """``n`` picture items and, apart from each, the shape it shows (never in the payload workers see)."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        shape = rng.choice(SHAPES)
        color = rng.choice(list(COLORS))
        svg = shape_svg(shape, color, rng)
        uri = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
        items.append(({"external_id": f"shape-{i:04d}", "image_url": uri}, shape))
    return items


_POSITIVE = ["love", "really like", "am impressed by", "would recommend", "am delighted with"]
_NEGATIVE = ["hate", "am disappointed by", "regret buying", "would not recommend", "returned"]
_THINGS = ["this kettle", "the headphones", "this backpack", "the phone case", "this desk lamp", "the running shoes"]
_DETAILS = [
    "It arrived a day early.",
    "The colour is exactly as pictured.",
    "Battery life is shorter than advertised.",
    "Customer service answered quickly.",
    "It feels cheaper than the price suggests.",
    "Setup took two minutes.",
]


def review_items(n: int, seed: int = 11) -> list[dict[str, str]]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        verb = rng.choice(_POSITIVE if rng.random() < 0.5 else _NEGATIVE)
        text = f"I {verb} {rng.choice(_THINGS)}. {rng.choice(_DETAILS)}"
        if rng.random() < 0.2:
            text = f"{rng.choice(_THINGS).capitalize()} does what it says. {rng.choice(_DETAILS)}"
        items.append({"external_id": f"review-{i:04d}", "text": text})
    return items
