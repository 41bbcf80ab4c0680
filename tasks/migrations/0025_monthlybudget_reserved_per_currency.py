"""Monthly caps became one per month and currency (0023). Before, every job's reservations were added to the
month's only row, whatever the job's currency; this step takes other currencies out of each row's ``reserved``
as far as the reservation rows tell (see ``recompute``), so euros no longer hold a dollar cap."""

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
        own = Decimal(totals.get((budget.month, budget.currency)) or 0)
        # The row counted only reservations made once it existed, every currency's; its own currency's share
        # of that is at most all of this currency's reservations that month, and at most what it holds now.
        # Exact when the month's jobs were all in the row's currency; never more than before, so nothing that
        # fitted the cap is refused after the upgrade.
        reserved = max(min(own, budget.reserved), Decimal("0"))
        if reserved != budget.reserved:
            MonthlyBudget.objects.filter(pk=budget.pk).update(reserved=reserved)


class Migration(migrations.Migration):
    dependencies = [("tasks", "0024_currency_code")]

    operations = [migrations.RunPython(recompute, migrations.RunPython.noop)]
