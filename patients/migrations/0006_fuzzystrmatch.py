"""PostgreSQL's fuzzystrmatch, for the crew search's phonetic match (patients.crew_search: `soundex()`).

A trusted extension since PostgreSQL 13: the database's owner can create it without being a superuser. Django's
CreateExtension does nothing on SQLite, where the same key is a Python function registered on the connection.
"""

from django.contrib.postgres.operations import CreateExtension
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("patients", "0005_search_columns"),
    ]

    operations = [
        CreateExtension("fuzzystrmatch"),
    ]
