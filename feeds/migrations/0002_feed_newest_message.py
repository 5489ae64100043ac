"""The newest message of each feed by index (the metrics' last message per feed), built concurrently on PostgreSQL
so the listeners keep writing while it builds (as patients 0007)."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class AddIndexWhileWriting(AddIndexConcurrently):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("feeds", "0001_feeds"),
    ]

    operations = [
        AddIndexWhileWriting(
            model_name="message",
            index=models.Index(fields=["feed", "-received_at"], name="feedmessage_feed_newest"),
        ),
    ]
