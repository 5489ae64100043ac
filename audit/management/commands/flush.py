"""Django's `flush`, which the audit trail refuses outside tests.

`flush` empties every table. The audit tables refuse that (a TRUNCATE trigger on PostgreSQL, DELETE triggers on
SQLite), so `manage.py flush` fails on a real database, as it should: nobody empties the audit trail. Django
also flushes the database after each transactional test; only there, when Django's test environment is set up,
are the audit triggers lifted for the flush alone (and put back afterwards, whatever happens).
"""

import contextlib

import pgtrigger
from django.core.management.commands import flush
from django.db import connections
from django.db.backends.postgresql import base as postgresql_base
from django.test import utils as test_utils

PG_TRIGGERS = (
    "audit.AccessEvent:accessevent_no_truncate",
    "audit.AuditEvent:auditevent_no_truncate",
    "audit.AuditSeal:auditseal_no_truncate",
    "audit.AuditArchive:auditarchive_no_truncate",
)
SQLITE_TABLES = ("audit_accessevent", "audit_auditevent", "audit_auditseal", "audit_auditarchive")


def in_test_environment() -> bool:
    """Django's test runner (and pytest-django) called setup_test_environment()."""
    return hasattr(test_utils._TestState, "saved_data")


@contextlib.contextmanager
def audit_triggers_lifted(connection):
    if connection.vendor == "postgresql":  # pragma: postgresql only
        # pgtrigger.ignore prefixes each statement with a SET: two commands, which a server-side bound (prepared)
        # statement cannot carry, so the flush alone binds on the client side.
        connection.ensure_connection()
        raw = connection.connection
        server_bound = raw.cursor_factory
        raw.cursor_factory = postgresql_base.Cursor
        try:
            with pgtrigger.ignore(*PG_TRIGGERS, databases=[connection.alias]):
                yield
        finally:
            raw.cursor_factory = server_bound
        return
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN (%s, %s, %s, %s)", SQLITE_TABLES
        )
        triggers = cursor.fetchall()
        for name, _ in triggers:
            cursor.execute(f'DROP TRIGGER "{name}"')
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for _, sql in triggers:
                cursor.execute(sql)


class Command(flush.Command):
    def handle(self, **options):
        if not in_test_environment():
            return super().handle(**options)
        with audit_triggers_lifted(connections[options["database"]]):
            return super().handle(**options)
