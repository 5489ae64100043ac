"""ResultLink's organisation loses its single-column index (see the model): both composite indexes lead with it.

Only the index is dropped (concurrently on PostgreSQL, so feeds keep writing); Django's AlterField would also drop
and re-add the foreign key, whose validation locks the table against writes while it reads every row."""

from django.db import migrations, models


def _organisation_only_indexes(schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "fhir_resultlink")
    return [
        name
        for name, c in constraints.items()
        if c["index"] and not c["unique"] and not c["primary_key"] and c["columns"] == ["organisation_id"]
    ]


def drop_index(apps, schema_editor):
    concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
    for name in _organisation_only_indexes(schema_editor):
        schema_editor.execute(f"DROP INDEX{concurrently} IF EXISTS {schema_editor.quote_name(name)}")


def create_index(apps, schema_editor):
    if not _organisation_only_indexes(schema_editor):
        concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
        schema_editor.execute(
            f"CREATE INDEX{concurrently} fhir_resultlink_organisation_id_4f0b18fc ON fhir_resultlink (organisation_id)"
        )


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("directory", "0005_short_names_and_problem_contacts"),
        ("fhir", "0004_submissions"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="resultlink",
                    name="organisation",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=models.deletion.CASCADE,
                        related_name="+",
                        to="directory.organisation",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_index, create_index)],
        ),
    ]
