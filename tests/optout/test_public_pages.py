"""The public pages patients read before deciding: what is shared and why, every partner and what each shares
(grouped by kind, searchable), and how to opt out in their area. None needs a sign-in."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from directory.models import Organisation, Region
from optout.models import RegionalProcess
from patients.categories import Category
from tests import factories

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
