"""IG's objection queue and the checks on its steps (issue 18): the queue opens on what needs action, each open case
shows its age against the response target, Reject and Record withdrawal are confirmed first, verify records how
the requester's identity was checked, "decided" is set only by the decision, and dates, times and postcodes are
shown the one way."""

import datetime
import re
from html import unescape

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from demo.accounts import information_governance_group
from directory.models import Region
from optout import actions, queue
from optout.models import IdentityCheck, Objection
from sharing.access import decide
from tests import factories

pytestmark = pytest.mark.django_db

Status = Objection.Status
CHANGELIST = "admin:optout_objection_changelist"


@pytest.fixture(autouse=True)
def _settings(admin_settings, settings):
    settings.OPTOUT_RESPONSE_DAYS = 30


def days_ago(days, at=datetime.time(12)):
    """A time in London `days` calendar days back (noon unless told): ages in days whatever the time of the run."""
    day = timezone.localdate() - datetime.timedelta(days=days)
    return timezone.make_aware(datetime.datetime.combine(day, at))


def request(family_name, *, received_at=None, postcode="SE1 7EH", email=None, **details):
    """A request from the public form, by its own requester (so never a repeat of another)."""
    return actions.submit_objection(
        given_name="Sam",
        family_name=family_name,
        date_of_birth=datetime.date(1980, 5, 17),
        postcode=postcode,
        contact_email=f"{family_name.lower()}@example.com" if email is None else email,
        region=Region.SEL,
        received_at=received_at or timezone.now(),
        **details,
    )


def moved_to(objection, status, by, patient=None):
    """The objection taken through the workflow's actions to `status`."""
    patient = patient or factories.PatientFactory()
    actions.match_patient(by=by, objection=objection, patient=patient)
    if status == Status.REJECTED:
        return actions.reject(by=by, objection=objection, reason="Identity not confirmed")
    actions.verify(by=by, objection=objection, identity_check=IdentityCheck.CALL_BACK)
    if status in (Status.UPHELD, Status.WITHDRAWN):
        actions.uphold(by=by, objection=objection, reason="The patient's wish")
    if status == Status.WITHDRAWN:
        actions.withdraw(by=by, objection=objection)
    return objection


def listed(client, **params):
    response = client.get(reverse(CHANGELIST), params)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def change_url(objection):
    return reverse("admin:optout_objection_change", args=[objection.pk])


def step_url(objection, step):
    return reverse(f"admin:optout_objection_{step}", args=[objection.pk])


def shown_messages(response):
    return [(message.level_tag, str(message)) for message in response.context["messages"]]


def trail(objection):
    return list(
        AuditEvent.objects.filter(target_type="Objection", target_id=str(objection.pk)).values_list("action", flat=True)
    )


def hidden_fields(body):
    """The confirmation form's hidden fields, as a browser would post them back."""
    form = re.search(r'<form method="post" action="[^"]+">(.*?)</form>', body, re.S)[1]
    return {
        unescape(name): unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
    }


@pytest.fixture
def cases(ig_user):
    """One objection in each state, oldest first."""
    return {
        status: moved_to(request(f"Case{index}", received_at=days_ago(10 - index)), status, ig_user)
        if status != Status.RECEIVED
        else request(f"Case{index}", received_at=days_ago(10 - index))
        for index, status in enumerate(Status.values)
    }


# --- the queue ----------------------------------------------------------------------------------------------------


def test_finding_the_queue_opens_on_needs_action_without_closed_objections(ig_client, cases):
    """Before: the default list mixed upheld, rejected and withdrawn cases in with the ones awaiting IG."""
    open_cases = [cases[Status.RECEIVED], cases[Status.VERIFIED]]
    assert listed(ig_client) == open_cases
    assert listed(ig_client, queue="needs-action") == open_cases
    assert listed(ig_client, queue="all") == list(cases.values())
    for status, objection in cases.items():
        assert listed(ig_client, queue=status) == [objection]
    assert listed(ig_client, queue="nonsense") == list(cases.values())  # an unknown value: everything, never a 500

    body = ig_client.get(reverse(CHANGELIST)).content.decode()
    assert re.search(r'<li class="selected">\s*<a href="\?queue=needs-action"', body)
    assert 'href="?queue=all"' in body and 'href="?queue=overdue"' in body


def test_a_search_looks_in_every_case_unless_a_queue_is_chosen(ig_client, cases):
    closed = cases[Status.REJECTED]
    assert listed(ig_client, q=closed.reference) == [closed]
    assert listed(ig_client, q=closed.reference, queue="needs-action") == []


def test_finding_overdue_lists_open_cases_older_than_the_response_target(ig_client, ig_user, settings):
    """Before: nothing in the queue said how long a requester had waited against the target."""
    late = request("Late", received_at=days_ago(35))
    late_verified = moved_to(request("Verified", received_at=days_ago(31)), Status.VERIFIED, ig_user)
    due_today = request("Today", received_at=days_ago(30, at=datetime.time(0, 5)))
    in_time = request("InTime", received_at=days_ago(25))
    closed = moved_to(request("Closed", received_at=days_ago(40)), Status.UPHELD, ig_user)

    assert listed(ig_client, queue="overdue") == [late, late_verified]
    assert listed(ig_client) == [late, late_verified, due_today, in_time]

    shown = re.findall(r'<td class="field-age">([^<]*)</td>', _all(ig_client))
    ages = dict(zip(listed(ig_client, queue="all"), shown, strict=True))
    assert ages == {
        closed: "40 days",  # decided: no target any more
        late: "35 days — overdue by 5 days",
        late_verified: "31 days — overdue by 1 day",
        due_today: "30 days — due today",
        in_time: "25 days — due in 5 days",
    }

    settings.OPTOUT_RESPONSE_DAYS = 20  # the target is the setting's
    assert listed(ig_client, queue="overdue") == [late, late_verified, due_today, in_time]


def _all(client):
    return client.get(reverse(CHANGELIST), {"queue": "all"}).content.decode()


def test_age_in_words(settings):
    today = timezone.localdate()
    fresh = Objection(status=Status.RECEIVED, received_at=timezone.now())
    assert str(queue.age_of(fresh, today=today)) == "Received today — due in 30 days"
    one_day = Objection(status=Status.VERIFIED, received_at=days_ago(29))
    assert str(queue.age_of(one_day, today=today)) == "29 days — due in 1 day"
    assert str(queue.age_of(Objection(status=Status.WITHDRAWN, received_at=days_ago(1)), today=today)) == "1 day"


# --- Reject and Record withdrawal are confirmed first -------------------------------------------------------------


@pytest.mark.hazard("H-02")
def test_finding_reject_without_confirmation_changes_nothing_and_asks_first(ig_client, ig_user, patient):
    """Before: one click on Reject closed the case and wrote to the requester."""
    objection = request("Confirmme", email="ada@example.com")
    actions.match_patient(by=ig_user, objection=objection, patient=patient)
    mail.outbox.clear()
    entered = {
        "reason": 'Safeguarding plan <in place> & "agreed"',
        "clinical_need": "on",
        "clinician_name": "Dr Okafor",
    }

    response = ig_client.post(step_url(objection, "reject"), entered)
    assert response.status_code == 200
    assert response.templates[0].name == "admin/optout/objection/confirm_reject.html"
    objection.refresh_from_db()
    assert objection.status == Status.RECEIVED and objection.decided_at is None
    assert trail(objection).count("objection.rejected") == 0 and mail.outbox == []

    body = response.content.decode()
    assert f"<h1>Reject {objection.reference}?</h1>" in body
    assert "record stays shared" in body and "emailed at ada@example.com" in body
    assert "Safeguarding plan &lt;in place&gt; &amp; &quot;agreed&quot;" in body and "Dr Okafor" in body
    assert 'value="Yes, reject"' in body
    assert f'<a href="{change_url(objection)}" class="button cancel-link">No, go back</a>' in body
    carried = hidden_fields(body)
    assert carried == {
        "csrfmiddlewaretoken": carried["csrfmiddlewaretoken"],
        "confirm": "yes",
        "reason": entered["reason"],
        "clinical_need": "on",
        "clinician_name": "Dr Okafor",
    }

    # The page's own form, posted back as it stands: now the step is taken.
    confirmed = ig_client.post(step_url(objection, "reject"), carried, follow=True)
    assert confirmed.redirect_chain == [(change_url(objection), 302)]
    objection.refresh_from_db()
    assert objection.status == Status.REJECTED
    assert (objection.decision_reason, objection.clinician_name) == (entered["reason"], "Dr Okafor")
    assert objection.decided_by == ig_user
    assert shown_messages(confirmed)[0][0] == "success"
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]


@pytest.mark.hazard("H-02")
def test_reject_with_missing_values_says_so_without_reaching_the_confirmation(ig_client):
    objection = request("Noreason")
    for data, message in (
        ({"reason": "  "}, "Give the reason for rejecting the objection."),
        (
            {"reason": "Clinical need", "clinical_need": "on"},
            "A rejection for clinical need needs the name of the clinician who decided it.",
        ),
    ):
        response = ig_client.post(step_url(objection, "reject"), data, follow=True)
        assert response.redirect_chain == [(change_url(objection), 302)]
        assert shown_messages(response) == [("error", message)]
    objection.refresh_from_db()
    assert objection.status == Status.RECEIVED


@pytest.mark.hazard("H-02")
def test_finding_record_withdrawal_of_an_upheld_objection_is_confirmed_first(ig_client, ig_user, patient, clinician):
    """Before: one click on Record withdrawal showed the shared record again at once."""
    objection = moved_to(request("Optedout"), Status.UPHELD, ig_user, patient=patient)
    assert decide(clinician, patient).opted_out

    response = ig_client.post(step_url(objection, "withdraw"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "other organisations' entries are shown again" in body and "at once" in body
    assert 'value="Yes, record the withdrawal"' in body and "No, go back" in body
    objection.refresh_from_db()
    assert objection.status == Status.UPHELD and objection.withdrawn_at is None
    assert decide(clinician, patient).opted_out
    assert "objection.withdrawn" not in trail(objection)

    ig_client.post(step_url(objection, "withdraw"), hidden_fields(body))
    objection.refresh_from_db()
    assert objection.status == Status.WITHDRAWN
    assert not decide(clinician, patient).opted_out


@pytest.mark.hazard("H-02")
def test_withdrawing_an_undecided_objection_says_nothing_changes_in_what_is_shown(ig_client):
    objection = request("Undecided", email="")
    objection.contact_phone = "020 7946 0999"
    objection.save()
    body = ig_client.post(step_url(objection, "withdraw")).content.decode()
    assert "nothing changes in what professionals see" in body
    assert "shown again" not in body
    assert "There is no email address: tell them yourself, by phone on 020 7946 0999" in body


def test_a_closed_objection_gets_no_confirmation_page(ig_client, ig_user):
    objection = moved_to(request("Closedcase"), Status.REJECTED, ig_user)
    response = ig_client.post(step_url(objection, "withdraw"), follow=True)
    assert response.redirect_chain == [(change_url(objection), 302)]
    assert shown_messages(response)[0][0] == "error"


@pytest.mark.hazard("H-02")
def test_only_ig_with_the_change_permission_reach_the_confirmation_or_take_the_step(client, clinician):
    objection = request("Guarded")
    for step, data in (("reject", {"reason": "x"}), ("withdraw", {})):
        url = step_url(objection, step)
        for confirm in ({}, {"confirm": "yes"}):
            client.logout()
            response = client.post(url, {**data, **confirm})
            assert response.status_code == 302 and "/accounts/login/" in response["Location"]

            client.force_login(clinician)  # not staff: admin's own sign-in
            response = client.post(url, {**data, **confirm})
            assert response.status_code == 302 and reverse("admin:login") in response["Location"]

    viewer = factories.UserFactory(is_staff=True)
    viewer.user_permissions.add(*information_governance_group().permissions.filter(codename="view_objection"))
    looking = Client()
    looking.force_login(viewer)
    assert looking.get(change_url(objection)).status_code == 200
    for step, data in (("reject", {"reason": "x"}), ("withdraw", {})):
        for confirm in ({}, {"confirm": "yes"}):
            assert looking.post(step_url(objection, step), {**data, **confirm}).status_code == 403
    objection.refresh_from_db()
    assert objection.status == Status.RECEIVED


# --- verify: how identity was checked; decided only by the decision -----------------------------------------------


@pytest.fixture
def matched(ig_user, patient):
    objection = request("Matched")
    return actions.match_patient(by=ig_user, objection=objection, patient=patient)


@pytest.mark.hazard("H-02")
def test_finding_verify_is_refused_without_how_identity_was_checked(ig_client, matched):
    """Before: Verify was one button; nothing said how IG knew who was asking."""
    page = ig_client.get(change_url(matched)).content.decode()
    assert "How was the requester's identity checked?" in page
    for value, label in IdentityCheck.choices:
        assert f'name="identity_check" value="{value}"> {label}' in unescape(page)
    assert 'name="identity_check_note"' in page

    for data, message in (
        ({}, "Select how the requester's identity was checked."),
        ({"identity_check": "guessed"}, "Select how the requester's identity was checked."),
        (
            {"identity_check": "other", "identity_check_note": "  "},
            "Describe how the requester's identity was checked.",
        ),
    ):
        response = ig_client.post(step_url(matched, "verify"), data, follow=True)
        assert response.redirect_chain == [(change_url(matched), 302)]
        assert shown_messages(response) == [("error", message)]
        matched.refresh_from_db()
        assert matched.status == Status.RECEIVED and matched.verified_at is None


@pytest.mark.hazard("H-02")
def test_finding_verify_records_the_check_and_leaves_decided_empty_until_the_decision(ig_client, ig_user, matched):
    """Before: verify filled in "Decided by/at", as if verifying were the decision."""
    ig_client.post(
        step_url(matched, "verify"), {"identity_check": "other", "identity_check_note": "Passport seen at the ICB"}
    )
    matched.refresh_from_db()
    assert matched.status == Status.VERIFIED
    assert (matched.verified_by, matched.identity_check, matched.identity_check_note) == (
        ig_user,
        IdentityCheck.OTHER,
        "Passport seen at the ICB",
    )
    assert matched.decided_by is None and matched.decided_at is None
    page = ig_client.get(change_url(matched)).content.decode()
    assert re.search(r'<h2 id="[^"]+" class="fieldset-heading">Identity check</h2>', page)
    assert "Another way (described in the notes)" in page and "Passport seen at the ICB" in page
    assert "Decided by" not in page and "Decided at" not in page
    assert "identity checked: Another way (described in the notes)" in page  # the trail, in words

    verified_by, verified_at = matched.verified_by, matched.verified_at
    ig_client.post(step_url(matched, "uphold"), {"reason": "The patient's wish"})
    matched.refresh_from_db()
    assert matched.status == Status.UPHELD
    assert matched.decided_by == ig_user and matched.decided_at >= verified_at
    assert (matched.verified_by, matched.verified_at) == (verified_by, verified_at)
    page = ig_client.get(change_url(matched)).content.decode()
    assert "Decided by" in page and "Decided at" in page and "Verified by" in page


# --- one format for dates, times and postcodes --------------------------------------------------------------------


@pytest.mark.hazard("H-09")
def test_finding_times_are_shown_24_hour_in_london_on_the_objection_pages(ig_client, ig_user):
    """Before: "Dec. 2, 2025, 6:47 p.m." in the list and "2 Dec 2025 18:47" in the trail."""
    received = timezone.make_aware(datetime.datetime(2025, 12, 2, 18, 47))
    objection = request("Evening", received_at=received)
    listing = _all(ig_client)
    assert '<td class="field-received_at nowrap">2 Dec 2025, 18:47</td>' in listing
    assert "p.m." not in listing

    page = ig_client.get(change_url(objection)).content.decode()
    assert "2 Dec 2025, 18:47" in page and "p.m." not in page
    actions.match_patient(by=ig_user, objection=objection, patient=factories.PatientFactory())
    page = ig_client.get(change_url(objection)).content.decode()
    matched_at = timezone.localtime(AuditEvent.objects.get(action="objection.matched").at)
    assert f"<td>{matched_at:%-d %b %Y, %H:%M}</td>" in page


def test_finding_postcodes_are_shown_formatted_on_the_page_and_in_the_candidates_never_in_the_list(ig_client):
    """Before: "SW91NQ" as stored."""
    patient = factories.PatientFactory(family_name="Postcoded", date_of_birth=datetime.date(1980, 5, 17))
    patient.postcode = "sw91nq"
    patient.save()
    objection = request("Postcoded", postcode="SW91NQ")
    assert objection.postcode == "SW91NQ"

    listing = ig_client.get(reverse(CHANGELIST)).content.decode()
    assert "field-postcode" not in listing and "SW9 1NQ" not in listing  # the queue names people, nothing more
    page = ig_client.get(change_url(objection)).content.decode()
    assert '<div class="readonly">SW9 1NQ</div>' in page
    assert "<td>SW9 1NQ</td>" in page  # the candidate patient's
    assert "SW91NQ" not in page and "sw91nq" not in page


def test_search_finds_a_postcode_typed_either_way(ig_client):
    objection = request("Searched", postcode="SW9 1NQ")
    request("Elsewhere", postcode="SW1A 1AA")
    for typed in ("SW9 1NQ", "sw91nq", "SW91NQ", " sw9  1nq "):
        assert listed(ig_client, q=typed) == [objection], typed
