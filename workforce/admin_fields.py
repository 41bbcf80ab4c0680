"""Form fields of the admin that read what an ops manager types, not only JSON."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.forms.fields import InvalidJSONInput, JSONString

from workforce.jsonlimits import JSON_NESTED_TOO_DEEPLY, TooDeep, UnstorableNumber, load_storable

LABELS_HELP = "Enter the labels one per line (or separated by commas), e.g. cat, dog."
MAX_LABEL_LENGTH = 100  # as the API takes them


class StorableJSONField(forms.JSONField):
    """Django's JSON form field, refusing with a sentence (never an exception the page cannot show) what it
    cannot read or a database could not store: JSON nested too deeply, NaN, Infinity, numbers like 1e999."""

    def to_python(self, value: Any) -> Any:
        if self.disabled or value in self.empty_values or not isinstance(value, str | bytes | bytearray):
            return super().to_python(value)
        if isinstance(value, JSONString):
            return value
        converted = self._load(value)
        return JSONString(converted) if isinstance(converted, str) else converted

    def bound_data(self, data: Any, initial: Any) -> Any:
        if self.disabled or data is None:
            return super().bound_data(data, initial)
        try:
            return self._load(data)
        except forms.ValidationError:
            return InvalidJSONInput(data)  # shown back as typed

    def _load(self, text: str | bytes | bytearray) -> Any:
        try:
            return load_storable(text, decoder=self.decoder)
        except TooDeep as exc:
            raise forms.ValidationError(JSON_NESTED_TOO_DEEPLY, code="invalid") from exc
        except UnstorableNumber as exc:
            reason = str(exc)
            raise forms.ValidationError(
                f"{reason[:1].upper()}{reason[1:]}; enter a finite number.", code="invalid"
            ) from exc
        except ValueError as exc:  # not JSON, or an integer of more digits than Python reads
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from exc


class LabelListField(StorableJSONField):
    """A job's label set, typed one per line, or on one line separated by commas, or as a JSON list.

    Shown one per line. A label that itself holds a comma goes on a line of its own (several lines are never
    split at commas), or in a JSON list.
    """

    widget = forms.Textarea(attrs={"rows": 4, "cols": 40})

    def to_python(self, value: Any) -> Any:
        if isinstance(value, list) or value in self.empty_values:
            return super().to_python(value)
        text = str(value).strip()
        if text.startswith("["):
            return super().to_python(text)  # JSON, with its own error message when it is not valid
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        parts = lines if len(lines) > 1 else [p.strip() for p in text.split(",") if p.strip()]
        return parts

    def clean(self, value: Any) -> list[str]:
        """The labels, stripped; anything but a list of non-empty names is refused with one sentence."""
        labels = super().clean(value)
        if labels in self.empty_values:
            return []
        if not isinstance(labels, list) or not all(isinstance(x, str) and x.strip() for x in labels):
            raise forms.ValidationError(LABELS_HELP)
        names = [x.strip() for x in labels]
        if any(len(name) > MAX_LABEL_LENGTH for name in names):
            raise forms.ValidationError(f"A label can be at most {MAX_LABEL_LENGTH} characters long.")
        if any("\x00" in name for name in names):
            raise forms.ValidationError("A label cannot contain a NUL character.")
        return names

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list) and all(isinstance(v, str) and "\n" not in v for v in value):
            return "\n".join(value)
        if isinstance(value, str):
            return value  # a bound value as typed, shown back unchanged after an error
        return json.dumps(value)

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return bool(self.to_python(data) != initial)
        except forms.ValidationError:
            return True
