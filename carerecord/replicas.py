"""Record entries read from a PostgreSQL streaming replica, when one is configured and close enough behind.

`DATABASE_REPLICA_URLS` names one or more hot standbys; without it nothing here is installed. With it:

- Only the record's **entries** (conditions, medications, results and their observations, letters, ...: the
  ENTRY_MODELS below) are read from a replica, and only inside a GET or HEAD request (`ReplicaReadsMiddleware`).
  Everything the access decision reads — the professional, the patient and their care-team grants, break glass,
  objections, sharing agreements (resolved into values on the primary by the decision: sharing/agreements.py) —
  is read on the primary, so a revoked relationship, an upheld objection or an agreement that stops sharing
  refuses or narrows the very next request whatever a replica has replayed. Every write goes to the primary;
  commands, feeds and the HL7 listener never read a replica.
- A replica is used only while its replay lag is at most `REPLICA_MAX_LAG_SECONDS`, checked at most every
  `REPLICA_LAG_CHECK_SECONDS` per process: the primary's current WAL position against the replica's replayed
  one — caught up is lag 0, otherwise the time since the replica last replayed a transaction (so a replica cut
  off from its primary ages out instead of reporting lag 0). Unreachable, not in recovery (promoted, or not a
  replica at all), or behind: the primary serves, and the log says why, once per check.
- Read-your-writes: after a request that writes (any method but GET, HEAD, OPTIONS, answered below 400), the
  same session or API token reads only the primary for the next lag bound plus one check interval, through the
  shared cache, so a clinician or a partner system never reads a record older than what it just sent.
- Nothing that is cached is filled from a replica: the only caches read decision data (API tokens, the sharing
  agreements), and those models are never routed here.
"""

import contextvars
import functools
import hashlib
import logging
import random
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

logger = logging.getLogger(__name__)

READS = contextvars.ContextVar("carerecord_replica_reads", default=False)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HOLD_KEY = "carerecord:replica-hold:"


def aliases() -> tuple[str, ...]:
    return tuple(alias for alias in settings.DATABASES if alias.startswith("replica"))


@functools.cache
def entry_models() -> frozenset:
    """What a replica may serve: the record's entries and what hangs off them (no decision data)."""
    from patients.categories import entry_models as by_category
    from patients.models import LetterAttachment, Observation, SupportPerson

    return frozenset({*by_category().values(), Observation, SupportPerson, LetterAttachment})


@dataclass
class Health:
    checked_at: float = float("-inf")
    usable: bool = False
    lag: float | None = None
    why: str = "not checked"
    kind: str = "unchecked"  # usable, unreachable, not-standby, behind: logged when it changes


_health: dict[str, Health] = {}


def _primary_position() -> str:  # pragma: postgresql only
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        return cursor.fetchone()[0]


def measure(alias: str) -> Health:  # pragma: postgresql only
    """Ask the primary where it is and the replica how far it has replayed: the replica's lag in seconds."""
    now = time.monotonic()
    try:
        position = _primary_position()
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() >= %s::pg_lsn, "
                "extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8",
                [position],
            )
            recovering, caught_up, since_replay = cursor.fetchone()
    except DatabaseError as error:
        connections[alias].close()
        return Health(now, False, None, f"unreachable ({type(error).__name__})", "unreachable")
    if not recovering:
        return Health(now, False, None, "not a standby (promoted, or not a replica)", "not-standby")
    lag = 0.0 if caught_up else (since_replay if since_replay is not None else float("inf"))
    if lag > settings.REPLICA_MAX_LAG_SECONDS:
        return Health(now, False, lag, f"{lag:.1f} s behind (bound {settings.REPLICA_MAX_LAG_SECONDS} s)", "behind")
    return Health(now, True, lag, "in bound", "usable")


def health(alias: str) -> Health:  # pragma: postgresql only
    known = _health.get(alias) or Health()
    if time.monotonic() - known.checked_at < settings.REPLICA_LAG_CHECK_SECONDS:
        return known
    fresh = measure(alias)
    if not fresh.usable and fresh.kind != known.kind:  # once when it changes, not at every check
        logger.warning("replica %s not used: %s", alias, fresh.why)
    _health[alias] = fresh
    return fresh


def usable_replica() -> str | None:  # pragma: postgresql only
    usable = [alias for alias in aliases() if health(alias).usable]
    return random.choice(usable) if usable else None  # spreading load, not security


def forget() -> None:
    _health.clear()


class ReplicaRouter:
    """Entries to a usable replica inside a request that may read one; everything else to the primary."""

    def db_for_read(self, model, **hints):
        if READS.get() and model in entry_models():
            return usable_replica() or DEFAULT_DB_ALIAS
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the same data, wherever it was read

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS


def _reader(request) -> str:
    """Whoever is asking, as far as read-your-writes goes: their session, else their API token."""
    credential = request.COOKIES.get(settings.SESSION_COOKIE_NAME) or request.headers.get("Authorization", "")
    return hashlib.sha256(credential.encode()).hexdigest()[:32] if credential else ""


def hold_seconds() -> int:
    return int(settings.REPLICA_MAX_LAG_SECONDS + settings.REPLICA_LAG_CHECK_SECONDS) + 1


class ReplicaReadsMiddleware:
    """Lets a GET or HEAD read entries from a replica unless its reader wrote within the hold; a write starts
    the hold. Installed only when replicas are configured."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        reader = _reader(request)
        if request.method in SAFE_METHODS:
            if request.method == "OPTIONS" or (reader and cache.get(HOLD_KEY + reader)):
                return self.get_response(request)
            token = READS.set(True)
            try:
                return self.get_response(request)
            finally:
                READS.reset(token)
        response = self.get_response(request)
        if reader and response.status_code < 400:
            cache.set(HOLD_KEY + reader, 1, timeout=hold_seconds())
        return response
