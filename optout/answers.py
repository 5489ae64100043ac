"""A public request's answers between the form and "Send request": kept in the session (never in a URL), checked
again before anything is sent, and shown back to the requester as the rows of "Check your answers".

What IG later match a record on is exactly what the requester confirmed here (H-06: the wrong patient).
"""

from django.utils import dateformat

from directory.models import Region
from patients.nhs_numbers import format_nhs_number
from patients.postcodes import display_postcode

from .forms import ObjectionRequestForm

ANSWERS_SESSION_KEY = "optout_answers"
# The hidden field was filled in: the journey looks the same to a bot, but nothing is stored or sent.
BOT_SESSION_KEY = "optout_bot"
NOT_GIVEN = "Not given"


def keep(session, form: ObjectionRequestForm) -> None:
    """The valid form's cleaned answers, field by field (plain values, as the session stores JSON)."""
    session[ANSWERS_SESSION_KEY] = {name: form.cleaned_data[name] for name in form.fields if name != "website"}
    session[BOT_SESSION_KEY] = form.is_bot


def kept(session) -> dict:
    """The kept answers, to fill the form in again (a "Change" link); {} when there are none."""
    return session.get(ANSWERS_SESSION_KEY) or {}


def kept_form(session) -> ObjectionRequestForm | None:
    """The kept answers as a bound form, validated again (so what is sent is what passed the form's rules);
    None when there are none, or they no longer pass."""
    answers = kept(session)
    if not answers:
        return None
    form = ObjectionRequestForm(answers)
    return form if form.is_valid() else None


def from_a_bot(session) -> bool:
    return bool(session.get(BOT_SESSION_KEY))


def forget(session) -> None:
    session.pop(ANSWERS_SESSION_KEY, None)
    session.pop(BOT_SESSION_KEY, None)


def _row(key, value, field, change):
    return {"key": key, "value": value or NOT_GIVEN, "field": field, "change": change}


def summary(form: ObjectionRequestForm) -> list[dict]:
    """The rows of "Check your answers", in the form's order: key, value as the requester should read it
    ("15 March 1984", "SE1 7EH", "485 777 3456"), and the id of the field its "Change" link goes back to.
    Asking for themselves, there are no on-behalf rows."""
    details = form.objection_details()
    on_behalf = form.cleaned_data["on_behalf"] == "other"
    who = dict(form.fields["on_behalf"].choices)[form.cleaned_data["on_behalf"]]
    rows = [_row("Who the request is for", who, "id_on_behalf", "who the request is for")]
    if on_behalf:
        rows += [
            _row("Your full name", details["on_behalf_name"], "id_on_behalf_name", "your full name"),
            _row(
                "Your relationship to them",
                details["on_behalf_relationship"],
                "id_on_behalf_relationship",
                "your relationship to them",
            ),
        ]
    rows += [
        _row("Given name", details["given_name"], "id_given_name", "given name"),
        _row("Family name", details["family_name"], "id_family_name", "family name"),
        _row("Date of birth", dateformat.format(details["date_of_birth"], "j F Y"), "id_dob_day", "date of birth"),
        _row("NHS number", format_nhs_number(details["nhs_number"]), "id_nhs_number", "NHS number"),
        _row("Postcode", display_postcode(details["postcode"]), "id_postcode", "postcode"),
        _row("Area of London", Region(details["region"]).label, "id_region", "area of London"),
        _row("Email address", details["contact_email"], "id_contact_email", "email address"),
        _row("Phone number", details["contact_phone"], "id_contact_phone", "phone number"),
        _row("Why you object", details["reason"], "id_reason", "why you object"),
    ]
    return rows
