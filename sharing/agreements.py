"""The sharing agreements in force, as values: which organisations share each category today.

Read on the primary once per access decision and carried by it, never as a subquery inside an entry query:
entry queries may run on a read replica (carerecord/replicas.py), and what may be shown must come from the
primary, so that an agreement that stops sharing narrows the very next request even while a replica lags.

On PostgreSQL the values are also kept per process, keyed by today's date (an agreement starts on a date) and by
a version number that a statement trigger on the agreements table moves on every insert, update, delete or
truncate, whoever makes it (sharing/migrations/0004). The version comes from a sequence, so a change that rolls
back never leaves a number that another state could reuse. The decision's own query reads the version (one more
column, no more round trips), so a request only loads the agreements when they changed since this process last
did. SQLite (development) has no such trigger: the agreements are read once per decision.
"""

import threading
from collections.abc import Mapping

from django.db import connection
from django.db.models import BigIntegerField, Subquery, Value
from django.utils import timezone

from .models import AgreementsVersion, SharingAgreement

_lock = threading.Lock()
_cached: tuple | None = None  # ((version, today), {category: frozenset of organisation ids})


def version_column():
    """The agreements' version as a column of another query (None where no trigger keeps it: SQLite)."""
    if connection.vendor != "postgresql":
        return Value(None, output_field=BigIntegerField())
    return Subquery(AgreementsVersion.objects.filter(pk=AgreementsVersion.ROW).values("version")[:1])


def load(today) -> dict[str, frozenset[int]]:
    shared: dict[str, set[int]] = {}
    rows = SharingAgreement.objects.filter(shares=True, since__lte=today).values_list("category", "organisation_id")
    for category, organisation_id in rows.order_by():
        shared.setdefault(category, set()).add(organisation_id)
    return {category: frozenset(ids) for category, ids in shared.items()}


def in_force(version: int | None) -> Mapping[str, frozenset[int]]:
    """Organisations sharing each category today (by category value), as of `version` (None: read now)."""
    today = timezone.localdate()
    return load(today) if version is None else _copy(version, today)


def _copy(version: int, today) -> Mapping[str, frozenset[int]]:  # pragma: postgresql only
    global _cached
    key = (version, today)
    cached = _cached
    if cached is not None and cached[0] == key:
        return cached[1]
    shared = load(today)
    with _lock:
        _cached = (key, shared)
    return shared


def forget() -> None:
    """Drop this process's copy (tests; never needed for correctness: a change moves the version)."""
    global _cached
    with _lock:
        _cached = None
