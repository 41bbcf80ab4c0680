"""Per-job running totals kept by triggers (see ``tasks.models.tallies``).

The trigger SQL is written out here, frozen with the migration: statement-level triggers with transition
tables on PostgreSQL (one grouped upsert per statement, into the session's own shard row), row-level
triggers on SQLite (tests and development). Triggers are created before the tallies are filled, so a
write that happens while the migration runs waits for it and is then counted by its trigger.
"""

from decimal import Decimal

import django.db.models.deletion
from django.db import migrations, models

SHARDS = 16
LIVE_HIT = "NOT {r}.is_gold AND {r}.state <> 'cancelled'"
HIT_COLUMNS = {
    "hits": f"CASE WHEN {LIVE_HIT} THEN 1 ELSE 0 END",
    "hits_complete": "CASE WHEN NOT {r}.is_gold AND {r}.state = 'complete' THEN 1 ELSE 0 END",
    "answers_wanted": f"CASE WHEN {LIVE_HIT} THEN {{r}}.assignments_wanted ELSE 0 END",
    "answers_submitted": f"CASE WHEN {LIVE_HIT} THEN {{r}}.assignments_submitted ELSE 0 END",
    "slots_taken": f"CASE WHEN {LIVE_HIT} THEN {{r}}.slots_taken ELSE 0 END",
}
ITEM_COLUMNS = {
    "items": "CASE WHEN {r}.is_gold THEN 0 ELSE 1 END",
    "gold_items": "CASE WHEN {r}.is_gold THEN 1 ELSE 0 END",
}
TALLY_COLUMNS = [*HIT_COLUMNS, *ITEM_COLUMNS]
HIT_WATCHED = "state, is_gold, assignments_wanted, assignments_submitted, slots_taken, job_id"
ITEM_WATCHED = "is_gold, job_id"
COST_KEYS = ["kind", "status", "marketplace"]
COST_WATCHED = "kind, status, marketplace, amount, job_id"


def _exprs(columns, row, sign=""):
    return ", ".join(f"{sign}({expr.format(r=row)}) AS {name}" for name, expr in columns.items())


def _pg_job_tally(table, columns):
    """Three statement-level triggers' functions: inserts add the new rows, updates add new minus old."""
    sums = ", ".join(f"SUM(d.{c})" if c in columns else "0" for c in TALLY_COLUMNS)
    changed = " OR ".join(f"SUM(d.{c}) <> 0" for c in columns)
    updates = ", ".join(f"{c} = t.{c} + EXCLUDED.{c}" for c in columns)
    sources = {
        "insert": f"SELECT r.job_id, {_exprs(columns, 'r')} FROM new_rows r",
        "update": (
            f"SELECT r.job_id, {_exprs(columns, 'r')} FROM new_rows r UNION ALL "
            f"SELECT r.job_id, {_exprs(columns, 'r', '-')} FROM old_rows r"
        ),
    }
    return {
        op: (
            f"INSERT INTO tasks_jobtally AS t (job_id, shard, {', '.join(TALLY_COLUMNS)}) "
            f"SELECT d.job_id, pg_backend_pid() % {SHARDS}, {sums} FROM ({source}) d "
            f"GROUP BY d.job_id HAVING {changed} ORDER BY d.job_id "
            f"ON CONFLICT (job_id, shard) DO UPDATE SET {updates}"
        )
        for op, source in sources.items()
    }


def _pg_cost_tally():
    keys = ", ".join(COST_KEYS)
    dkeys = ", ".join(f"d.{k}" for k in COST_KEYS)
    rkeys = ", ".join(f"r.{k}" for k in COST_KEYS)
    sources = {
        "insert": f"SELECT r.job_id, {rkeys}, r.amount FROM new_rows r",
        "update": (
            f"SELECT r.job_id, {rkeys}, r.amount FROM new_rows r UNION ALL "
            f"SELECT r.job_id, {rkeys}, -r.amount FROM old_rows r"
        ),
    }
    return {
        op: (
            f"INSERT INTO tasks_jobcosttally AS t (job_id, shard, {keys}, amount) "
            f"SELECT d.job_id, pg_backend_pid() % {SHARDS}, {dkeys}, SUM(d.amount) FROM ({source}) d "
            f"GROUP BY d.job_id, {dkeys} HAVING SUM(d.amount) <> 0 ORDER BY d.job_id, {dkeys} "
            f"ON CONFLICT (job_id, shard, {keys}) DO UPDATE SET amount = t.amount + EXCLUDED.amount"
        )
        for op, source in sources.items()
    }


def _pg_triggers(table, name, statements):
    sql, reverse = [], []
    for op, statement in statements.items():
        function = f"tasks_tally_{name}_{op}"
        referencing = "NEW TABLE AS new_rows" if op == "insert" else "OLD TABLE AS old_rows NEW TABLE AS new_rows"
        sql.append(
            f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {statement}; RETURN NULL; END $$;"
            f"CREATE TRIGGER {function} AFTER {op.upper()} ON {table} REFERENCING {referencing} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}();"
        )
        reverse.append(f"DROP TRIGGER IF EXISTS {function} ON {table}; DROP FUNCTION IF EXISTS {function}();")
    return sql, reverse


def _sqlite_job_tally(table, name, columns, watched):
    zeros = ", ".join("0" for _ in TALLY_COLUMNS)
    cols = ", ".join(TALLY_COLUMNS)

    def add(row, sign):
        sets = ", ".join(f"{c} = {c} {sign} ({expr.format(r=row)})" for c, expr in columns.items())
        return (
            f"INSERT OR IGNORE INTO tasks_jobtally (job_id, shard, {cols}) VALUES ({row}.job_id, 0, {zeros}); "
            f"UPDATE tasks_jobtally SET {sets} WHERE job_id = {row}.job_id AND shard = 0;"
        )

    return (
        [
            f"CREATE TRIGGER tasks_tally_{name}_insert AFTER INSERT ON {table} BEGIN {add('NEW', '+')} END;",
            f"CREATE TRIGGER tasks_tally_{name}_update AFTER UPDATE OF {watched} ON {table} "
            f"BEGIN {add('OLD', '-')} {add('NEW', '+')} END;",
        ],
        [f"DROP TRIGGER IF EXISTS tasks_tally_{name}_insert;", f"DROP TRIGGER IF EXISTS tasks_tally_{name}_update;"],
    )


def _sqlite_cost_tally():
    def add(row, sign):
        match = " AND ".join(f"{k} = {row}.{k}" for k in COST_KEYS)
        return (
            f"INSERT OR IGNORE INTO tasks_jobcosttally (job_id, shard, {', '.join(COST_KEYS)}, amount) "
            f"VALUES ({row}.job_id, 0, {', '.join(f'{row}.{k}' for k in COST_KEYS)}, 0); "
            f"UPDATE tasks_jobcosttally SET amount = amount {sign} {row}.amount "
            f"WHERE job_id = {row}.job_id AND shard = 0 AND {match};"
        )

    return (
        [
            f"CREATE TRIGGER tasks_tally_cost_insert AFTER INSERT ON tasks_costentry BEGIN {add('NEW', '+')} END;",
            f"CREATE TRIGGER tasks_tally_cost_update AFTER UPDATE OF {COST_WATCHED} ON tasks_costentry "
            f"BEGIN {add('OLD', '-')} {add('NEW', '+')} END;",
        ],
        ["DROP TRIGGER IF EXISTS tasks_tally_cost_insert;", "DROP TRIGGER IF EXISTS tasks_tally_cost_update;"],
    )


def _trigger_sql(vendor):
    if vendor == "postgresql":
        parts = [
            _pg_triggers("tasks_hit", "hit", _pg_job_tally("tasks_hit", HIT_COLUMNS)),
            _pg_triggers("tasks_item", "item", _pg_job_tally("tasks_item", ITEM_COLUMNS)),
            _pg_triggers("tasks_costentry", "cost", _pg_cost_tally()),
        ]
    elif vendor == "sqlite":
        parts = [
            _sqlite_job_tally("tasks_hit", "hit", HIT_COLUMNS, HIT_WATCHED),
            _sqlite_job_tally("tasks_item", "item", ITEM_COLUMNS, ITEM_WATCHED),
            _sqlite_cost_tally(),
        ]
    else:
        raise RuntimeError(f"No tally triggers for the {vendor} database.")
    return [s for sql, _ in parts for s in sql], [s for _, reverse in parts for s in reverse]


def create_triggers(apps, schema_editor):
    for statement in _trigger_sql(schema_editor.connection.vendor)[0]:
        schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor):
    for statement in _trigger_sql(schema_editor.connection.vendor)[1]:
        schema_editor.execute(statement, params=None)


def fill_tallies(apps, schema_editor):
    """The tallies of the jobs already there, counted once (the triggers keep them from now on)."""
    from django.db.models import Count, Q, Sum

    Hit, Item, CostEntry = (apps.get_model("tasks", m) for m in ("Hit", "Item", "CostEntry"))
    JobTally, JobCostTally = apps.get_model("tasks", "JobTally"), apps.get_model("tasks", "JobCostTally")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("LOCK TABLE tasks_hit, tasks_item, tasks_costentry IN SHARE MODE")
    live = Q(is_gold=False) & ~Q(state="cancelled")
    tallies = {}
    for row in Hit.objects.values("job_id").order_by().annotate(
        n_hits=Count("id", filter=live),
        n_complete=Count("id", filter=Q(is_gold=False, state="complete")),
        n_wanted=Sum("assignments_wanted", filter=live, default=0),
        n_submitted=Sum("assignments_submitted", filter=live, default=0),
        n_taken=Sum("slots_taken", filter=live, default=0),
    ):
        tallies[row["job_id"]] = {
            "hits": row["n_hits"],
            "hits_complete": row["n_complete"],
            "answers_wanted": row["n_wanted"],
            "answers_submitted": row["n_submitted"],
            "slots_taken": row["n_taken"],
        }
    for row in Item.objects.values("job_id").order_by().annotate(
        n_items=Count("id", filter=Q(is_gold=False)), n_gold=Count("id", filter=Q(is_gold=True))
    ):
        tallies.setdefault(row["job_id"], {}).update(items=row["n_items"], gold_items=row["n_gold"])
    JobTally.objects.bulk_create([JobTally(job_id=j, shard=0, **t) for j, t in tallies.items()], batch_size=1000)
    costs = CostEntry.objects.values("job_id", *COST_KEYS).order_by().annotate(total=Sum("amount"))
    JobCostTally.objects.bulk_create(
        [
            JobCostTally(shard=0, amount=row.pop("total"), **row)
            for row in costs
            if row["total"] and row["total"] != Decimal("0")
        ],
        batch_size=1000,
    )


class Migration(migrations.Migration):

    dependencies = [
        ('tasks', '0013_gold_on_pages'),
    ]

    operations = [
        migrations.CreateModel(
            name='JobCostTally',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('shard', models.SmallIntegerField(default=0)),
                ('kind', models.CharField(max_length=24)),
                ('status', models.CharField(max_length=16)),
                ('marketplace', models.CharField(max_length=16)),
                ('amount', models.DecimalField(decimal_places=4, default=0, max_digits=18)),
                ('job', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tasks.job')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('job', 'shard', 'kind', 'status', 'marketplace'), name='jobcosttally_unique_key')],
            },
        ),
        migrations.CreateModel(
            name='JobTally',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('shard', models.SmallIntegerField(default=0)),
                ('hits', models.BigIntegerField(default=0, help_text='Non-gold Hits that are not cancelled.')),
                ('hits_complete', models.BigIntegerField(default=0)),
                ('answers_wanted', models.BigIntegerField(default=0)),
                ('answers_submitted', models.BigIntegerField(default=0)),
                ('slots_taken', models.BigIntegerField(default=0)),
                ('items', models.BigIntegerField(default=0, help_text='Items that are not gold.')),
                ('gold_items', models.BigIntegerField(default=0)),
                ('job', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tasks.job')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('job', 'shard'), name='jobtally_unique_shard')],
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
        migrations.RunPython(fill_tallies, migrations.RunPython.noop),
    ]
