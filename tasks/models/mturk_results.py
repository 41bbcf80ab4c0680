"""The MTurk-format record of an assignment: what a requester-UI results CSV holds beyond our own fields.

One row per assignment imported from a results file or submitted through a job's MTurk HTML layout, so
the ``Answer.*`` fields that are not the job's label (free text, counters, other questions) and the HIT
columns we have no field for (title, HIT type, approval rates, ...) survive and come back out in the
MTurk export unchanged. Written only by ``tasks.services.mturk_results`` and ``tasks.services.task_templates``.
"""

from __future__ import annotations

from django.db import models

from tasks.models.core import Job
from tasks.models.work import Assignment


class RawResult(models.Model):
    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="raw_result")
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="raw_results")
    answers = models.JSONField(default=dict, help_text="Answer field name (without 'Answer.') -> value, as text.")
    columns = models.JSONField(default=dict, help_text="Other requester-UI columns of the row, as text.")
    source = models.CharField(max_length=255, blank=True, help_text="The file it came from, or 'template'.")

    def __str__(self) -> str:
        return f"Raw result of assignment {self.assignment_id}"
