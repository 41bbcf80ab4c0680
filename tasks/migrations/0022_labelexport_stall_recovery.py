from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.db.models import F
from django.db.models.functions import Coalesce


def fill_export_timestamps(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Existing exports were sent to the queue when asked for; those a worker took were claimed once, and a
    running one last showed life when it was asked for (so one whose worker died is recovered by the sweep)."""
    LabelExport = apps.get_model("tasks", "LabelExport")
    LabelExport.objects.update(queued_at=F("created_at"))
    LabelExport.objects.filter(state="running").update(attempts=1, heartbeat_at=F("created_at"))
    LabelExport.objects.filter(state__in=["done", "failed"]).update(
        attempts=1, heartbeat_at=Coalesce(F("finished_at"), F("created_at"))
    )


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0021_mturkhit_paused"),
    ]

    operations = [
        migrations.AddField(
            model_name="labelexport",
            name="queued_at",
            field=models.DateTimeField(
                blank=True, null=True, help_text="When it was last sent to the task queue (empty: never sent yet)."
            ),
        ),
        migrations.AddField(
            model_name="labelexport",
            name="attempts",
            field=models.PositiveSmallIntegerField(
                default=0, help_text="How many runs have claimed it; only the latest run may write the result."
            ),
        ),
        migrations.AddField(
            model_name="labelexport",
            name="heartbeat_at",
            field=models.DateTimeField(
                blank=True, null=True, help_text="When its run last showed life (claimed the row or wrote rows)."
            ),
        ),
        migrations.RunPython(fill_export_timestamps, migrations.RunPython.noop),
    ]
