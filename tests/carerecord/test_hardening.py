"""Issue 11's findings 5 (rate limits behind the proxy), 10 (responses and logs), 11 (the production recipe) and
12 (email), each named after its finding. Finding 9 (bad input is never a 500) is in tests/fhirapi and
tests/patients; fuzzing in tests/test_fuzz.py."""

import logging
import re
from pathlib import Path

import pytest
from allauth.core.internal.httpkit import get_client_ip
from django.test import Client, RequestFactory
from django.urls import reverse

from carerecord.client_address import UNKNOWN, client_address
from carerecord.logs import WithoutQueryString
from directory.actions import create_api_token
from tests.optout.test_public_form import submit

from .test_settings import PRODUCTION, ROOT, manage

PROXY = "10.0.0.2"  # the load balancer, as the app sees it


# Finding 5: rate limits count the client behind the documented proxy, on a cache every process shares.


@pytest.mark.django_db
def test_finding_5_behind_the_proxy_one_client_over_the_limit_does_not_lock_out_the_next(settings):
    """Behind the load balancer every request comes from its address: the opt-out limit used to count the proxy,
    so one busy client refused every other patient in the city. It counts X-Forwarded-For's client now."""
    settings.BEHIND_PROXY, settings.TRUSTED_PROXY_COUNT, settings.OPTOUT_REQUESTS_PER_HOUR = True, 1, 2
    busy = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.7")
    for family_name in ("First", "Second", "Third"):
        submit(busy, family_name=family_name)
    assert submit(Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.8")).status_code == 302


@pytest.mark.django_db
def test_a_client_cannot_escape_the_limit_by_writing_its_own_forwarded_for(settings):
    """Behind the proxy only the entry the proxy appended counts; without a proxy the header is not read."""
    settings.BEHIND_PROXY, settings.TRUSTED_PROXY_COUNT, settings.OPTOUT_REQUESTS_PER_HOUR = True, 1, 2
    for n in range(2):
        submit(Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}, 203.0.113.7"), family_name=f"N{n}")
    spoofing = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.99, 203.0.113.7")
    assert submit(spoofing, family_name="Third").status_code == 429


@pytest.mark.django_db
def test_without_a_proxy_forwarded_for_is_ignored(settings):
    settings.BEHIND_PROXY, settings.OPTOUT_REQUESTS_PER_HOUR = False, 1
    submit(Client(REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.1"), family_name="First")
    again = Client(REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.2")
    assert submit(again, family_name="Second").status_code == 429


@pytest.mark.parametrize(
    ("behind_proxy", "count", "forwarded", "expected"),
    [
        (False, 0, "198.51.100.1", "203.0.113.7"),  # no proxy: the header is anyone's
        (True, 1, "198.51.100.1", "198.51.100.1"),
        (True, 1, "192.0.2.66, 198.51.100.1", "198.51.100.1"),  # what the client wrote is ignored
        (True, 2, "192.0.2.66, 198.51.100.1, 10.1.1.1", "198.51.100.1"),
        (True, 1, "", "203.0.113.7"),  # straight to the app: its own address
        (True, 1, " 2001:DB8::1 ", "2001:db8::1"),
    ],
)
def test_the_client_address_is_read_one_way_and_allauth_reads_the_same(
    settings, behind_proxy, count, forwarded, expected
):
    settings.BEHIND_PROXY, settings.TRUSTED_PROXY_COUNT = behind_proxy, count
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = count if behind_proxy else 0
    request = RequestFactory().get("/", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected
    assert get_client_ip(request) == expected  # allauth's sign-in limits count the same address


def test_a_forwarded_for_that_is_not_an_address_falls_back_to_the_connection(settings):
    settings.BEHIND_PROXY, settings.TRUSTED_PROXY_COUNT = True, 2
    short = RequestFactory().get("/", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert client_address(short) == "203.0.113.7"  # fewer entries than proxies: it did not come through them
    garbled = RequestFactory().get("/", REMOTE_ADDR="", HTTP_X_FORWARDED_FOR="x, y")
    assert client_address(garbled) == UNKNOWN


def test_finding_5_allauth_trusts_as_many_proxies_as_the_client_address_does():
    """allauth's own setting is derived from BEHIND_PROXY and TRUSTED_PROXY_COUNT (default 1 behind a proxy)."""
    show = "from django.conf import settings as s; print(s.ALLAUTH_TRUSTED_PROXY_COUNT, s.TRUSTED_PROXY_COUNT)"
    shell = ("shell", "--verbosity", "0", "-c", show)
    behind = manage(*shell, env={**PRODUCTION, "BEHIND_PROXY": "1"})
    assert behind.stdout.split() == ["1", "1"], behind.stderr
    direct = manage(*shell, env={**PRODUCTION, "BEHIND_PROXY": "0", "TRUSTED_PROXY_COUNT": "3"})
    assert direct.stdout.split() == ["0", "0"], direct.stderr


def test_finding_5_debug_off_refuses_a_per_process_cache():
    """With several gunicorn workers a locmem cache gives each its own counters: refused at start-up."""
    result = manage("check", env={**PRODUCTION, "CACHE_URL": "locmemcache://"})
    assert result.returncode == 1
    assert "Set CACHE_URL to a shared cache" in result.stderr


# Finding 12: email that goes nowhere is refused in production.


@pytest.mark.parametrize("backend", ["console", "locmem"])
def test_finding_12_debug_off_refuses_email_that_goes_nowhere(backend):
    result = manage("check", env={**PRODUCTION, "EMAIL_BACKEND": f"django.core.mail.backends.{backend}.EmailBackend"})
    assert result.returncode == 1
    assert "Set EMAIL_BACKEND to one that delivers" in result.stderr


def test_finding_12_the_default_email_backend_is_refused_when_debug_is_off():
    result = manage("check", env={key: value for key, value in PRODUCTION.items() if key != "EMAIL_BACKEND"})
    assert result.returncode == 1
    assert "console.EmailBackend sends nothing" in result.stderr


# Finding 10: patient data is not cached, request ids come only from the load balancer, logs hold no queries.


@pytest.fixture
def pages_with_patient_data(client, clinician, patient, full_record, ig_officer):
    def fetch(name):
        if name == "admin":
            admin = Client()
            admin.force_login(ig_officer)
            return admin.get("/admin/")
        client.force_login(clinician)
        if name == "search results":
            return client.post(reverse("patient-search"), {"by": "nhs", "nhs_number": patient.nhs_number})
        if name == "fhir":
            _, token = create_api_token(by=None, name="viewer", user=clinician)
            return client.get(f"/fhir/Patient/{patient.pk}", HTTP_AUTHORIZATION=f"Bearer {token}")
        url = {"record": reverse("record-summary", args=[patient.pk]), "my patients": reverse("my-patients")}[name]
        return client.get(url)

    return fetch


@pytest.mark.hazard("H-11")
@pytest.mark.django_db
@pytest.mark.usefixtures("admin_settings")
@pytest.mark.parametrize("shown", ["record", "search results", "my patients", "fhir", "admin"])
def test_finding_10_pages_with_patient_data_are_not_stored(pages_with_patient_data, shown):
    response = pages_with_patient_data(shown)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] and response["Pragma"] == "no-cache"


@pytest.mark.hazard("H-11")
@pytest.mark.django_db
def test_finding_10_every_fhir_response_is_not_stored(client):
    response = client.get("/fhir/Condition/1")  # refused, and still not to be kept
    assert response.status_code == 401
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_public_pages_may_be_cached(client):
    response = client.get("/about/")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")


@pytest.mark.django_db
def test_finding_10_a_client_cannot_choose_its_request_id(client, settings):
    """Without the proxy, an X-Request-ID is whatever the client says: a made-up id could be planted in the
    audit trail, so one is always generated."""
    settings.BEHIND_PROXY = False
    response = client.get("/healthz", headers={"X-Request-ID": "chosen-by-the-client"})
    assert response.status_code == 200
    assert response["X-Request-ID"] != "chosen-by-the-client" and len(response["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_behind_the_proxy_the_load_balancers_request_id_is_kept(client, settings):
    settings.BEHIND_PROXY = True
    response = client.get("/healthz", headers={"X-Request-ID": "lb-0123456789"})
    assert response.status_code == 200 and response["X-Request-ID"] == "lb-0123456789"


@pytest.mark.hazard("H-11")
def test_finding_10_request_lines_are_logged_without_their_query_string():
    """runserver logs each request line (django.server): a GET /fhir/Patient?identifier=... would put the NHS
    number in the log."""
    record = logging.LogRecord(
        "django.server",
        logging.INFO,
        __file__,
        1,
        '"%s" %s %s',
        ("GET /fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9990000018 HTTP/1.1", "200", "312"),
        None,
    )
    assert WithoutQueryString().filter(record)
    assert record.getMessage() == '"GET /fhir/Patient HTTP/1.1" 200 312'
    server = logging.getLogger("django.server")
    assert any(isinstance(f, WithoutQueryString) for handler in server.handlers for f in handler.filters)
    assert any(isinstance(f, WithoutQueryString) for handler in logging.getLogger().handlers for f in handler.filters)


def test_finding_10_the_documented_access_log_omits_the_query_string():
    """gunicorn's default access log line is the request line, query string and all (%(r)s): the README's recipe
    sets a format with the path alone (%(U)s), and says to search by POST."""
    readme = (ROOT / "README.md").read_text()
    [command] = [line for line in readme.splitlines() if "bin/gunicorn carerecord.wsgi" in line]
    logformat = re.search(r"--access-logformat '([^']*)'", command)
    assert logformat and "%(U)s" in logformat[1]
    assert "%(r)s" not in logformat[1] and "%(q)s" not in logformat[1]
    assert "POST /fhir/Patient/_search" in readme


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/fhir/Condition/%00", "/fhir/Condition?patient=%00", "/admin/?q=%00"])
def test_a_nul_in_the_url_is_a_400(client, url):
    assert client.get(url).status_code == 400


# Finding 11: the production recipe's collectstatic (with the manifest) completes.


def test_finding_11_collectstatic_with_the_manifest_completes(tmp_path: Path):
    """The vendored CSS and JS referred to source maps that are not vendored: with STATIC_MANIFEST on (the default
    with DEBUG off) collectstatic stopped on them, and without its manifest no page rendered."""
    env = {**PRODUCTION, "STATIC_ROOT": str(tmp_path / "static"), "STATIC_MANIFEST": "1"}
    result = manage("collectstatic", "--no-input", env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (tmp_path / "static" / "staticfiles.json").exists()
