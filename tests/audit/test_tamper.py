"""Issue 11, finding 8: the audit trail cannot be emptied or rewritten from the database either.

PostgreSQL refuses TRUNCATE by a trigger (UPDATE and DELETE were refused already); SQLite refuses UPDATE and
DELETE by triggers of its own; and the role the app runs as (docs/database-roles.md, docs/sql/roles.sql) owns
nothing, so it can neither change audit rows nor alter the tables or switch their triggers off.

The test database belongs to the superuser running the tests. The role tests create a role that owns nothing,
grant it exactly what docs/sql/roles.sql grants, SET ROLE to it and try each kind of tampering; everything
happens inside the test's transaction, so the role and its grants are rolled back with it.
"""

import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from audit.models import AccessEvent, AuditEvent
from audit.names import Action
from audit.writers import audit

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's triggers and roles")
sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's triggers")

ROLES_SQL = Path(settings.BASE_DIR) / "docs" / "sql" / "roles.sql"
AUDIT_MODELS = [AccessEvent, AuditEvent]
INSUFFICIENT_PRIVILEGE = "42501"


def make_row(model):
    if model is AccessEvent:
        return AccessEvent.objects.create(outcome="allowed", basis="care-team", page="record:summary")
    return AuditEvent.objects.create(action="x", target_type="T", target_id="1")


def run(sql):
    """One statement in a savepoint, so a refusal leaves the test's transaction usable."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)


def sqlstate(error: DatabaseError) -> str:
    return getattr(error.__cause__, "sqlstate", "")


# --- PostgreSQL: TRUNCATE ---------------------------------------------------------------------------------------


@postgresql_only
@pytest.mark.parametrize("model", AUDIT_MODELS, ids=lambda m: m.__name__)
def test_finding_8_truncate_is_refused(model):
    """Even for the tables' owner: only a superuser (who can do anything) could get round the trigger."""
    make_row(model)
    with pytest.raises(DatabaseError, match="append-only"):
        run(f"TRUNCATE {model._meta.db_table}")
    assert model.objects.count() == 1


# --- SQLite: UPDATE and DELETE ----------------------------------------------------------------------------------


@sqlite_only
@pytest.mark.parametrize("model", AUDIT_MODELS, ids=lambda m: m.__name__)
@pytest.mark.parametrize(
    "statement", ["UPDATE {table} SET at = '2000-01-01 00:00:00'", "DELETE FROM {table}"], ids=["update", "delete"]
)
def test_finding_8_sqlite_refuses_update_and_delete(model, statement):
    make_row(model)
    with pytest.raises(DatabaseError, match="append-only"):
        run(statement.format(table=model._meta.db_table))
    assert model.objects.count() == 1 and model.objects.get().at.year != 2000


# --- PostgreSQL: the app's role -----------------------------------------------------------------------------------


def roles_sql(*, owner, app):
    """docs/sql/roles.sql with psql's variables filled in and its meta-commands (\\set) left out."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT quote_ident(%s), quote_literal(%s), quote_ident(%s)", [app, app, owner])
        app_ident, app_literal, owner_ident = cursor.fetchone()
    lines = [line for line in ROLES_SQL.read_text().splitlines() if not line.startswith("\\")]
    sql = "\n".join(lines)
    sql = sql.replace(':"app"', app_ident).replace(":'app'", app_literal).replace(':"owner"', owner_ident)
    assert not re.search(r":['\"]\w+['\"]", sql), "a psql variable the test does not know"
    return sql


@pytest.fixture
def as_app_role():
    """SET ROLE to a new role that owns nothing and has exactly the grants of docs/sql/roles.sql."""
    role = f"carerecord_app_test_{os.getpid()}"  # roles belong to the cluster: one per test process
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        [owner] = cursor.fetchone()
        cursor.execute(f'CREATE ROLE "{role}" NOLOGIN')
        cursor.execute(roles_sql(owner=owner, app=role))
        cursor.execute(f'SET ROLE "{role}"')
    yield role
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")  # the role itself goes when the test's transaction is rolled back


TAMPERING = {
    "update": "UPDATE {table} SET at = now()",
    "delete": "DELETE FROM {table}",
    "truncate": "TRUNCATE {table}",
    "alter-add-column": "ALTER TABLE {table} ADD COLUMN note text",
    "disable-triggers": "ALTER TABLE {table} DISABLE TRIGGER ALL",
    "drop-trigger": "DROP TRIGGER {trigger} ON {table}",
    "take-ownership": "ALTER TABLE {table} OWNER TO CURRENT_USER",
    "drop-table": "DROP TABLE {table}",
    "replica-mode": "SET session_replication_role = replica",  # the other way to switch triggers off
    # pgtrigger's triggers step aside when this setting names them; the privilege check comes first.
    "pgtrigger-ignore": "SELECT set_config('pgtrigger.ignore', '{{{trigger}}}', true); UPDATE {table} SET at = now()",
}


@pytest.mark.hazard("H-12")
@postgresql_only
@pytest.mark.parametrize("model", AUDIT_MODELS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("tampering", TAMPERING)
@pytest.mark.parametrize("where", ["table", "partition"])
def test_finding_8_the_app_role_cannot_change_the_audit_tables_or_their_triggers(model, tampering, where, as_app_role):
    """On the table and on the month partition the row lies in (audit/partitions.py)."""
    row = make_row(model)
    table = model._meta.db_table
    if where == "partition":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT tableoid::regclass::text FROM {table} WHERE id = %s", [row.pk])
            [table] = cursor.fetchone()
        assert table != model._meta.db_table
    trigger = next(t.get_pgid(model) for t in model._meta.triggers if t.name.endswith("_append_only"))
    with pytest.raises(DatabaseError) as refused:
        run(TAMPERING[tampering].format(table=table, trigger=trigger))
    assert sqlstate(refused.value) == INSUFFICIENT_PRIVILEGE, refused.value
    assert model.objects.get().at == row.at


@postgresql_only
def test_the_app_role_can_append_to_and_read_the_audit_trail(as_app_role, organisation):
    """The grants are enough for the app's own work: audit rows written and read, other tables changed."""
    from directory.actions import save_organisation

    organisation.name = "Renamed under the app role"
    save_organisation(by=None, organisation=organisation, changed=["name"])
    event = audit(by=None, action=Action.ORGANISATION_CHANGED, target=organisation)
    AccessEvent.objects.create(outcome="allowed", basis="care-team", page="record:summary")
    assert AuditEvent.objects.filter(pk=event.pk).exists() and AccessEvent.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (as_app_role,)
