"""The bench dataset is loaded with COPY, which names its columns: a NOT NULL column added to a model and not
to the bench's list fails the load (as CI once showed when objections gained `identity_check`). This holds each
bulk-loaded table's column list to its model, so the mismatch is found here, not in `make bench`."""

import pytest
from django.apps import apps
from django.db import models
from django.db.models.fields import NOT_PROVIDED

from bench import dataset

MODELS = {model._meta.db_table: model for model in apps.get_models(include_auto_created=True)}


def required_columns(model) -> set[str]:
    """Columns the database refuses to leave out: NOT NULL with no database default and not a serial key."""
    required = set()
    for field in model._meta.concrete_fields:
        if field.null or isinstance(field, models.AutoField) or field.db_default is not NOT_PROVIDED:
            continue
        required.add(field.column)
    return required


@pytest.mark.parametrize("key", sorted(dataset.TABLES))
def test_each_bulk_table_copies_every_column_its_model_requires(key):
    table, columns = dataset.TABLES[key]
    copied = {column.strip() for column in columns.split(",")}
    model = MODELS[table]
    assert copied <= {field.column for field in model._meta.concrete_fields}, "a copied column the model lacks"
    assert required_columns(model) <= copied, f"{table} needs {sorted(required_columns(model) - copied)}"
