"""Settings for carerecord, all read from the environment (see README and .env.example).

One file on purpose: development and production differ only in environment values. Anything unsafe in
production (DEBUG, a development SECRET_KEY, a per-process cache, email that goes nowhere) has to be asked for
explicitly; `env()` raises ImproperlyConfigured when a required value is missing, and so do the checks below
when DEBUG is off, so a misconfigured server fails at start-up (gunicorn and every manage.py command alike).
"""

from pathlib import Path

import environ
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env (copied from .env.example by `make`) fills in what the real environment does not set.
environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY")
if not DEBUG and SECRET_KEY.startswith("django-insecure"):
    raise environ.ImproperlyConfigured("Set a real SECRET_KEY when DEBUG is off.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Behind the documented TLS-terminating load balancer: its X-Forwarded-Proto, X-Forwarded-For and X-Request-ID
# are trusted, and nothing else's. TRUSTED_PROXY_COUNT proxies append to X-Forwarded-For (see
# carerecord/client_address.py, the one place the client's address is read).
BEHIND_PROXY = env.bool("BEHIND_PROXY", default=False)
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1) if BEHIND_PROXY else 0
if TRUSTED_PROXY_COUNT < 0:
    raise environ.ImproperlyConfigured("TRUSTED_PROXY_COUNT cannot be negative.")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "guardian",
    "django_htmx",
    "csp",
    "pgtrigger",
    "carerecord",
    # Ours, lowest layer first (imports point down only: see pyproject.toml's import-linter contracts).
    "audit",
    "directory",
    "patients",
    "optout",
    "sharing",
    "portal",
    "fhirapi",
    "feeds",
    "identity",
    "bulk",
]
# The synthetic demo (seed_demo, demo_totp) is not installed in production unless asked for.
if env.bool("DEMO", default=DEBUG):
    INSTALLED_APPS.append("demo")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "carerecord.middleware.RequestIdMiddleware",
    "carerecord.metrics.MetricsMiddleware",
    "carerecord.middleware.RejectNulMiddleware",
    "carerecord.middleware.NoStoreMiddleware",
    "carerecord.middleware.TokenRequestMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "directory.profiles.SelectedRoleMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "carerecord.middleware.SessionLimitsMiddleware",
    "carerecord.middleware.RequireTOTPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "carerecord.urls"
WSGI_APPLICATION = "carerecord.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "carerecord.context_processors.service",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
# A restarted database must not leave dead persistent connections behind.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Server-side parameter binding: psycopg prepares a statement run 5 times on a connection, so PostgreSQL plans
# each of the ORM's query shapes once per connection, not on every request (issue 19: planning the access
# decision's query took 2-5 ms, running it 0.3). DB_PREPARED=0 turns it off (e.g. behind a pooler in transaction
# mode that cannot carry prepared statements).
# Behind PgBouncer in transaction mode (DATABASE_POOLER=pgbouncer; issue 20) each transaction may get another server
# connection, so nothing that outlives a transaction on one may be used: no server-side cursors, no prepared
# statements (PgBouncer 1.18, Debian 12's, cannot carry them). Advisory locks are all transaction-scoped already.
DATABASE_POOLER = env("DATABASE_POOLER", default="")
if DATABASE_POOLER == "pgbouncer":
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
if (
    DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    and env.bool("DB_PREPARED", default=True)
    and DATABASE_POOLER != "pgbouncer"
):
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update(server_side_binding=True, prepare_threshold=5)
# Read replicas (issue 20, carerecord/replicas.py): PostgreSQL hot standbys the record's entries may be read from
# while their replay lag is within REPLICA_MAX_LAG_SECONDS; the access decision and every write stay on the primary.
DATABASE_REPLICA_URLS = env.list("DATABASE_REPLICA_URLS", default=[])
REPLICA_MAX_LAG_SECONDS = env.float("REPLICA_MAX_LAG_SECONDS", default=5)
REPLICA_LAG_CHECK_SECONDS = env.float("REPLICA_LAG_CHECK_SECONDS", default=1)
for number, url in enumerate(DATABASE_REPLICA_URLS, 1):  # pragma: postgresql only
    replica = env.db_url_config(url)
    if replica["ENGINE"] != "django.db.backends.postgresql":
        raise environ.ImproperlyConfigured("DATABASE_REPLICA_URLS must name PostgreSQL standbys.")
    replica.update(
        CONN_MAX_AGE=DATABASES["default"]["CONN_MAX_AGE"],
        CONN_HEALTH_CHECKS=True,
        OPTIONS=dict(DATABASES["default"].get("OPTIONS", {})),
        # Tests: the replica alias is the test database itself; tests/carerecord/test_replicas.py points it at
        # the real standby, which replays the test database like any other.
        TEST={"MIRROR": "default"},
    )
    DATABASES["replica" if len(DATABASE_REPLICA_URLS) == 1 else f"replica_{number}"] = replica
DATABASE_ROUTERS = ["carerecord.replicas.ReplicaRouter"] if DATABASE_REPLICA_URLS else []
if DATABASE_REPLICA_URLS:  # pragma: postgresql only
    after_metrics = MIDDLEWARE.index("carerecord.metrics.MetricsMiddleware") + 1
    MIDDLEWARE.insert(after_metrics, "carerecord.replicas.ReplicaReadsMiddleware")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "account_login"

# django-allauth: accounts are provisioned by IG in admin; people sign in with their email address.
ACCOUNT_ADAPTER = "identity.accounts.SignInAccountAdapter"  # directory.adapters' rules + identity.stages
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_PREVENT_ENUMERATION = True

# Multi-factor: every signed-in user must have TOTP (with recovery codes) before using the service.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env("SERVICE_NAME", default="London Shared Care Record")
# Repeated failed sign-ins lock the account out for a while (allauth rate limits; shared via CACHES).
ACCOUNT_RATE_LIMITS = {
    "login_failed": env("LOGIN_FAILED_RATE_LIMIT", default="20/m/ip,5/15m/key"),
}
# allauth's "ip" is the client's address as carerecord.client_address reads it: X-Forwarded-For only behind
# the proxy, that many entries from the right.
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT

# Sessions: idle timeout (renewed by use, at most once a minute) and an absolute age, whichever comes first.
# Sessions in the shared cache with the database behind (issue 20): any instance reads them, a cache restart signs
# nobody out (a miss reads the row), and ending them goes through the store, which removes both
# (directory.actions._delete_sessions).
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_IDLE_MINUTES = env.int("SESSION_IDLE_MINUTES", default=15)
SESSION_MAX_HOURS = env.float("SESSION_MAX_HOURS", default=12)
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60
# Idle expiry is renewed when the session is saved: by SessionLimitsMiddleware at most once a minute.
SESSION_RENEW_SECONDS = env.int("SESSION_RENEW_SECONDS", default=60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
# django-ratelimit (the opt-out form) keys its "ip" by the same client address as allauth, on this cache.
RATELIMIT_IP_META_KEY = "carerecord.client_address.client_address"
RATELIMIT_USE_CACHE = "default"

# django-guardian: object permissions live on direct-foreign-key tables; no anonymous user row.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Europe/London"
USE_I18N = True
USE_TZ = True
# 24-hour times and one date format everywhere, admin included (carerecord/formats/en_GB/formats.py).
FORMAT_MODULE_PATH = ["carerecord.formats"]

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env.bool("STATIC_MANIFEST", default=not DEBUG)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="carerecord@localhost")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# For django.core.mail.backends.filebased.EmailBackend: the folder each message is written to.
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=None)

# Production needs what is shared between processes and reaches people. A per-process cache gives each gunicorn
# worker its own sign-in, opt-out and TOTP-replay counters (a limit of 5 becomes 5 per worker, and a TOTP code can
# be replayed on another worker); the console and in-memory email backends drop the letters patients are owed.
PER_PROCESS_CACHES = {"django.core.cache.backends.locmem.LocMemCache", "django.core.cache.backends.dummy.DummyCache"}
NOWHERE_EMAIL_BACKENDS = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
}
if not DEBUG and CACHES["default"]["BACKEND"] in PER_PROCESS_CACHES:
    raise environ.ImproperlyConfigured(
        "Set CACHE_URL to a shared cache (Redis, e.g. redis://127.0.0.1:6379/1) when DEBUG is off: "
        f"{CACHES['default']['BACKEND']} is per process, so rate limits and TOTP replay protection would not hold."
    )
if not DEBUG and EMAIL_BACKEND in NOWHERE_EMAIL_BACKENDS:
    raise environ.ImproperlyConfigured(
        "Set EMAIL_BACKEND to one that delivers (django.core.mail.backends.smtp.EmailBackend with EMAIL_HOST, or "
        f"the filebased backend with EMAIL_FILE_PATH) when DEBUG is off: {EMAIL_BACKEND} sends nothing."
    )
if EMAIL_BACKEND == "django.core.mail.backends.filebased.EmailBackend" and not EMAIL_FILE_PATH:
    raise environ.ImproperlyConfigured("The filebased email backend needs EMAIL_FILE_PATH (a folder).")

# Security headers and cookies: strict by default whenever DEBUG is off.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# No inline script or style anywhere: pages work without JavaScript, and what there is comes from static/.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "object-src": [NONE],
    }
}

# The record: how many items of each category the summary shows (alerts, allergies, current medications and
# active problems are always shown in full), and page sizes for the full lists.
RECORD_SUMMARY_ITEMS = env.int("RECORD_SUMMARY_ITEMS", default=5)
RECORD_PAGE_SIZE = env.int("RECORD_PAGE_SIZE", default=25)
# The summary lists every current medication, then those stopped or completed within this many months.
RECORD_STOPPED_MEDICATION_MONTHS = env.int("RECORD_STOPPED_MEDICATION_MONTHS", default=3)
SEARCH_MAX_RESULTS = env.int("SEARCH_MAX_RESULTS", default=20)

# Logs never hold query strings (they may carry NHS numbers: GET /fhir/Patient?identifier=...). django.request
# logs the path alone; runserver's request lines (django.server) are cut at the "?" by a filter. gunicorn's
# access log is configured in the README's production recipe without the query string.
# "plain" lines for people, or "json" (one object a line, with the request id) for a log store.
LOG_FORMAT = "json" if env("LOG_FORMAT", default="plain") == "json" else "plain"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "no_query_string": {"()": "carerecord.logs.WithoutQueryString"},
        "no_patient_ids": {"()": "carerecord.logs.WithoutPatientIdentifiers"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "server": {"format": "[%(asctime)s] %(message)s"},
        "json": {"()": "carerecord.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["no_query_string", "no_patient_ids"],
        },
        "server": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "server",
            "filters": ["no_query_string", "no_patient_ids"],
        },
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.server": {"handlers": ["server"], "level": "INFO", "propagate": False},
        # One line per request from carerecord.metrics (pattern name, status, time; never the path): production's
        # request log. Off by default in development and tests, where runserver logs requests already.
        "carerecord.requests": {"level": env("REQUEST_LOG_LEVEL", default="INFO" if not DEBUG else "WARNING")},
    },
}

# Prometheus (carerecord/metrics.py): /metrics answers only a scraper sending this token; unset, it is not there.
METRICS_TOKEN = env("METRICS_TOKEN", default="")

SERVICE_NAME = env("SERVICE_NAME", default="London Shared Care Record")

# Emergency ("break glass") access lasts this long for one patient, then ends by itself.
BREAK_GLASS_HOURS = env.float("BREAK_GLASS_HOURS", default=4)

# Public opt-out form: submissions allowed from one client address (carerecord.client_address) per hour.
OPTOUT_REQUESTS_PER_HOUR = env.int("OPTOUT_REQUESTS_PER_HOUR", default=5)
# IG's response target for an objection, in calendar days from receipt (the public pages promise it; the queue
# and the dashboard count against it).
OPTOUT_RESPONSE_DAYS = env.int("OPTOUT_RESPONSE_DAYS", default=30)

# FHIR: organisations created from an unknown ODS code are placed in this region until IG corrects them,
# and partners' transaction bundles may be larger than Django's 2.5 MB default.
FHIR_DEFAULT_REGION = env("FHIR_DEFAULT_REGION", default="NCL")
# Check every FHIR JSON answer against what fhir.resources' R4B model writes for it (fhirapi.resource): on in the
# test suite; off in production, where the answer is written straight from what was built or kept (issue 19).
FHIR_VERIFY_OUTPUT = env.bool("FHIR_VERIFY_OUTPUT", default=False)
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=20 * 1024 * 1024)
# A document's content (a PDF letter, inline or as a Binary) is kept up to this size; a larger one refuses its
# DocumentReference with an OperationOutcome. Keep it under three quarters of the body limit (base64).
FHIR_ATTACHMENT_MAX_BYTES = env.int("FHIR_ATTACHMENT_MAX_BYTES", default=10 * 1024 * 1024)

# Personal (reading) API tokens expire after this many hours unless IG set another lifetime.
PERSONAL_TOKEN_HOURS = env.int("PERSONAL_TOKEN_HOURS", default=8)
# A relationship a partner system asserts (FHIR CareTeam) is due for IG review after this many days.
INVOLVEMENT_REVIEW_DAYS = env.int("INVOLVEMENT_REVIEW_DAYS", default=365)

# HL7 v2 listener (manage.py hl7_listen): a frame begun must be completed within this many seconds (a stalled or
# truncated frame closes its connection; an idle connection between frames is never timed out), and a message
# larger than this is refused (AR) and its connection closed.
HL7_FRAME_TIMEOUT_SECONDS = env.float("HL7_FRAME_TIMEOUT_SECONDS", default=30)
HL7_MAX_MESSAGE_BYTES = env.int("HL7_MAX_MESSAGE_BYTES", default=1024 * 1024)
# HL7 v2 messages are kept as received; their raw text (patient data) is cleared after this many days by
# `manage.py hl7_purge` (run it daily from cron). The row and what became of it stay; a held message's raw never goes.
HL7_RAW_RETENTION_DAYS = env.int("HL7_RAW_RETENTION_DAYS", default=90)
# The audit trail stays in the live database for at least this many months; older months may be archived
# (`audit_partitions --archive`, docs/ops/audit-partitions.md). Set it to what your retention schedule says.
AUDIT_ONLINE_MONTHS = env.int("AUDIT_ONLINE_MONTHS", default=24)

# Bulk loads through a queue (bulk/, docs/ops/bulk-loads.md): Celery on Redis. Off unless CELERY_BROKER_URL is set
# (e.g. redis://127.0.0.1:6379/2): then POST [base] with `Prefer: respond-async` and `import_fhir --queue` /
# `hl7_replay --queue` go to a worker (`make worker`); without it everything stays synchronous.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
BULK_QUEUE = env("BULK_QUEUE", default="bulk")
CELERY_TASK_DEFAULT_QUEUE = BULK_QUEUE
CELERY_TASK_IGNORE_RESULT = True  # the job row is the result (bulk.models.Job): no result backend
CELERY_TASK_ACKS_LATE = True  # a worker that dies mid-job leaves its message to be delivered again
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # long jobs: a worker takes one at a time
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # our logging (no patient identifiers) stays
# Redis gives an unacknowledged message to another worker after this long: longer than any job runs.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("BULK_VISIBILITY_SECONDS", default=4 * 3600)}
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5}
BULK_MAX_ATTEMPTS = env.int("BULK_MAX_ATTEMPTS", default=5)
BULK_RETRY_BASE_SECONDS = env.float("BULK_RETRY_BASE_SECONDS", default=5)
BULK_RETRY_MAX_SECONDS = env.float("BULK_RETRY_MAX_SECONDS", default=600)
# A waiting job whose message was sent this long ago is sent again (`bulk_jobs --dispatch`, and every worker at
# start); a running job silent this long is taken as its worker's death.
BULK_REDISPATCH_SECONDS = env.int("BULK_REDISPATCH_SECONDS", default=120)
BULK_STALE_SECONDS = env.int("BULK_STALE_SECONDS", default=1800)

# Single sign-on (issue 16, docs/sign-in.md): OpenID Connect with CIS2-shaped claims, through django-allauth's
# OpenID Connect provider (identity.provider extends it: private-key JWT client authentication, acr, RP-initiated
# sign-out). Off unless SSO_ISSUER is set; the local sign-in stays (IG switch it off per organisation).
SSO_ISSUER = env(
    "SSO_ISSUER", default=""
)  # e.g. https://am.nhsint.auth-ptl.cis2.spineservices.nhs.uk/openam/oauth2/realms/root/realms/NHSIdentity/realms/Healthcare
SSO_NAME = env("SSO_NAME", default="NHS Care Identity")
SSO_CLIENT_ID = env("SSO_CLIENT_ID", default="")
SSO_CLIENT_SECRET = env("SSO_CLIENT_SECRET", default="")
# client_secret_basic, client_secret_post or private_key_jwt (CIS2's recommendation: a signed client assertion)
SSO_CLIENT_AUTH = env("SSO_CLIENT_AUTH", default="client_secret_basic")
SSO_PRIVATE_KEY_FILE = env("SSO_PRIVATE_KEY_FILE", default="")  # PEM, for private_key_jwt
SSO_PRIVATE_KEY_ID = env("SSO_PRIVATE_KEY_ID", default="")  # the kid the provider knows the key by
SSO_SCOPES = env.list("SSO_SCOPES", default=["openid", "profile", "email", "nationalrbacaccess", "selectedrole"])
SSO_ACR_VALUES = env("SSO_ACR_VALUES", default="")  # asked for at sign-in, when set (e.g. AAL3_ANY)
# A sign-in whose acr is one of these (a smartcard) needs no authenticator app code here; any other needs TOTP.
SSO_STRONG_ACR = env.list("SSO_STRONG_ACR", default=["AAL3_ANY", "AAL3"])
# Claim names (identity.claims): CIS2's by default.
SSO_CLAIM_ROLES = env("SSO_CLAIM_ROLES", default="nhsid_nrbac_roles")
SSO_CLAIM_SELECTED_ROLE = env("SSO_CLAIM_SELECTED_ROLE", default="selected_roleid")
# National RBAC job role codes (the R code of role_code "S8000:G8000:R8000") -> carerecord roles. A role not here
# is refused at sign-in. JSON to replace it whole.
SSO_ROLE_MAP = env.json(
    "SSO_ROLE_MAP",
    default={
        "R8000": "doctor",
        "R0260": "gp",
        "R8001": "nurse",
        "R8003": "therapist",
        "R1290": "paramedic",
        "R8008": "pharmacist",
        "R0570": "social-worker",
        "R0001": "ig-officer",
        "R5105": "ig-officer",
    },
)
SOCIALACCOUNT_ADAPTER = "identity.adapters.SingleSignOnAdapter"
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False  # a subject links an account, never an email address
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"
SOCIALACCOUNT_AUTO_SIGNUP = False
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_PROVIDERS = {
    "openid_connect": {
        "provider_class": "identity.provider.CareIdentityProvider",
        "OAUTH_PKCE_ENABLED": True,
        "APPS": (
            [
                {
                    "provider_id": "cis2",
                    "name": SSO_NAME,
                    "client_id": SSO_CLIENT_ID,
                    "secret": SSO_CLIENT_SECRET,
                    "settings": {
                        "server_url": SSO_ISSUER,
                        "token_auth_method": SSO_CLIENT_AUTH,
                        "fetch_userinfo": True,
                        "oauth_pkce_enabled": True,
                        "scope": SSO_SCOPES,
                        "auth_params": {"acr_values": SSO_ACR_VALUES} if SSO_ACR_VALUES else {},
                    },
                }
            ]
            if SSO_ISSUER
            else []
        ),
    }
}

# Launch in context (identity.launch): a partner's token must name this service as `aud` (by default the
# absolute URL of /launch/ as the request reached it) and expire within LAUNCH_MAX_SECONDS of being issued.
LAUNCH_AUDIENCE = env("LAUNCH_AUDIENCE", default="")
LAUNCH_MAX_SECONDS = env.int("LAUNCH_MAX_SECONDS", default=60)
