"""IG's dashboard, the admin index (issue 18): what needs action, each count equal to what its link lists; a
chart of accesses and break glass per organisation and week; nothing of any patient; a fixed number of queries."""

import datetime
import re

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessBasis, AccessEvent, AccessOutcome
from carerecord import dashboard
from optout.models import Objection
from sharing.models import BreakGlass, EntryProblem
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("admin_settings")]

INDEX = "admin:index"


@pytest.fixture(autouse=True)
def _no_cached_chart():
    cache.clear()
    yield
    cache.clear()


def objection(days_ago, status=Objection.Status.RECEIVED, **fields):
    details = {"given_name": "Ada", "family_name": "Requester", "date_of_birth": datetime.date(1970, 1, 1)}
    details |= {"postcode": "SE17EH", "region": "SEL", "source": Objection.Source.WEB_FORM} | fields
    received_at = timezone.now() - datetime.timedelta(days=days_ago)
    return Objection.objects.create(received_at=received_at, status=status, **details)


def break_glass(patient, clinician, outcome=BreakGlass.Outcome.PENDING, started_at=None, code="A81001"):
    return factories.break_glass(patient=patient, user=clinician, outcome=outcome, started_at=started_at, code=code)


def tiles_of(response):
    return {tile.title: tile for tile in response.context["dashboard_tiles"]}


def listed(client, url):
    """The rows the tile's link lists (the changelist's own result count)."""
    response = client.get(url)
    assert response.status_code == 200, url
    return response.context["cl"].result_count


def test_finding_each_tile_counts_what_its_queue_lists(ig_client, patient, clinician, other_organisation):
    objection(3)
    objection(45, status=Objection.Status.VERIFIED)
    objection(2, status=Objection.Status.UPHELD)  # closed: in no tile
    break_glass(patient, clinician)
    break_glass(patient, clinician, outcome=BreakGlass.Outcome.FOLLOW_UP)
    break_glass(patient, clinician, outcome=BreakGlass.Outcome.APPROPRIATE)
    factories.entry_problem(patient=patient, reporter=clinician, source=other_organisation)
    factories.entry_problem(
        patient=patient, reporter=clinician, source=other_organisation, status=EntryProblem.Status.CLOSED
    )

    tiles = tiles_of(ig_client.get(reverse(INDEX)))
    assert tiles["Objections to sharing"].count == 2
    assert tiles["Objections to sharing"].links[0].count == 1  # overdue: the 45-day-old one
    assert tiles["Emergency access (break glass)"].count == 2
    assert tiles["Problems reported with entries"].count == 1
    for tile in tiles.values():
        if "privacyalert" in tile.url:
            continue  # a page of its own, not a changelist: its count is today's alerts (tests/sharing)
        assert listed(ig_client, tile.url) == tile.count, tile.title
        for link in tile.links:
            assert listed(ig_client, link.url) == link.count, link.text


@pytest.mark.hazard("H-12")
def test_finding_break_glass_tile_and_queue_open_on_what_needs_review(ig_client, patient, clinician):
    pending = break_glass(patient, clinician)
    reviewed = break_glass(patient, clinician, outcome=BreakGlass.Outcome.APPROPRIATE)
    tile = tiles_of(ig_client.get(reverse(INDEX)))["Emergency access (break glass)"]
    assert tile.count == 1
    default = ig_client.get(reverse("admin:sharing_breakglass_changelist"))
    assert list(default.context["cl"].result_list) == [pending]
    everything = ig_client.get(reverse("admin:sharing_breakglass_changelist"), {"status": "all"})
    assert set(everything.context["cl"].result_list) == {pending, reviewed}


def test_the_dashboard_names_no_patient(ig_client, patient, clinician):
    objection(3, family_name=patient.family_name, given_name=patient.given_name)
    break_glass(patient, clinician)
    body = ig_client.get(reverse(INDEX)).content.decode()
    for detail in (patient.family_name, patient.nhs_number, patient.nhs_number_display, patient.postcode):
        assert detail not in body
    assert not AccessEvent.objects.filter(page__startswith="admin:").exists()


def test_tiles_only_for_queues_the_user_may_view(client, admin_settings):
    staff = factories.UserFactory(is_staff=True)
    client.force_login(staff)
    assert tiles_of(client.get(reverse(INDEX))) == {}
    staff.user_permissions.add(Permission.objects.get(codename="view_objection"))
    response = client.get(reverse(INDEX))
    assert list(tiles_of(response)) == ["Objections to sharing"]
    assert "chart" not in response.context  # the chart is drawn from the access log


def test_signed_out_or_not_staff_get_no_dashboard(client, clinician):
    response = client.get(reverse(INDEX))
    assert response.status_code == 302 and "dashboard_tiles" not in (response.context or {})
    client.force_login(clinician)
    response = client.get(reverse(INDEX), follow=True)
    assert "dashboard_tiles" not in response.context


def access(at, code, outcome=AccessOutcome.ALLOWED):
    return AccessEvent.objects.create(
        at=at, organisation_code=code, outcome=outcome, basis=AccessBasis.CARE_TEAM, page="record:summary"
    )


def test_finding_the_chart_counts_accesses_and_break_glass_per_organisation_and_week(patient, clinician):
    today = datetime.date(2026, 12, 2)  # a Wednesday
    this_monday = datetime.datetime(2026, 11, 30, 9, tzinfo=datetime.UTC)
    factories.OrganisationFactory(ods_code="RBA", name="Test Acute Trust")
    for _ in range(3):
        access(this_monday, "RBA")
    access(this_monday - datetime.timedelta(weeks=2), "RBA")
    access(this_monday - datetime.timedelta(weeks=2), "RBA", outcome=AccessOutcome.REFUSED)  # not counted
    access(this_monday - datetime.timedelta(weeks=9), "RBA")  # before the chart
    access(this_monday, "F81001")
    break_glass(patient, clinician, started_at=this_monday, code="F81001")

    chart = dashboard.chart(today=today)
    assert chart.weeks[-1] == datetime.date(2026, 11, 30) and len(chart.weeks) == 8
    rows = {row.code: row for row in chart.series}
    assert rows["RBA"].name == "Test Acute Trust"
    assert rows["RBA"].accesses == [0, 0, 0, 0, 0, 1, 0, 3]  # a week with none is a zero
    assert rows["RBA"].break_glass == [0] * 8
    assert rows["F81001"].accesses[-1] == 1 and rows["F81001"].break_glass[-1] == 1
    assert [row.code for row in chart.series] == ["RBA", "F81001"]  # busiest first


def test_organisations_past_the_busiest_are_summed_as_others():
    now = timezone.now()
    for number in range(dashboard.CHART_ORGANISATIONS + 2):
        for _ in range(number + 1):
            access(now, f"Y{number:05d}")
    chart = dashboard.chart()
    assert len(chart.series) == dashboard.CHART_ORGANISATIONS + 1
    assert chart.series[-1].name == dashboard.OTHERS and chart.series[-1].accesses[-1] == 1 + 2


def test_the_page_draws_the_chart_and_its_table(ig_client):
    access(timezone.now(), "RBA")
    body = ig_client.get(reverse(INDEX)).content.decode()
    assert body.count('role="img"') == 1
    assert "Show the figures as a table" in body
    assert re.search(r"<desc[^>]*>1 accesses in 8 weeks", body)


def test_the_dashboard_costs_the_same_queries_whatever_the_data(ig_client, patient, clinician):
    def queries():
        cache.clear()
        with CaptureQueriesContext(connection) as captured:
            assert ig_client.get(reverse(INDEX)).status_code == 200
        return len(captured)

    access(timezone.now(), "X9")
    queries()  # the session is saved on the first page only
    few = queries()
    for days in range(5):
        objection(days * 10)
        break_glass(patient, clinician)
        access(timezone.now() - datetime.timedelta(days=days * 7), f"X{days}")
    assert queries() == few
