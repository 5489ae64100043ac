"""AccessEvent and AuditEvent partitioned by month on PostgreSQL (audit/partitions.py says how and why).

No row is copied: each table becomes the partition of everything before next month under a new partitioned
parent of the same name, so this takes as long as rebuilding each table's primary key as (id, at) and checking
the rows against the new bound (seconds per ten million rows here), holding the audit tables locked meanwhile:
run it in a maintenance window. Django's model state is unchanged (the id stays the model's primary key; the
database's is (id, at), and ids still come from one identity). SQLite keeps plain tables.

Not reversible in place: a partitioned table serves the previous code just as well.
"""

import datetime

from django.db import migrations

from audit import partitions


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    today = datetime.datetime.now(datetime.UTC).date()
    with schema_editor.connection.cursor() as cursor:
        for table in partitions.TABLES:
            if not partitions.is_partitioned(table, schema_editor.connection):
                partitions.convert(table, today=today, ahead=partitions.MONTHS_AHEAD, cursor=cursor)


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0005_audit_seals"),
    ]

    operations = [
        migrations.RunPython(partition, migrations.RunPython.noop, elidable=False),
    ]
