"""Bulk upsert of record entries keyed by (source organisation, source id).

One query reads what is already there; rows that would not change are skipped ("unchanged"), an older copy
than the one held is skipped too (stale); the rest go in one INSERT ... ON CONFLICT DO UPDATE per model, so two
imports of the same bundle at the same moment cannot create a duplicate. Rows are written in key order, so
concurrent imports lock rows in the same order and cannot deadlock each other.

Nothing is filled in that the resource did not say: a clinical date it leaves out is stored as missing (never
the time of import), and an update stores what the new version says. Only `source_updated_at`, the version
stamp the stale check compares, falls back to the time received when the sender gives no meta.lastUpdated.

Rows stay plain dicts throughout: on PostgreSQL they are written with one INSERT ... SELECT FROM UNNEST(arrays)
(what Django's bulk_create does, without building and preparing a model instance per row, which cost more than
the database did); elsewhere through bulk_create.
"""

import enum
import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache

import orjson
from django.db import connection, models
from django.db.models import F, Lookup, Q
from django.utils import timezone
from psycopg.types.json import Jsonb

CREATED, UPDATED, UNCHANGED, REJECTED = "created", "updated", "unchanged", "rejected"
_RANK = {UNCHANGED: 0, UPDATED: 1, CREATED: 2}
UNIQUE_FIELDS = ["source_organisation", "source_id"]


@dataclass(frozen=True)
class Upserted:
    status: str
    stale: bool = False  # the sender's copy is older than the one held: kept the newer
    pk: int | None = None
    effective_at: datetime | None = None
    written: bool = False  # inserted or updated by this import (so this transaction holds its row lock)


class _AnyOf(Lookup):
    """`column IN (SELECT unnest(%s))` with the keys as one array parameter. A 1,000-key IN list costs Django
    and the driver more to build than the database takes to answer; `= ANY(array)` is estimated as matching
    many rows and gets a sequential scan, where this form gets the index (3 ms instead of 14 at 60,000 rows)."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        array_type = self.lhs.output_field.db_type(connection)
        return f"{lhs} IN (SELECT unnest(%s::{array_type}[]))", [*params, list(self.rhs)]


# Up to this many values, a plain IN list: the planner estimates it exactly and uses the index, where the
# unnest form, estimated as 100 rows whatever it holds, can tip a query ORing several of them (the kept versions
# of one HL7 message's few resources) into a scan of every version an organisation ever sent.
SMALL_IN_LIST = 64


def any_of(field: str, values):
    """A filter for `field` in `values`: one array parameter on PostgreSQL for many values, an IN list else."""
    values = list(values)
    if connection.vendor == "postgresql" and len(values) > SMALL_IN_LIST:
        return _AnyOf(F(field), values)
    return Q(**{f"{field}__in": values})


def strongest(*statuses: str) -> str:
    """Combine the statuses of the rows one resource produced: created beats updated beats unchanged."""
    return max(statuses, key=_RANK.__getitem__)


@dataclass(frozen=True)
class _Columns:
    names: list[str]  # what an upsert updates: everything but the key and created_at
    attnames: list[str]
    defaults: dict  # attname -> default, for what a mapper leaves out
    clip: list[tuple[str, int]]


@cache
def _columns(model) -> _Columns:
    fields = [
        f for f in model._meta.concrete_fields if not f.primary_key and f.name not in ("created_at", *UNIQUE_FIELDS)
    ]
    return _Columns(
        names=[f.name for f in fields],
        attnames=[f.attname for f in fields],
        # Callable defaults are left out (a default of "now" would be this process's start), but for the empty
        # containers a JSON field starts with.
        defaults={f.attname: f.get_default() for f in fields if _plain_default(f)},
        clip=[(f.attname, f.max_length) for f in fields if isinstance(f, models.CharField) and f.max_length],
    )


def _plain_default(field) -> bool:
    """A default the upsert may fill in for what a mapper leaves out: a constant, an empty JSON container, or
    the field's empty value. Not a callable like "now", which would be evaluated once, at this process's start."""
    return field.default is models.NOT_PROVIDED or not callable(field.default) or field.default in (list, dict)


def clip(model, values: dict) -> dict:
    """Long texts are cut to the column's length rather than failing the whole bulk write."""
    for attname, max_length in _columns(model).clip:
        value = values.get(attname)
        if isinstance(value, str) and len(value) > max_length:
            values[attname] = value[: max_length - 1] + "…"
    return values


def upsert(
    model, rows: dict[str, dict], *, organisation_id: int, now: datetime, existing: dict | None = None
) -> dict[str, Upserted]:
    """Write `rows` (source_id -> field values) for one organisation; return what happened to each. `existing`:
    the rows held for (at least) these keys, read by the caller in this transaction with `held_rows` (one query
    saved)."""
    if not rows:
        return {}
    columns = _columns(model)
    attnames = columns.attnames
    if existing is None:
        existing = held_rows(model, rows, organisation_id=organisation_id)
    results, to_write = {}, []
    for key in sorted(rows):
        values = {**columns.defaults, **clip(model, dict(rows[key])), "source_id": key}
        incoming_version = values.get("source_updated_at")
        old = existing.get(key)
        if old is None:
            values["source_updated_at"] = incoming_version or now
            to_write.append(values)
            results[key] = Upserted(CREATED)
            continue
        if incoming_version and old["source_updated_at"] and incoming_version < old["source_updated_at"]:
            results[key] = Upserted(UNCHANGED, stale=True, pk=old["pk"], effective_at=old.get("effective_at"))
            continue
        # Dates are what this version says: one it no longer gives is gone (never the import time, never kept
        # from an earlier version). Only the version stamp is kept when none is sent.
        values["source_updated_at"] = incoming_version or old["source_updated_at"]
        if all(values[attname] == old[attname] for attname in attnames):
            results[key] = Upserted(UNCHANGED, pk=old["pk"], effective_at=old.get("effective_at"))
            continue
        if not incoming_version:
            values["source_updated_at"] = now
        to_write.append(values)
        results[key] = Upserted(UPDATED)
    written = write_rows(model, to_write, update_fields=columns.names, unique_fields=UNIQUE_FIELDS)
    for key, pk, *effective_at in written:
        results[key] = Upserted(results[key].status, pk=pk, effective_at=next(iter(effective_at), None), written=True)
    return results


def held_rows(model, keys, *, organisation_id: int) -> dict[str, dict]:
    """source_id -> what upsert compares (pk, source_id and every column it writes) of the rows held for `keys`."""
    rows = model.objects.filter(any_of("source_id", keys), source_organisation_id=organisation_id).order_by()
    return {row["source_id"]: row for row in rows.values("pk", "source_id", *_columns(model).attnames)}


def write_rows(
    model, rows: list[dict], *, update_fields=None, unique_fields=None, ignore_conflicts: bool = False
) -> list[tuple]:
    """INSERT rows (dicts by attname), or upsert them on `unique_fields` when `update_fields` is given.
    An upsert returns (source_id, pk, effective_at) of each row written. `ignore_conflicts`: a row another
    transaction wrote first is left as it is (ON CONFLICT DO NOTHING)."""
    if not rows:
        return []
    if connection.vendor != "postgresql":
        objects = [model(**row) for row in rows]
        if not update_fields:
            model.objects.bulk_create(objects, batch_size=500, ignore_conflicts=ignore_conflicts)
            return []
        model.objects.bulk_create(
            objects, update_conflicts=True, unique_fields=unique_fields, update_fields=update_fields
        )
        written = model.objects.filter(
            any_of("source_id", [row["source_id"] for row in rows]),
            source_organisation_id=rows[0]["source_organisation_id"],
        )
        return list(written.values_list(*_returned(model)))
    # Every column a row leaves out gets the field's default, as the ORM would give it (a raw INSERT gives NULL).
    fields = [
        f
        for f in model._meta.concrete_fields
        if f.attname in rows[0] or f.name == "created_at" or (not f.primary_key and _plain_default(f))
    ]
    rows = [{f.attname: f.get_default() for f in fields if f.attname not in row} | row for row in rows]
    now = timezone.now()
    arrays = [
        [now] * len(rows) if f.name == "created_at" else [_plain(row[f.attname], f) for row in rows] for f in fields
    ]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = ", ".join(quote(f.column) for f in fields)
    # %b: the arrays go in binary form. In text form the driver quotes each element with regular expressions,
    # which took most of an ingest's Python time (a 1,000-resource bundle writes ~100,000 values).
    unnest = ", ".join(f"%b::{f.db_type(connection)}[]" for f in fields)
    sql = f"INSERT INTO {table} ({names}) SELECT * FROM UNNEST({unnest})"  # noqa: S608 - identifiers, not input
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    elif update_fields:
        conflict = ", ".join(quote(model._meta.get_field(name).column) for name in unique_fields)
        updates = ", ".join(
            f"{quote(column)} = EXCLUDED.{quote(column)}"
            for column in (model._meta.get_field(name).column for name in update_fields)
        )
        sql += f" ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
        sql += " RETURNING " + ", ".join(quote(model._meta.get_field(name).column) for name in _returned(model))
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)
        return cursor.fetchall() if update_fields else []


def _returned(model) -> list[str]:
    return ["source_id", "id", *(["effective_at"] if "effective_at" in _columns(model).attnames else [])]


def _plain(value, field):
    """Choices are str/int enums: give the driver their plain value; JSON goes as jsonb, not as an array."""
    if isinstance(field, models.JSONField):
        return Jsonb(value, dumps=_json_dumps)
    return value.value if isinstance(value, enum.Enum) else value


def _json_dumps(value) -> bytes | str:
    """JSON for a jsonb column, by orjson (several times json's speed); what orjson cannot write (a key that is
    not text, an integer past 64 bits) by json, as Django writes it."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value)
