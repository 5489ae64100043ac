import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# As production has them: a shared cache (Redis; nothing here connects to it) and email that is delivered
# (written to files here), since with DEBUG off settings refuse a per-process cache or the console backend.
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "a-production-like-secret-key-that-is-long-and-random-9f8e7d6c5b4a3210",
    "ALLOWED_HOSTS": "carerecord.example.nhs.uk",
    "DATABASE_URL": "sqlite:////tmp/carerecord-deploy-check.sqlite3",
    "CACHE_URL": "redis://127.0.0.1:6379/15",
    "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
    "EMAIL_FILE_PATH": "/tmp/carerecord-deploy-check-mail",
}


def manage(*args, env):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        # The browser tests' DJANGO_ALLOW_ASYNC_UNSAFE must not leak into a production-like check.
        env={**{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_check_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_demo_is_not_installed_in_production():
    """seed_demo and demo_totp do not exist where DEBUG is off (unless DEMO=1 asks for them)."""
    result = manage("seed_demo", "--patients", "1", env=PRODUCTION)
    assert result.returncode != 0
    assert "Unknown command: 'seed_demo'" in result.stderr
    assert (
        "demo"
        in manage(
            "shell",
            "-c",
            "from django.conf import settings; print(settings.INSTALLED_APPS)",
            env={**PRODUCTION, "DEMO": "1"},
        ).stdout
    )


def test_a_development_secret_key_is_refused_when_debug_is_off():
    result = manage("check", env={**PRODUCTION, "SECRET_KEY": "django-insecure-development-only"})
    assert result.returncode != 0
    assert "Set a real SECRET_KEY" in result.stderr


@pytest.mark.hazard("H-13")
@pytest.mark.django_db
def test_health_check_needs_no_sign_in(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"


@pytest.mark.django_db
def test_every_response_carries_a_request_id(client, settings):
    assert len(client.get("/healthz")["X-Request-ID"]) == 32
    settings.BEHIND_PROXY = True  # only the load balancer's id is kept (see test_hardening)
    assert client.get("/healthz", headers={"X-Request-ID": "lb-abc12345"})["X-Request-ID"] == "lb-abc12345"
    assert client.get("/healthz", headers={"X-Request-ID": "bad id; drop"})["X-Request-ID"] != "bad id; drop"


@pytest.mark.django_db
def test_signed_out_pages_redirect_to_sign_in(client):
    # Not "/": signed out, it is the public landing page (tests/optout/test_public_pages.py).
    for url in ["/patients/", "/patients/search/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    assert client.get("/accounts/login/").status_code == 200


@pytest.mark.django_db
def test_there_is_no_public_sign_up(client):
    """allauth answers its sign-up URL with a "sign up closed" page (200), never a form."""
    response = client.get("/accounts/signup/")
    assert response.status_code == 200
    assert b'name="password1"' not in response.content
    assert b"You cannot create an account here" in response.content
