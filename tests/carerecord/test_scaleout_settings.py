"""Issue 20: what lets more than one app process serve the same people — sessions shared through the cache with
the database behind (a cache restart signs nobody out; ending a session ends it everywhere at once) — and the
settings PgBouncer in transaction mode needs."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from directory import actions
from tests.carerecord.test_settings import PRODUCTION, manage

pytestmark = pytest.mark.django_db


def test_sessions_are_cached_with_the_database_behind(settings):
    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.cached_db"


def test_a_cache_restart_signs_nobody_out(client, clinician, patient):
    client.force_login(clinician)
    assert client.get(reverse("record-summary", args=[patient.pk])).status_code == 200
    cache.clear()  # Redis restarted: it kept nothing
    page = client.get(reverse("record-summary", args=[patient.pk]))
    assert page.status_code == 200 and page.wsgi_request.user == clinician


def test_deactivating_an_account_ends_its_cached_session_at_once(client, clinician, patient, ig_user):
    client.force_login(clinician)
    assert client.get(reverse("record-summary", args=[patient.pk])).status_code == 200  # cached now
    actions.deactivate_user(by=ig_user, user=clinician)  # its sessions end (directory.signals)
    page = client.get(reverse("record-summary", args=[patient.pk]))
    assert page.status_code == 302 and "/accounts/login/" in page["Location"]


def _database_settings(**env):
    shown = manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; d = settings.DATABASES['default'];"
        "print(d.get('DISABLE_SERVER_SIDE_CURSORS', False), d.get('OPTIONS', {}).get('server_side_binding', False))",
        env={**PRODUCTION, "DATABASE_URL": "postgres://root@127.0.0.1:6432/carerecord", **env},
    )
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.split()


def test_behind_pgbouncer_no_server_side_cursors_and_no_prepared_statements():
    assert _database_settings() == ["False", "True"]  # straight to PostgreSQL: statements prepared
    assert _database_settings(DATABASE_POOLER="pgbouncer") == ["True", "False"]
