"""Scales, the bench database's address, and production-like settings for measuring.

Everything runs against a database of its own per scale (never the test or development database), with
DEBUG off: the numbers must be those of the code as it is served, not of Django's debug machinery.
"""

import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Scale:
    name: str
    patients: int
    practices: int  # GP practices (each ~5,000 registered patients at default and large, as in London)
    acute: int  # acute hospital trusts
    mental_health: int
    community: int
    social_care: int  # borough social care departments
    hospices: int


SCALES = {
    "small": Scale("small", 10_000, 4, 3, 2, 2, 3, 1),
    "default": Scale("default", 100_000, 20, 8, 3, 4, 8, 2),
    "large": Scale("large", 1_000_000, 200, 17, 9, 12, 32, 6),
}

# The one password every bench professional has (synthetic data, a database of its own), so the load test
# can sign any of them in; their TOTP secrets derive from their email (see `totp_secret`).
BENCH_PASSWORD = "bench-clinician-password-2026"  # noqa: S105 - synthetic bench accounts only


def scale_from_env() -> Scale:
    name = os.environ.get("BENCH_SCALE", "default") or "default"
    if name not in SCALES:
        raise SystemExit(f"BENCH_SCALE must be one of {', '.join(SCALES)}, not {name!r}")
    return SCALES[name]


def server_url() -> str:
    """The PostgreSQL server the bench databases live on (loopback, trust auth for root on these machines)."""
    return os.environ.get("BENCH_PG", "postgres://root@127.0.0.1:5432").rstrip("/")


def database_name(scale: Scale) -> str:
    return f"carerecord_bench_{scale.name}"


def database_url(scale: Scale) -> str:
    return f"{server_url()}/{database_name(scale)}"


# Production needs a cache every process shares and email that is delivered (settings refuse anything else with
# DEBUG off): the bench's own Redis database, and messages written to files.
BENCH_CACHE_URL = "redis://127.0.0.1:6379/13"
BENCH_MAIL = str(Path(tempfile.gettempdir()) / "carerecord-bench-mail")


def production_environment(scale: Scale) -> dict[str, str]:
    """Settings as a production server would have them, less TLS (plain HTTP on loopback or in-process)."""
    return {
        "CACHE_URL": os.environ.get("BENCH_CACHE_URL") or BENCH_CACHE_URL,
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": BENCH_MAIL,
        "DATABASE_URL": database_url(scale),
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
        "SECURE_HSTS_PRELOAD": "0",
        # The per-request log line (carerecord.metrics) would print thousands of lines a run; its cost is a
        # log call, measured as part of the middleware with the line filtered out.
        "REQUEST_LOG_LEVEL": "WARNING",
        "STATIC_MANIFEST": "0",
        "LOG_LEVEL": "WARNING",
    }


def setup_django(scale: Scale) -> None:
    """Point this process at the bench database with production settings, then start Django."""
    os.environ.update(production_environment(scale))
    os.environ["DJANGO_SETTINGS_MODULE"] = "carerecord.settings"
    import django

    django.setup()
