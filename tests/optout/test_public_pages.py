"""The public pages patients read before deciding: the landing page at `/`, what is shared and why, every partner
and what each shares (grouped by kind, searchable), and how to opt out in their area (which area: by borough).
None needs a sign-in; each has the public navigation and a footer written for patients."""

import re

import lxml.html
import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from directory.models import Organisation, Region
from directory.regions import BOROUGHS, WHICH_AREA
from optout.models import RegionalProcess
from patients.categories import Category
from tests import factories
from tests.optout.test_public_form import VALID

pytestmark = pytest.mark.django_db


@pytest.fixture
def anonymous():
    return Client()


@pytest.fixture
def partners():
    return {
        "practice": factories.OrganisationFactory(
            name="Peckham Rye Medical Centre", ods_code="ZZG401", kind=Organisation.Kind.GP_PRACTICE
        ),
        "mental_health": factories.OrganisationFactory(
            name="Thameside Mental Health NHS Foundation Trust",
            ods_code="ZZM",
            kind=Organisation.Kind.MENTAL_HEALTH,
            region=Region.NCL,
            shares=[Category.CARE_PLANS, Category.TEAMS],
        ),
        "council": factories.OrganisationFactory(
            name="Riverside Borough Council Adult Social Care",
            ods_code="ZZK2",
            kind=Organisation.Kind.SOCIAL_CARE,
            shares=[],
        ),
        "closed": factories.OrganisationFactory(name="Closed Practice", ods_code="ZZX", active=False),
    }


def sections(body):
    """{heading: table html} for each kind of organisation on the partners page."""
    parts = re.split(r'<h2 class="nhsuk-heading-m">([^<]+)</h2>', body)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def row(table, name):
    match = re.search(rf"<tr class=\"nhsuk-table__row\">\s*<td[^>]*>.*?{re.escape(name)}.*?</tr>", table, re.S)
    assert match, name
    return re.sub(r"\s+", " ", match[0])


def test_the_information_page_explains_sharing_and_the_right_to_object(anonymous):
    response = anonymous.get(reverse("optout-information"))
    assert response.status_code == 200
    body = response.content.decode()
    for category in Category:
        assert category.label.lower() in body
    for text in ("Who can see it", "Your right to object", "National Data Opt-out", "Nothing is deleted"):
        assert text in body
    assert reverse("optout-how") in body and reverse("optout-partners") in body


def test_partners_are_grouped_by_kind_with_what_each_shares(anonymous, partners):
    response = anonymous.get(reverse("optout-partners"))
    assert response.status_code == 200
    groups = sections(response.content.decode())
    assert list(groups) == ["GP practice", "Mental health trust", "Social care"]  # the order of Organisation.Kind

    practice = row(groups["GP practice"], "Peckham Rye Medical Centre")
    assert "ZZG401" in practice and "South East London" in practice
    for category in Category:
        assert category.label.lower() in practice
    mental_health = row(groups["Mental health trust"], "Thameside")
    assert "care plans" in mental_health and "involved teams" in mental_health
    assert "letters" not in mental_health and "medications" not in mental_health
    assert "Nothing yet" in row(groups["Social care"], "Riverside Borough Council")
    assert "Closed Practice" not in response.content.decode()  # inactive organisations are not partners
    assert response.context["count"] == 3


def test_only_organisations_ig_listed_are_partners(anonymous, partners):
    """One a feed added (on any sender's word) waits, unlisted, for IG: tests/directory/test_directory_rules.py."""
    factories.OrganisationFactory(name="Unapproved Wellness Clinic", ods_code="ZZU1", listed=False)
    response = anonymous.get(reverse("optout-partners"))
    assert "Unapproved Wellness Clinic" not in response.content.decode() and response.context["count"] == 3
    assert anonymous.get(reverse("optout-partners"), {"q": "ZZU1"}).context["count"] == 0


def test_partners_search_by_name_or_ods_code(anonymous, partners):
    def names(query):
        response = anonymous.get(reverse("optout-partners"), {"q": query})
        assert response.status_code == 200
        return [o.name for group in response.context["kinds"] for o in group["organisations"]]

    assert names("thameside") == ["Thameside Mental Health NHS Foundation Trust"]
    assert names("zzk2") == ["Riverside Borough Council Adult Social Care"]
    assert names("ZZ") == []  # an ODS code matches whole, a name in part
    assert names("nothing like this") == []
    body = anonymous.get(reverse("optout-partners"), {"q": "<script>"}).content.decode()
    assert "No organisations match your search." in body and "<script>" not in body.split("</header>", 1)[-1]


def test_how_to_opt_out_shows_each_regions_process(anonymous):
    RegionalProcess.objects.create(
        region=Region.SWL,
        title="Through your GP practice or online",
        body="Tell your GP practice.\n\nOr use the online form.",
        contact_email="swl.optout@example.nhs.uk",
    )
    RegionalProcess.objects.create(
        region=Region.SEL, title="By phone or online", body="Call the IG team.", contact_phone="0300 000 0000"
    )
    response = anonymous.get(reverse("optout-how"))
    assert response.status_code == 200
    body = response.content.decode()
    assert body.index("South East London: By phone or online") < body.index("South West London: Through your GP")
    assert "<p>Tell your GP practice.</p>" in body and "<p>Or use the online form.</p>" in body
    assert 'href="mailto:swl.optout@example.nhs.uk"' in body and "0300 000 0000" in body
    assert reverse("optout-request") in body


def test_how_to_opt_out_still_helps_before_ig_has_written_any_process(anonymous):
    body = anonymous.get(reverse("optout-how")).content.decode()
    assert "Use the online form, or tell a professional caring for you." in body


def page_of(response):
    return lxml.html.fromstring(response.content.decode())


def header_navigation(response):
    """[(text, href, aria-current)] of the header's navigation."""
    links = page_of(response).xpath('//header//nav[@aria-label="Menu"]//a')
    return [(" ".join(a.text_content().split()), a.get("href"), a.get("aria-current")) for a in links]


def footer(response):
    (element,) = page_of(response).xpath("//footer")
    return [a.get("href") for a in element.xpath(".//a")], " ".join(element.text_content().split())


PUBLIC_NAVIGATION = [
    ("Home", "/"),
    ("About the record", "/about/"),
    ("Partners", "/partners/"),
    ("Opt out", "/opt-out/"),
    ("Professional sign in", "/accounts/login/"),
]


def test_finding_signed_out_the_home_page_is_the_public_landing_page(anonymous):
    """Before: `/` sent everyone to the professional sign-in, which links to none of the public pages."""
    response = anonymous.get(reverse("home"))
    assert response.status_code == 200
    assert "public/landing.html" in [t.name for t in response.templates]
    (main,) = page_of(response).xpath("//main")
    links = {" ".join(a.text_content().split()): a.get("href") for a in main.xpath(".//a")}
    assert links["Sign in (health and care professionals)"] == reverse("account_login")
    assert {reverse("optout-information"), reverse("optout-partners"), reverse("optout-how")} <= set(links.values())
    assert reverse("optout-request") in links.values()
    text = main.text_content()
    assert "Your right to object" in text and "Who takes part" in text
    assert "Open emergency view" not in text and 'name="nhs_number"' not in response.content.decode()


def with_a_request(client):
    """A visitor part way through the request: answers kept, not yet sent."""
    cache.clear()  # the form's rate limit counts in the cache, which outlives a test
    assert client.post(reverse("optout-request"), VALID).status_code == 302


PUBLIC_PAGES = [
    ("home", "Home"),
    ("optout-information", "About the record"),
    ("optout-partners", "Partners"),
    ("optout-how", "Opt out"),
    ("optout-request", "Opt out"),
    ("optout-request-check", "Opt out"),
    ("optout-request-done", "Opt out"),
    ("account_login", "Professional sign in"),
    ("account_reset_password", "Professional sign in"),
    ("signed-out", None),
]


@pytest.mark.parametrize(("name", "current"), PUBLIC_PAGES)
def test_finding_every_public_page_has_the_navigation_and_a_footer_for_patients(anonymous, name, current):
    """Before: no navigation at all on the public pages, and a footer telling professionals their looks are logged."""
    if name in ("optout-request-check", "optout-request-done"):
        with_a_request(anonymous)
        if name == "optout-request-done":
            anonymous.post(reverse("optout-request-check"))
    response = anonymous.get(reverse(name))
    assert response.status_code == 200, name
    navigation = header_navigation(response)
    assert [(text, href) for text, href, _ in navigation] == PUBLIC_NAVIGATION
    marked = [(text, aria) for text, _, aria in navigation if aria]
    if current is None:
        assert marked == []
    else:
        own_page = dict(PUBLIC_NAVIGATION)[current] == reverse(name)
        assert marked == [(current, "page" if own_page else "true")]
    links, text = footer(response)
    assert links == [reverse("optout-information"), reverse("optout-partners"), reverse("optout-how")]
    assert "You can ask for your information not to be shared" in text
    assert "Every record you open" not in text and "check with the source organisation" not in text


def test_signed_in_the_header_and_footer_stay_the_professionals(client, clinician):
    client.force_login(clinician)
    for name in ("home", "optout-information"):
        response = client.get(reverse(name))
        texts = [text for text, _, _ in header_navigation(response)]
        assert texts[:3] == ["Home", "Find a patient", "My patients"] and "Professional sign in" not in texts
        links, text = footer(response)
        assert reverse("account_change_password") in links and reverse("optout-how") not in links
        assert "Every record you open, and every search, is logged and reviewed." in text


def test_finding_how_to_opt_out_says_which_area_by_borough(anonymous):
    """Before: five region names, and nothing to tell a patient which was theirs."""
    page = page_of(anonymous.get(reverse("optout-how")))
    assert WHICH_AREA in page.text_content()
    rows = page.xpath('//dl[@class="nhsuk-summary-list"]/div')
    listed = {row.xpath("string(dt)").strip(): row.xpath("string(dd)").strip() for row in rows}
    assert listed == {region.label: ", ".join(BOROUGHS[region]) for region in Region}


def test_the_boroughs_are_londons_thirty_three_each_in_one_area():
    boroughs = [borough for region in Region for borough in BOROUGHS[region]]
    assert len(boroughs) == len(set(boroughs)) == 33
    assert set(BOROUGHS) == set(Region)
    assert "Westminster" in BOROUGHS[Region.NWL] and "City of London" in BOROUGHS[Region.NEL]


def test_how_to_opt_out_promises_the_reply_time_in_the_setting(anonymous, settings):
    settings.OPTOUT_RESPONSE_DAYS = 21
    assert "usually within 21 days" in anonymous.get(reverse("optout-how")).content.decode()
