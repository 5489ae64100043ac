"""H-13, the service unavailable at the point of care: the load balancer's health check fails when the database
does not answer, and the server-error page, needing nothing that may have failed, says what to do instead."""

import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.views.defaults import server_error


@pytest.mark.hazard("H-13")
@pytest.mark.django_db
def test_the_health_check_fails_when_the_database_does_not_answer(monkeypatch):
    def down():
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", down)
    response = Client(raise_request_exception=False).get("/healthz")
    assert response.status_code == 500 and response.content != b"ok"


@pytest.mark.hazard("H-13")
def test_the_error_page_needs_no_database_and_says_to_contact_the_patients_carers(rf):
    """No django_db mark: touching the database here would fail the test."""
    response = server_error(rf.get("/patients/"))
    body = response.content.decode()
    assert response.status_code == 500
    assert "Sorry, there is a problem with the service" in body
    assert "contact the organisation caring for them directly" in body


@pytest.mark.hazard("H-13")
def test_database_connections_are_checked_before_reuse(settings):
    """A connection kept across requests (CONN_MAX_AGE) is tested first, so after a database restart the next
    request reconnects rather than failing; `make loadtest FAULT=1` shows the recovery end to end."""
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True
