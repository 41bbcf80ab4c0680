from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.utils import timezone


def mark_hits_of_paused_jobs(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """HITs a pause already expired, so that a later resume MTurk never hears of is still caught."""
    MTurkHit = apps.get_model("tasks", "MTurkHit")
    MTurkHit.objects.filter(hit__job__state="paused", expires_at__lte=timezone.now()).update(paused=True)


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0020_job_gold_leases_priced"),
    ]

    operations = [
        migrations.AddField(
            model_name="mturkhit",
            name="paused",
            field=models.BooleanField(
                default=False,
                help_text="Expired by a pause or cancel; the job's resume (or the reconcile) opens it again.",
            ),
        ),
        migrations.RunPython(mark_hits_of_paused_jobs, migrations.RunPython.noop),
    ]
