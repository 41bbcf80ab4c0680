"""Reading a Ground Truth manifest's text, and what one of its lines may store.

Encoding: a manifest is UTF-8. A leading byte-order mark (as Windows tools write) is dropped; bytes that are
not UTF-8 are refused with the line they are on (``undecodable``), never decoded by guesswork.

Size: each line becomes an item, whose payload is the input line's keys plus ``image_url``/``text``, and, when
labeled, a ``GroundTruthLabel`` holding the label and its metadata. Each of the two is capped at
``MAX_STORED_BYTES`` (1 MB, as compact UTF-8 JSON). A line over the cap refuses the whole import, naming the
line and its largest field, instead of storing megabytes in one row or silently keeping part of a line (an
item's content must stay what the file says, or re-importing it would differ). Ground Truth's own inputs are
far smaller (images and masks are referenced by S3 URI, a text ``source`` is one task's text), so only a
broken or misused manifest reaches the cap; large content belongs in S3, referenced by ``source-ref``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tasks.services.errors import ServiceError

MAX_STORED_BYTES = 1_000_000
BOM = "\ufeff"


def without_bom(text: str) -> str:
    """The text without a leading byte-order mark (what decoding a BOM-prefixed file as UTF-8 leaves)."""
    return text.removeprefix(BOM)


def undecodable(exc: UnicodeDecodeError) -> str:
    """Where the bytes stop being UTF-8, as a clause: ``line N holds the byte 0xXX, which is not UTF-8``."""
    data = bytes(exc.object)
    line = data[: exc.start].count(b"\n") + 1
    return f"line {line} holds the byte 0x{data[exc.start]:02x}, which is not UTF-8"


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def check_stored_size(what: str, fields: Mapping[str, Any], *, line: int) -> None:
    """Refuse ``fields`` (stored together as ``what`` from manifest line ``line``) when they exceed the cap."""
    size = _size(dict(fields))
    if size <= MAX_STORED_BYTES:
        return
    name, largest = max(((key, _size(value)) for key, value in fields.items()), key=lambda pair: pair[1])
    raise ServiceError(
        f"The manifest's line {line} would store {_mb(size)} as {what} (its {name!r} alone is {_mb(largest)}), "
        f"over the {MAX_STORED_BYTES / 1_000_000:g} MB limit; keep large content in S3 and refer to it by source-ref"
    )
