"""The upload step shared by the admin's import pages (items, model predictions): run the import service
on a valid form and turn its refusals into form errors and a list of rows to fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django import forms

from tasks.services.errors import ImportValidationError, RowError, ServiceError

Result = TypeVar("Result")


def run_upload(form: forms.Form, run: Callable[[Any, dict[str, Any]], Result]) -> tuple[Result | None, list[RowError]]:
    """``run(upload, cleaned_data)`` for a bound, valid ``form``: its result, or None with the errors on the form."""
    try:
        return run(form.cleaned_data["file"], form.cleaned_data), []
    except ImportValidationError as exc:
        form.add_error("file", f"{exc.total_bad} bad row(s); nothing was imported. Fix them and upload again.")
        return None, exc.errors
    except ServiceError as exc:
        form.add_error("file", str(exc))
        return None, []
