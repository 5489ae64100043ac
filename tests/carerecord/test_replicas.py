"""Issue 20: the record's entries read from a PostgreSQL streaming replica, everything the access decision reads
and every write on the primary (carerecord/replicas.py).

The router and the middleware are tested everywhere with stand-ins. The rest runs against a real hot standby
(`make replica`; .ci/run runs this file with DATABASE_REPLICA_URLS set): the standby replays the test database
like any other, so these tests commit (transaction=True), wait until the standby has replayed, and pause its
replay to make it lag on purpose — then revoke, object, stop sharing on the primary and look at the next page."""

import contextlib
import time

import pytest
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpResponse
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from carerecord import replicas
from patients.categories import Category
from patients.models import Condition, Patient
from sharing import actions
from sharing.models import Involvement, SharingAgreement
from tests import factories

with_replica = pytest.mark.skipif(
    not settings.DATABASE_REPLICA_URLS, reason="no streaming replica (make replica; DATABASE_REPLICA_URLS)"
)


def on_the_standby(test):
    """Runs against the real standby: committed data (it replays only what commits), both aliases allowed."""
    for mark in (
        with_replica,
        pytest.mark.replica,
        pytest.mark.django_db(transaction=True, databases=["default", "replica"]),
    ):
        test = mark(test)
    return test


# --- everywhere: the router and the middleware --------------------------------------------------------------------


@pytest.mark.hazard("H-03")
def test_the_router_sends_only_entries_and_only_when_the_request_may_read_a_replica(monkeypatch):
    monkeypatch.setattr(replicas, "usable_replica", lambda: "replica")
    router = replicas.ReplicaRouter()
    assert router.db_for_read(Condition) == DEFAULT_DB_ALIAS  # outside a GET: commands, feeds, writes
    token = replicas.READS.set(True)
    try:
        assert router.db_for_read(Condition) == "replica"
        for decision_data in (Patient, Involvement, SharingAgreement):
            assert router.db_for_read(decision_data) == DEFAULT_DB_ALIAS, decision_data
        monkeypatch.setattr(replicas, "usable_replica", lambda: None)  # none in bound: the primary
        assert router.db_for_read(Condition) == DEFAULT_DB_ALIAS
    finally:
        replicas.READS.reset(token)
    assert router.db_for_write(Condition) == DEFAULT_DB_ALIAS
    assert router.allow_migrate("replica", "patients") is False and router.allow_migrate(DEFAULT_DB_ALIAS, "patients")
    assert router.allow_relation(Condition(), Patient())  # read on either, the same rows


def test_the_entry_models_are_the_records_entries_and_nothing_the_decision_reads():
    labels = {model._meta.label_lower for model in replicas.entry_models()}
    assert {"patients.condition", "patients.medication", "patients.observation", "patients.letterattachment"} <= labels
    assert not labels & {"patients.patient", "sharing.involvement", "sharing.sharingagreement", "optout.objection"}
    assert all(label.startswith("patients.") for label in labels)


@pytest.mark.hazard("H-08")
def test_a_get_may_read_a_replica_until_its_reader_writes_then_holds_to_the_primary(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    seen = []

    def view(request):
        seen.append(replicas.READS.get())
        return HttpResponse(status=302 if request.method == "POST" else 200)

    middleware = replicas.ReplicaReadsMiddleware(view)
    requests = RequestFactory()
    mine = {"HTTP_COOKIE": f"{settings.SESSION_COOKIE_NAME}=session-one"}
    middleware(requests.get("/patients/x/", **mine))
    middleware(requests.options("/patients/x/", **mine))
    middleware(requests.post("/patients/x/report-problem/c-1/", **mine))
    middleware(requests.get("/patients/x/", **mine))  # held: what it just wrote is on the primary
    middleware(requests.get("/patients/x/", HTTP_AUTHORIZATION="Bearer someone-else"))
    assert seen == [True, False, False, False, True]
    assert replicas.READS.get() is False  # nothing outlives the request


def test_a_write_refused_holds_nothing(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    middleware = replicas.ReplicaReadsMiddleware(lambda request: HttpResponse(status=403))
    cookie = {"HTTP_COOKIE": f"{settings.SESSION_COOKIE_NAME}=session-two"}
    middleware(RequestFactory().post("/x/", **cookie))
    seen = []
    replicas.ReplicaReadsMiddleware(lambda request: seen.append(replicas.READS.get()) or HttpResponse())(
        RequestFactory().get("/x/", **cookie)
    )
    assert seen == [True]


# --- against the standby -------------------------------------------------------------------------------------------


@pytest.fixture
def standby(settings):
    """The `replica` alias pointed at the real standby (Django's test set-up mirrors it onto the primary), reading
    the test database there; replay resumed and health forgotten afterwards."""
    from environ import Env

    real = Env.db_url_config(settings.DATABASE_REPLICA_URLS[0])
    connection = connections["replica"]
    connection.close()
    mirrored = connection.settings_dict  # the primary's own dict: replaced, never changed
    connection.settings_dict = {
        **mirrored,
        "HOST": real["HOST"],
        "PORT": real["PORT"],
        "USER": real["USER"],
        "NAME": connections[DEFAULT_DB_ALIAS].settings_dict["NAME"],
    }
    replicas.forget()
    settings.REPLICA_LAG_CHECK_SECONDS = 0  # measured on every request: the tests move the lag themselves
    try:
        yield connection
    finally:
        with contextlib.suppress(Exception), connection.cursor() as cursor:
            cursor.execute("SELECT pg_wal_replay_resume()")
        connection.close()
        connection.settings_dict = mirrored
        replicas.forget()


def replayed(standby, seconds: float = 30) -> None:
    """Until the standby has replayed everything the primary has written so far."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        [position] = cursor.fetchone()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with standby.cursor() as cursor:
            cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [position])
            if cursor.fetchone()[0]:
                return
        time.sleep(0.05)
    raise AssertionError("the standby did not catch up")


@contextlib.contextmanager
def replay_paused(standby):
    with standby.cursor() as cursor:
        cursor.execute("SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        with standby.cursor() as cursor:
            cursor.execute("SELECT pg_wal_replay_resume()")


def page(client, patient, captured_on=("default", "replica"), category=None):
    url = reverse(f"record-{category.value}" if category else "record-summary", args=[patient.pk])
    with contextlib.ExitStack() as stack:
        captured = {alias: stack.enter_context(CaptureQueriesContext(connections[alias])) for alias in captured_on}
        response = client.get(url)
    return response, {alias: [q["sql"] for q in queries.captured_queries] for alias, queries in captured.items()}


@pytest.fixture
def record(patient, other_organisation, clinician, client):
    factories.ConditionFactory(patient=patient, source_organisation=other_organisation, name="Asthma")
    client.force_login(clinician)
    return patient


@pytest.mark.hazard("H-03")
@pytest.mark.hazard("H-02")
@on_the_standby
def test_the_entries_come_from_the_standby_and_the_decision_from_the_primary(standby, client, record):
    replayed(standby)
    response, queries = page(client, record)
    assert response.status_code == 200 and "Asthma" in response.content.decode()
    assert any("patients_condition" in sql for sql in queries["replica"])
    assert not any("patients_condition" in sql for sql in queries["default"])
    decision_tables = ("guardian_", "sharing_", "optout_", "directory_professional", 'patients_patient"')
    assert not [sql for sql in queries["replica"] if any(f'"{table}' in sql for table in decision_tables)]
    assert any('"decision_care_team"' in sql for sql in queries["default"])  # the patient with the decision's facts


@pytest.mark.hazard("H-03")
@on_the_standby
def test_an_ended_involvement_refuses_at_once_while_the_standby_has_not_replayed_it(
    standby, settings, client, record, ig_officer
):
    settings.REPLICA_MAX_LAG_SECONDS = 3600  # the standby stays "in bound" while paused: the decision must not care
    replayed(standby)
    with replay_paused(standby):
        actions.end_involvement(by=ig_officer, involvement=Involvement.objects.get(patient=record))
        response, _ = page(client, record)
    assert response.status_code == 403


@pytest.mark.hazard("H-03")
@pytest.mark.hazard("H-02")
@on_the_standby
def test_an_upheld_objection_narrows_at_once_while_the_standby_has_not_replayed_it(
    standby, settings, client, record, ig_officer
):
    from tests.sharing.test_coverage import upheld_objection

    settings.REPLICA_MAX_LAG_SECONDS = 3600
    replayed(standby)
    with replay_paused(standby):
        upheld_objection(record, ig_officer)
        response, queries = page(client, record, category=Category.CONDITIONS)
    assert response.status_code == 200 and "Asthma" not in response.content.decode()
    assert any("patients_condition" in sql for sql in queries["replica"])  # still read there, narrowed by the primary


@pytest.mark.hazard("H-03")
@pytest.mark.hazard("H-02")
@on_the_standby
def test_an_agreement_that_stops_sharing_narrows_at_once_while_the_standby_has_not_replayed_it(
    standby, settings, client, record, other_organisation, ig_officer
):
    settings.REPLICA_MAX_LAG_SECONDS = 3600
    replayed(standby)
    with replay_paused(standby):
        actions.set_sharing(by=ig_officer, organisation=other_organisation, category=Category.CONDITIONS, shares=False)
        response, queries = page(client, record, category=Category.CONDITIONS)
    assert response.status_code == 200 and "Asthma" not in response.content.decode()
    assert any("patients_condition" in sql for sql in queries["replica"])


@pytest.mark.hazard("H-08")
@on_the_standby
def test_a_standby_past_the_lag_bound_is_not_used_and_the_new_entry_shows(standby, settings, client, record):
    settings.REPLICA_MAX_LAG_SECONDS = 0.5
    replayed(standby)
    with replay_paused(standby):
        factories.ConditionFactory(patient=record, source_organisation=record.registered_gp, name="Fractured wrist")
        time.sleep(1)  # the standby's last replayed transaction is now older than the bound
        response, queries = page(client, record, category=Category.CONDITIONS)
        why = replicas.health("replica").why
    assert "Fractured wrist" in response.content.decode()
    assert not any("patients_condition" in sql for sql in queries["replica"])
    assert "behind" in why


@pytest.mark.hazard("H-08")
@on_the_standby
def test_after_writing_the_same_session_reads_the_primary(standby, settings, client, record):
    settings.REPLICA_MAX_LAG_SECONDS = 3600
    condition = Condition.objects.get(patient=record)
    replayed(standby)
    from sharing.problems import entry_name

    url = reverse("record-report-problem", args=[record.pk, entry_name(condition)])
    assert client.post(url, {"what_is_wrong": "The onset date is ten years out."}).status_code == 200
    response, queries = page(client, record)
    assert response.status_code == 200 and not any("patients_condition" in sql for sql in queries["replica"])


@on_the_standby
def test_an_unreachable_standby_or_one_that_is_not_a_standby_is_not_used(standby, client, record):
    from bench.ports import free_port

    primary_port = connections[DEFAULT_DB_ALIAS].settings_dict["PORT"]
    for port, why in ((free_port(), "unreachable"), (primary_port, "not a standby")):
        standby.close()
        standby.settings_dict = {**standby.settings_dict, "PORT": port, "HOST": "127.0.0.1"}
        replicas.forget()
        response, _ = page(client, record, captured_on=("default",))
        assert response.status_code == 200 and "Asthma" in response.content.decode()
        assert why in replicas.health("replica").why


@on_the_standby
def test_a_fhir_search_reads_the_standby_too(standby, record, clinician, client):
    from directory.actions import create_api_token

    _, secret = create_api_token(by=None, name="Clinical viewer", user=clinician)
    replayed(standby)
    with CaptureQueriesContext(standby) as on_standby:
        response = client.get(f"/fhir/Condition?patient={record.pk}", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200 and response.json()["total"] == 1
    assert any("patients_condition" in query["sql"] for query in on_standby.captured_queries)
