"""Monthly caps became one per month and currency (0023). Before, every job's reservations were added to the
month's only row, whatever the job's currency; this step recomputes each row's ``reserved`` from the
reservation rows of that month's jobs in the row's own currency, so euros no longer hold a dollar cap (and a
euro release finds nothing missing)."""

from decimal import Decimal

from django.db import migrations
from django.db.models import Sum


def recompute(apps, schema_editor):
    MonthlyBudget = apps.get_model("tasks", "MonthlyBudget")
    BudgetReservation = apps.get_model("tasks", "BudgetReservation")
    totals = {
        (row["month"], row["job__currency"]): row["total"]
        for row in BudgetReservation.objects.values("month", "job__currency").annotate(total=Sum("amount"))
    }
    for budget in MonthlyBudget.objects.all():
        total = Decimal(totals.get((budget.month, budget.currency)) or 0)
        reserved = min(max(total, Decimal("0")), budget.cap)  # within the row's check constraint
        if reserved != budget.reserved:
            MonthlyBudget.objects.filter(pk=budget.pk).update(reserved=reserved)


class Migration(migrations.Migration):
    dependencies = [("tasks", "0024_currency_code")]

    operations = [migrations.RunPython(recompute, migrations.RunPython.noop)]
