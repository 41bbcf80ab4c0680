"""MTurk requester-UI batch results files: import (``import_mturk_results``) and export (``export_mturk_results``)."""

from tasks.services.mturk_results.exporter import export_mturk_results
from tasks.services.mturk_results.importer import MTurkImportResult, import_mturk_results

__all__ = ["MTurkImportResult", "export_mturk_results", "import_mturk_results"]
