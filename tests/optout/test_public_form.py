"""The public opt-out form, as a member of the public (or a bot) meets it: no sign-in, one clear error per bad
value with an error summary, "Check your answers" before anything is sent, the same confirmation whether or not
the patient is known, a repeat linked to the first request, bots and floods turned away, and CSRF enforced."""

import html
import re

import lxml.html
import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from directory.models import Region
from directory.regions import BOROUGHS, WHICH_AREA
from optout.models import Objection

pytestmark = pytest.mark.django_db

FORM = reverse("optout-request")
CHECK = reverse("optout-request-check")
DONE = reverse("optout-request-done")
VALID = {
    "on_behalf": "self",
    "given_name": "Nadia",
    "family_name": "Okonkwo-Reyes",
    "dob_day": "3",
    "dob_month": "4",
    "dob_year": "1961",
    "nhs_number": "",
    "postcode": "se1 7eh",
    "region": "SEL",
    "contact_email": "nadia@example.com",
    "contact_phone": "",
    "reason": "I would rather each service kept its own notes.",
    "website": "",
}
INVALID_CHECK_DIGIT = "999 900 0003"  # 999 900 0002 is valid


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    """The limit counts per address in the cache, which outlives a test; start each one from zero."""
    cache.clear()
    yield
    cache.clear()


def submit(client, **changes):
    """The whole request: the form, then "Send request" on "Check your answers" when the form took the answers
    (otherwise the form's own answer: its errors, or the rate limit)."""
    response = client.post(FORM, {**VALID, **changes})
    if response.status_code == 302 and response["Location"] == CHECK:
        return client.post(CHECK)
    return response


def error_summary(body):
    """(href, text) of each link in the error summary, in order."""
    summary = re.search(r'<div class="nhsuk-error-summary".*?</ul>', body, re.S)
    assert summary, "no error summary"
    return [(href, html.unescape(text)) for href, text in re.findall(r'<a href="([^"]+)">([^<]+)</a>', summary[0])]


def field_error(body, field_id):
    match = re.search(rf'id="{field_id}-error">\s*<span class="nhsuk-u-visually-hidden">Error: </span>([^<]+)', body)
    return html.unescape(match[1].strip()) if match else None


def test_the_form_needs_no_sign_in(client):
    response = client.get(FORM)
    assert response.status_code == 200
    assert "Ask to opt out" in response.content.decode()


def test_a_valid_request_is_stored_with_a_reference_and_confirmed(client):
    response = submit(client)
    assert response.status_code == 302 and response["Location"] == DONE

    objection = Objection.objects.get()
    assert re.fullmatch(r"OPT-[A-HJ-NP-Z2-9]{8}", objection.reference)
    assert objection.status == Objection.Status.RECEIVED and objection.source == Objection.Source.WEB_FORM
    assert objection.patient is None  # IG matches it
    assert (objection.family_name, objection.postcode, str(objection.date_of_birth)) == (
        "Okonkwo-Reyes",
        "SE17EH",
        "1961-04-03",
    )
    done = client.get(DONE)
    assert done.status_code == 200
    assert objection.reference in done.content.decode()
    assert [message.to for message in mail.outbox] == [["nadia@example.com"]]
    assert objection.reference in mail.outbox[0].body
    assert AuditEvent.objects.filter(action="objection.received", target_id=str(objection.pk)).exists()


def test_someone_asking_on_behalf_gives_their_name_and_relationship(client):
    response = submit(client, on_behalf="other", on_behalf_name="Sam Reyes", on_behalf_relationship="Son")
    assert response.status_code == 302
    objection = Objection.objects.get()
    assert (objection.on_behalf_name, objection.on_behalf_relationship) == ("Sam Reyes", "Son")
    assert objection.requester_name == "Sam Reyes"
    assert "Dear Sam Reyes" in mail.outbox[0].body and "Nadia Okonkwo-Reyes's" in mail.outbox[0].body


def test_the_same_confirmation_whether_or_not_the_patient_is_known(patient):
    """Nobody can use the form to learn whether someone has a record here."""
    pages = []
    for details in (
        {
            "given_name": patient.given_name,
            "family_name": patient.family_name,
            "dob_day": str(patient.date_of_birth.day),
            "dob_month": str(patient.date_of_birth.month),
            "dob_year": str(patient.date_of_birth.year),
            "nhs_number": patient.nhs_number_display,
            "postcode": "N1 9GU",
        },
        {"nhs_number": "999 900 0002"},  # valid, but nobody has it
    ):
        client = Client()
        response = submit(client, **details)
        assert response.status_code == 302 and response["Location"] == DONE
        done = client.get(DONE)
        reference = done.context["reference"]
        pages.append((done.status_code, done.content.decode().replace(reference, "REFERENCE")))
    assert pages[0] == pages[1]
    assert Objection.objects.count() == 2
    assert not Objection.objects.filter(patient__isnull=False).exists()  # nothing matched automatically


def test_the_done_page_without_a_request_goes_back_to_the_form(client):
    response = client.get(DONE)
    assert response.status_code == 302 and response["Location"] == FORM


BAD_VALUES = [
    ({"given_name": ""}, "id_given_name", "Enter the patient's given name."),
    ({"family_name": "  "}, "id_family_name", "Enter the patient's family name."),
    ({"dob_day": "31", "dob_month": "2", "dob_year": "1990"}, "id_dob_day", "Enter a real date of birth"),
    ({"dob_day": "", "dob_month": "", "dob_year": ""}, "id_dob_day", "Enter a real date of birth"),
    ({"dob_month": "13"}, "id_dob_day", "Enter a real date of birth"),
    ({"dob_day": "aa"}, "id_dob_day", "Enter a real date of birth"),
    ({"dob_year": "2199"}, "id_dob_day", "Date of birth must be in the past."),
    ({"nhs_number": INVALID_CHECK_DIGIT}, "id_nhs_number", "This is not a valid NHS number"),
    ({"nhs_number": "99900000"}, "id_nhs_number", "An NHS number is 10 digits long."),
    ({"nhs_number": "999 000 00AB"}, "id_nhs_number", "An NHS number is 10 digits, with no letters."),
    ({"postcode": "NOT A CODE"}, "id_postcode", "Enter a real postcode, like SE1 7EH."),
    ({"postcode": ""}, "id_postcode", "Enter the patient's postcode."),
    (
        {"contact_email": "", "contact_phone": " "},
        "id_contact_email",
        "Enter an email address or a phone number so we can reply.",
    ),
    ({"contact_email": "not-an-email"}, "id_contact_email", "Enter an email address like name@example.com."),
    ({"on_behalf": ""}, "id_on_behalf", "Select who this request is for."),
    ({"region": "XYZ"}, "id_region", "Select a valid choice"),
    ({"region": ""}, "id_region", "Select the area of London."),
    ({"on_behalf": "other"}, "id_on_behalf_name", "Enter your full name."),
    ({"on_behalf": "other", "on_behalf_name": "Sam Reyes"}, "id_on_behalf_relationship", "Enter your relationship"),
]


@pytest.mark.parametrize(("changes", "field_id", "message"), BAD_VALUES)
def test_every_bad_value_gets_a_field_error_and_a_summary_link(client, changes, field_id, message):
    response = submit(client, **changes)
    assert response.status_code == 400
    body = response.content.decode()
    assert "<title>Error:" in body
    error_id = "id_dob" if field_id == "id_dob_day" else field_id  # the date group has one message
    assert (field_error(body, error_id) or "").startswith(message), body
    assert any(href == f"#{field_id}" and text.startswith(message) for href, text in error_summary(body))
    assert not Objection.objects.exists() and mail.outbox == []


def test_a_request_on_behalf_without_either_detail_lists_both_errors_in_page_order(client):
    response = submit(client, on_behalf="other", given_name="", contact_email="")
    hrefs = [href for href, _ in error_summary(response.content.decode())]
    assert hrefs == ["#id_on_behalf_name", "#id_on_behalf_relationship", "#id_given_name", "#id_contact_email"]


def test_what_was_typed_is_kept_after_an_error(client):
    body = submit(client, postcode="NOT A CODE").content.decode()
    assert 'value="Okonkwo-Reyes"' in body and 'value="nadia@example.com"' in body


def test_a_bot_filling_the_hidden_field_sees_the_done_page_but_nothing_is_stored(client):
    response = submit(client, website="https://spam.example")
    assert response.status_code == 302 and response["Location"] == DONE
    done = client.get(DONE)
    assert done.status_code == 200 and re.search(r"OPT-[A-Z2-9]{8}", done.content.decode())
    assert not Objection.objects.exists()
    assert mail.outbox == [] and not AuditEvent.objects.exists()


def test_too_many_requests_from_one_address_are_refused(settings):
    settings.OPTOUT_REQUESTS_PER_HOUR = 2
    client = Client(REMOTE_ADDR="203.0.113.7")
    assert submit(client, family_name="First").status_code == 302
    assert submit(client, family_name="Second").status_code == 302
    response = submit(client, family_name="Third")
    assert response.status_code == 429
    assert "Too many requests" in response.content.decode()
    assert error_summary(response.content.decode())[0][1].startswith("Too many requests")
    assert sorted(Objection.objects.values_list("family_name", flat=True)) == ["First", "Second"]
    # Bad submissions count too, so nobody can probe the form without limit.
    assert submit(client, family_name="").status_code == 429

    other_address = Client(REMOTE_ADDR="203.0.113.8")
    assert submit(other_address, family_name="Fourth").status_code == 302


def test_a_repeat_request_from_the_same_person_is_linked_to_the_first(client):
    assert submit(client).status_code == 302
    first = Objection.objects.get()
    repeat = submit(client, postcode="SE17EH", family_name="okonkwo-reyes ", contact_email="Nadia@Example.com")
    assert repeat.status_code == 302
    assert Objection.objects.count() == 1
    first.refresh_from_db()
    assert first.repeat_count == 1 and first.last_repeat_at is not None
    done = client.get(DONE).content.decode()
    assert first.reference not in done  # the first case's reference is never shown to a later requester
    repeated = AuditEvent.objects.get(action="objection.repeated", target_id=str(first.pk))
    assert repeated.detail["acknowledgement"] in done  # IG can find the repeat by the reference it was given
    assert repeated.detail["acknowledgement"] in mail.outbox[1].body  # and the requester was sent it


def test_a_repeat_by_the_same_phone_number_is_linked_too(client):
    assert submit(client, contact_email="", contact_phone="020 7946 0000").status_code == 302
    assert submit(client, contact_email="", contact_phone="02079460000").status_code == 302
    assert Objection.objects.get().repeat_count == 1


def letters_without_references():
    """(to, subject, body) of each email sent, with its reference taken out."""
    return [
        tuple(re.sub(r"OPT-[A-Z2-9]{8}", "REFERENCE", text) for text in (",".join(m.to), m.subject, m.body))
        for m in mail.outbox
    ]


def test_finding_4_a_repeat_request_is_acknowledged_exactly_as_a_new_one():
    """Whether the person named has objected already cannot be told from what the form sends back."""
    assert submit(Client(), contact_email="asker@example.com").status_code == 302  # nobody had: a new case
    assert submit(Client(), contact_email="asker@example.com").status_code == 302  # now they have: a repeat
    assert Objection.objects.get().repeat_count == 1  # it was the repeat path
    new, repeat = letters_without_references()
    assert new == repeat and new[0] == "asker@example.com"


def test_finding_4_strangers_cannot_inflate_the_repeat_count():
    """Someone who knows a person's name, birth date and postcode, but not their contact details, does not
    touch that person's case: their requests make a case of their own (verified by IG like any other)."""
    assert submit(Client()).status_code == 302
    first = Objection.objects.get()
    for _ in range(3):
        assert submit(Client(), contact_email="stranger@example.com").status_code == 302
    first.refresh_from_db()
    assert first.repeat_count == 0


def test_the_acknowledgement_of_a_repeat_names_only_what_was_typed_in_it():
    """Made from the request, not from the case it repeats: never the first requester's name."""
    submit(Client(), on_behalf="other", on_behalf_name="Sam Reyes", on_behalf_relationship="Son")
    submit(Client())  # the same person and contact details, asking for themselves: a repeat
    assert Objection.objects.get().repeat_count == 1
    assert "Sam Reyes" not in mail.outbox[1].body and "Dear Nadia Okonkwo-Reyes" in mail.outbox[1].body


def test_a_mail_failure_on_a_repeat_changes_nothing(client, monkeypatch):
    import smtplib

    assert submit(client).status_code == 302

    def broken(*args, **kwargs):
        raise smtplib.SMTPException("mail server down")

    monkeypatch.setattr("optout.actions.send_mail", broken)
    assert submit(client).status_code == 503
    assert Objection.objects.get().repeat_count == 0
    assert not AuditEvent.objects.filter(action="objection.repeated").exists()


def test_a_request_after_a_closed_one_opens_a_new_case(client):
    assert submit(client).status_code == 302
    Objection.objects.update(status=Objection.Status.WITHDRAWN)
    assert submit(client).status_code == 302
    assert Objection.objects.count() == 2


def test_csrf_is_enforced():
    client = Client(enforce_csrf_checks=True)
    assert client.post(FORM, VALID).status_code == 403
    assert not Objection.objects.exists()

    client.get(FORM)
    token = client.cookies["csrftoken"].value
    response = client.post(FORM, {**VALID, "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == CHECK
    assert client.post(CHECK).status_code == 403  # "Send request" needs the token too
    assert not Objection.objects.exists()
    response = client.post(CHECK, {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == DONE
    assert Objection.objects.count() == 1


def test_a_mail_failure_loses_nothing_typed_and_stores_nothing(client, monkeypatch):
    import smtplib

    def broken(*args, **kwargs):
        raise smtplib.SMTPException("mail server down")

    monkeypatch.setattr("optout.actions.send_mail", broken)
    response = submit(client)
    assert response.status_code == 503
    body = response.content.decode()
    assert "could not send your request" in body and '<a href="#send-request">Sorry' in body  # in the summary
    assert "Okonkwo" in body  # what they typed is still there, on "Check your answers"
    assert not Objection.objects.exists()
    # Kept to try again: once the mail goes, the same answers are sent.
    monkeypatch.undo()
    assert client.post(CHECK)["Location"] == DONE
    assert Objection.objects.get().family_name == "Okonkwo-Reyes"


def page_of(response):
    return lxml.html.fromstring(response.content.decode())


def summary_rows(response):
    """{key: value} of "Check your answers", and the "Change" links' hrefs in order."""
    page = page_of(response)
    rows = page.xpath('//dl[@class="nhsuk-summary-list"]/div[@class="nhsuk-summary-list__row"]')
    values = {
        row.xpath("string(dt)").strip(): " ".join(row.xpath('string(dd[@class="nhsuk-summary-list__value"])').split())
        for row in rows
    }
    return values, [row.xpath(".//a/@href")[0] for row in rows]


@pytest.mark.hazard("H-06")
def test_finding_the_first_post_only_leads_to_check_your_answers_and_stores_nothing(client):
    """Before: the form's POST stored the request and sent the letter at once, unchecked. Now the requester reads
    back what IG will match a record on, and only "Send request" stores it."""
    response = client.post(FORM, {**VALID, "nhs_number": "9999000002", "contact_phone": "020 7946 0000"})
    assert response.status_code == 302 and response["Location"] == CHECK  # nothing about the patient in the URL
    assert not Objection.objects.exists() and mail.outbox == [] and not AuditEvent.objects.exists()

    check = client.get(CHECK)
    assert check.status_code == 200
    assert "<title>Check your answers" in check.content.decode()
    values, changes = summary_rows(check)
    assert values == {
        "Who the request is for": "Myself",
        "Given name": "Nadia",
        "Family name": "Okonkwo-Reyes",
        "Date of birth": "3 April 1961",
        "NHS number": "999 900 0002",
        "Postcode": "SE1 7EH",
        "Area of London": "South East London",
        "Email address": "nadia@example.com",
        "Phone number": "020 7946 0000",
        "Why you object": "I would rather each service kept its own notes.",
    }
    assert all(href.startswith(f"{FORM}#id_") for href in changes)  # back to the form, by a fragment only
    assert f'action="{CHECK}"' in check.content.decode()

    assert client.post(CHECK)["Location"] == DONE
    objection = Objection.objects.get()
    assert (objection.nhs_number, objection.contact_phone) == ("9999000002", "020 7946 0000")
    assert len(mail.outbox) == 1


def test_dates_read_as_a_letter_would_put_them(client):
    client.post(FORM, {**VALID, "dob_day": "15", "dob_month": "3", "dob_year": "1984", "nhs_number": ""})
    values, _ = summary_rows(client.get(CHECK))
    assert values["Date of birth"] == "15 March 1984" and values["NHS number"] == "Not given"


@pytest.mark.parametrize("method", ["get", "post"])
def test_check_your_answers_without_answers_goes_to_the_form(client, method):
    response = getattr(client, method)(CHECK)
    assert response.status_code == 302 and response["Location"] == FORM
    assert not Objection.objects.exists()


def test_answers_are_sent_once_and_then_forgotten(client):
    assert submit(client)["Location"] == DONE
    assert "optout_answers" not in client.session
    assert client.get(CHECK)["Location"] == FORM  # nothing to check any more
    assert client.post(CHECK)["Location"] == FORM  # nor to send again
    assert Objection.objects.count() == 1 and len(mail.outbox) == 1
    assert 'value="Okonkwo-Reyes"' not in client.get(FORM).content.decode()  # a fresh form for a next request


@pytest.mark.hazard("H-06")
def test_change_goes_back_to_the_form_filled_in_and_sends_the_changed_answer(client):
    client.post(FORM, VALID)
    form = client.get(FORM).content.decode()
    assert 'value="Okonkwo-Reyes"' in form and 'value="SE1 7EH"' in form and 'value="1961"' in form
    assert re.search(r'value="SEL" checked', form) and re.search(r'value="self" checked', form)

    assert client.post(FORM, {**VALID, "postcode": "N1 9GU", "region": "NCL"})["Location"] == CHECK
    values, _ = summary_rows(client.get(CHECK))
    assert (values["Postcode"], values["Area of London"]) == ("N1 9GU", "North Central London")
    client.post(CHECK)
    assert (Objection.objects.get().postcode, Objection.objects.get().region) == ("N19GU", "NCL")


@pytest.mark.hazard("H-06")
def test_finding_asking_for_myself_keeps_nothing_typed_in_the_on_behalf_fields(client):
    """Before: the on-behalf fields showed (and were posted) under "Myself" too. Typed in and then "Myself" chosen,
    they are in no answer, no check page, no form filled in again, no case and no letter."""
    typed = {"on_behalf": "self", "on_behalf_name": "Sam Reyes", "on_behalf_relationship": "Son"}
    assert client.post(FORM, {**VALID, **typed})["Location"] == CHECK
    answers = client.session["optout_answers"]
    assert (answers["on_behalf_name"], answers["on_behalf_relationship"]) == ("", "")
    check = client.get(CHECK)
    values, _ = summary_rows(check)
    assert "Your full name" not in values and "Your relationship to them" not in values
    assert "Sam Reyes" not in check.content.decode()
    assert "Sam Reyes" not in client.get(FORM).content.decode()
    client.post(CHECK)
    objection = Objection.objects.get()
    assert (objection.on_behalf_name, objection.on_behalf_relationship) == ("", "")
    assert "Sam Reyes" not in mail.outbox[0].body and "Dear Nadia Okonkwo-Reyes" in mail.outbox[0].body


def test_asking_for_someone_else_shows_who_is_asking_on_check_your_answers(client):
    client.post(FORM, {**VALID, "on_behalf": "other", "on_behalf_name": "Sam Reyes", "on_behalf_relationship": "Son"})
    values, changes = summary_rows(client.get(CHECK))
    assert values["Who the request is for"] == "Someone else, on their behalf"
    assert (values["Your full name"], values["Your relationship to them"]) == ("Sam Reyes", "Son")
    assert changes[1:3] == [f"{FORM}#id_on_behalf_name", f"{FORM}#id_on_behalf_relationship"]


def conditional_reveal(response):
    """The "Someone else" radio, and the reveal it controls."""
    page = page_of(response)
    (other,) = page.xpath('//input[@name="on_behalf"][@value="other"]')
    (myself,) = page.xpath('//input[@name="on_behalf"][@value="self"]')
    assert myself.get("aria-controls") is None
    (reveal,) = page.xpath(f'//*[@id="{other.get("aria-controls")}"]')
    return other, reveal


def test_finding_the_on_behalf_fields_are_a_conditional_reveal_under_someone_else(client):
    """Before: "Your full name" and "Your relationship to them" stood on their own, under "Myself" too."""
    other, reveal = conditional_reveal(client.get(FORM))
    assert other.xpath('ancestor::div[@data-module="nhsuk-radios"]')
    assert reveal.get("class").split() == ["nhsuk-radios__conditional", "nhsuk-radios__conditional--hidden"]
    assert reveal.xpath('parent::div[@class="nhsuk-radios"]')  # beside its option, as the frontend expects
    assert [i.get("id") for i in reveal.xpath(".//input")] == ["id_on_behalf_name", "id_on_behalf_relationship"]
    assert len(page_of(client.get(FORM)).xpath('//input[@name="on_behalf_name"]')) == 1  # nowhere else


def test_the_reveal_is_open_when_someone_else_is_chosen_and_its_errors_show_inside_it(client):
    response = client.post(FORM, {**VALID, "on_behalf": "other"})
    assert response.status_code == 400
    _, reveal = conditional_reveal(response)
    assert reveal.get("class") == "nhsuk-radios__conditional"
    assert reveal.xpath('.//*[@id="id_on_behalf_name-error"]') and reveal.xpath(
        './/*[@id="id_on_behalf_relationship-error"]'
    )
    # Chosen "Myself", with an error elsewhere: closed, and no error for fields that do not apply.
    response = client.post(FORM, {**VALID, "on_behalf": "self", "given_name": ""})
    _, reveal = conditional_reveal(response)
    assert "nhsuk-radios__conditional--hidden" in reveal.get("class")
    assert field_error(response.content.decode(), "id_on_behalf_name") is None


def test_finding_each_area_of_london_names_its_boroughs(client):
    """Before: five region names and nothing to say which one a patient is in."""
    page = page_of(client.get(FORM))
    assert WHICH_AREA in page.xpath('string(//div[@id="id_region-hint"])')
    for region in Region:
        (radio,) = page.xpath(f'//input[@name="region"][@value="{region.value}"]')
        (hint,) = page.xpath(f'//*[@id="{radio.get("aria-describedby")}"]')
        assert hint.text_content().strip() == ", ".join(BOROUGHS[region])


def test_the_check_step_is_not_counted_against_the_limit_yet_cannot_send_twice(settings):
    settings.OPTOUT_REQUESTS_PER_HOUR = 1
    client = Client(REMOTE_ADDR="203.0.113.9")
    assert submit(client)["Location"] == DONE  # one form POST: within the limit, sent
    assert client.post(CHECK)["Location"] == FORM  # the send cannot be replayed without another form POST
    assert submit(client, family_name="Again").status_code == 429  # which the limit refuses
    assert Objection.objects.count() == 1


def test_the_promised_reply_time_is_the_setting(client, settings):
    settings.OPTOUT_RESPONSE_DAYS = 20
    assert "usually within 20 days" in client.get(FORM).content.decode()
    submit(client)
    done = client.get(DONE).content.decode()
    assert "usually within 20 days" in done and "30 days" not in done
    (acknowledgement,) = mail.outbox
    assert "usually within 20 days" in acknowledgement.body and "30 days" not in acknowledgement.body
