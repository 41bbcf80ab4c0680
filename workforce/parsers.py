"""Request body parsers of the API: DRF's, with JSON too deeply nested to read refused as a 400."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from workforce.jsonlimits import JSON_NESTED_TOO_DEEPLY, MAX_JSON_DEPTH, json_depth

# The wording of the item import's refusal (tasks.services.imports.load_json_line), after DRF's own prefix.
NESTED_TOO_DEEPLY = "JSON parse error - the JSON is nested too deeply."


class SafeJSONParser(JSONParser):
    """DRF's JSON parser (which already turns malformed JSON into a ``ParseError``), refusing JSON nested too
    deeply for Python's parser to read with a 400 rather than letting ``RecursionError`` escape as a 500."""

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(NESTED_TOO_DEEPLY) from exc
        except ValueError as exc:  # DRF catches these itself; kept so no reader's ValueError is ever a 500
            raise ParseError(f"JSON parse error - {exc}") from exc
        if json_depth(data) > MAX_JSON_DEPTH:  # read, but deeper than code that walks it can follow
            raise ParseError(f"JSON parse error - {JSON_NESTED_TOO_DEEPLY}")
        return data
