"""The public opt-out request, and a professional's record of an objection."""

import datetime
import re

from django import forms

from directory.models import Region
from directory.regions import WHICH_AREA, boroughs_of
from patients.nhs_numbers import normalise, validate_nhs_number

POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$")
ON_BEHALF_FIELDS = ("on_behalf_name", "on_behalf_relationship")


class HintedRadioSelect(forms.RadioSelect):
    """Radios with a hint under each option that has one (`hints`: value -> text), as NHS.UK radio item hints;
    _components/radios.html shows them."""

    def __init__(self, *args, hints=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.hints = dict(hints or {})

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        option["hint"] = self.hints.get(str(value), "")
        return option


def region_radios():
    """Each region's radio names its boroughs, so a patient can tell which area is theirs."""
    return HintedRadioSelect(hints={region.value: boroughs_of(region) for region in Region})


class DateOfBirthMixin:
    """Three inputs (NHS.UK date input pattern) combined into one date, with one error for the group."""

    def clean_date_of_birth(self, cleaned):
        parts = [cleaned.get("dob_day"), cleaned.get("dob_month"), cleaned.get("dob_year")]
        if any(name in self.errors for name in ("dob_day", "dob_month", "dob_year")) or not all(parts):
            for name in ("dob_day", "dob_month", "dob_year"):
                self.errors.pop(name, None)
            self.add_error("dob_day", "Enter a real date of birth, for example 15 3 1984.")
            return
        try:
            date_of_birth = datetime.date(parts[2], parts[1], parts[0])
        except ValueError:
            self.add_error("dob_day", "Enter a real date of birth, for example 15 3 1984.")
            return
        if date_of_birth > datetime.date.today():
            self.add_error("dob_day", "Date of birth must be in the past.")
            return
        cleaned["date_of_birth"] = date_of_birth


class ObjectionRequestForm(DateOfBirthMixin, forms.Form):
    on_behalf = forms.ChoiceField(
        label="Who is this request for?",
        choices=[("self", "Myself"), ("other", "Someone else, on their behalf")],
        widget=forms.RadioSelect,
        error_messages={"required": "Select who this request is for."},
    )
    on_behalf_name = forms.CharField(label="Your full name", max_length=200, required=False)
    on_behalf_relationship = forms.CharField(
        label="Your relationship to them",
        help_text="For example, parent or lasting power of attorney.",
        max_length=100,
        required=False,
    )
    given_name = forms.CharField(
        label="Given name", max_length=100, error_messages={"required": "Enter the patient's given name."}
    )
    family_name = forms.CharField(
        label="Family name", max_length=100, error_messages={"required": "Enter the patient's family name."}
    )
    dob_day = forms.IntegerField(label="Day", min_value=1, max_value=31, required=False)
    dob_month = forms.IntegerField(label="Month", min_value=1, max_value=12, required=False)
    dob_year = forms.IntegerField(label="Year", min_value=1880, max_value=2200, required=False)
    nhs_number = forms.CharField(
        label="NHS number (optional)",
        help_text="If you know it. It is 10 digits, for example 485 777 3456.",
        max_length=20,
        required=False,
    )
    postcode = forms.CharField(
        label="Postcode", max_length=10, error_messages={"required": "Enter the patient's postcode."}
    )
    contact_email = forms.EmailField(
        label="Email address",
        required=False,
        error_messages={"invalid": "Enter an email address like name@example.com."},
    )
    contact_phone = forms.CharField(label="Phone number", max_length=30, required=False)
    region = forms.ChoiceField(
        label="Which area of London is this request for?",
        help_text=WHICH_AREA,
        choices=Region.choices,
        widget=region_radios(),
        error_messages={"required": "Select the area of London."},
    )
    reason = forms.CharField(
        label="Why do you object? (optional)",
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=2000,
        required=False,
    )
    # A field people cannot see: bots fill it in.
    website = forms.CharField(required=False, label="Leave this empty")

    def clean_nhs_number(self):
        value = self.cleaned_data["nhs_number"]
        if not value.strip():
            return ""
        validate_nhs_number(value)
        return normalise(value)

    def clean_postcode(self):
        value = self.cleaned_data["postcode"].upper().strip()
        if not POSTCODE.match(value):
            raise forms.ValidationError("Enter a real postcode, like SE1 7EH.")
        return value

    def clean(self):
        cleaned = super().clean()
        self.clean_date_of_birth(cleaned)
        if cleaned.get("on_behalf") == "other":
            if not cleaned.get("on_behalf_name", "").strip():
                self.add_error("on_behalf_name", "Enter your full name.")
            if not cleaned.get("on_behalf_relationship", "").strip():
                self.add_error("on_behalf_relationship", "Enter your relationship to the patient.")
        else:
            # Typed in before "Myself" was chosen (the fields are hidden then): not the requester's, never kept.
            cleaned.update(dict.fromkeys(ON_BEHALF_FIELDS, ""))
        no_contact = not cleaned.get("contact_email") and not cleaned.get("contact_phone", "").strip()
        if no_contact and "contact_email" not in self.errors:
            self.add_error("contact_email", "Enter an email address or a phone number so we can reply.")
        return cleaned

    @property
    def is_bot(self):
        return bool(self.cleaned_data.get("website"))

    def objection_details(self):
        data = self.cleaned_data
        return {
            "given_name": data["given_name"].strip(),
            "family_name": data["family_name"].strip(),
            "date_of_birth": data["date_of_birth"],
            "nhs_number": data["nhs_number"],
            "postcode": data["postcode"],
            "contact_email": data["contact_email"],
            "contact_phone": data["contact_phone"].strip(),
            "region": data["region"],
            "reason": data["reason"].strip(),
            "on_behalf_name": data["on_behalf_name"].strip(),
            "on_behalf_relationship": data["on_behalf_relationship"].strip(),
        }


class ProfessionalObjectionForm(forms.Form):
    how_told = forms.ChoiceField(
        label="How did the patient tell you?",
        choices=[
            ("in-person", "In person"),
            ("telephone", "By telephone"),
            ("letter", "In writing"),
            ("representative", "Through their representative"),
        ],
        widget=forms.RadioSelect,
        error_messages={"required": "Select how the patient told you."},
    )
    reason = forms.CharField(
        label="The patient's reason, in their words",
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=2000,
        error_messages={"required": "Enter the patient's reason, or 'No reason given'."},
    )
    region = forms.ChoiceField(
        label="Region",
        help_text=WHICH_AREA,
        choices=Region.choices,
        widget=region_radios(),
        error_messages={"required": "Select the region."},
    )
