import pytest
from django.db import connection, transaction
from django.db.utils import InternalError, ProgrammingError

from audit.models import AccessEvent, AuditEvent

pytestmark = pytest.mark.django_db


def make_event():
    return AccessEvent.objects.create(outcome="allowed", basis="care-team", page="record:summary")


@pytest.mark.hazard("H-12")
@pytest.mark.parametrize("model", [AccessEvent, AuditEvent])
def test_saved_rows_cannot_be_changed_or_deleted_through_the_model(model):
    event = (
        make_event() if model is AccessEvent else AuditEvent.objects.create(action="x", target_type="T", target_id="1")
    )
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger exists on PostgreSQL only")
@pytest.mark.parametrize("statement", ["UPDATE {table} SET page = 'tampered'", "DELETE FROM {table}"])
def test_postgresql_refuses_update_and_delete_of_access_events(statement):
    make_event()
    with pytest.raises((InternalError, ProgrammingError)), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement.format(table=AccessEvent._meta.db_table))
    assert AccessEvent.objects.get().page == "record:summary"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger exists on PostgreSQL only")
def test_postgresql_refuses_queryset_update_of_audit_events():
    AuditEvent.objects.create(action="x", target_type="T", target_id="1")
    with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
        AuditEvent.objects.update(action="tampered")
    assert AuditEvent.objects.get().action == "x"
