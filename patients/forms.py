"""Patient search: by NHS number, or by family name and date of birth (given name optional)."""

import datetime

from django import forms

from .nhs_numbers import normalise, validate_nhs_number


class NhsNumberSearchForm(forms.Form):
    nhs_number = forms.CharField(
        label="NHS number",
        help_text="10 digits, for example 485 777 3456. Spaces are fine.",
        max_length=20,
        error_messages={"required": "Enter the patient's NHS number."},
    )

    def clean_nhs_number(self):
        value = self.cleaned_data["nhs_number"]
        validate_nhs_number(value)
        return normalise(value)


class NameSearchForm(forms.Form):
    family_name = forms.CharField(
        label="Family name",
        help_text="The start of the name is enough.",
        max_length=100,
        error_messages={"required": "Enter the patient's family name."},
    )
    given_name = forms.CharField(label="Given name (optional)", max_length=100, required=False)
    dob_day = forms.IntegerField(label="Day", min_value=1, max_value=31, required=False)
    dob_month = forms.IntegerField(label="Month", min_value=1, max_value=12, required=False)
    dob_year = forms.IntegerField(label="Year", min_value=1880, max_value=2200, required=False)

    def clean(self):
        cleaned = super().clean()
        parts = [cleaned.get("dob_day"), cleaned.get("dob_month"), cleaned.get("dob_year")]
        if any(name in self.errors for name in ("dob_day", "dob_month", "dob_year")):
            for name in ("dob_day", "dob_month", "dob_year"):
                self.errors.pop(name, None)
            self.add_error(None, forms.ValidationError("Date of birth must be a real date.", code="dob"))
            return cleaned
        if not all(parts):
            self.add_error(None, forms.ValidationError("Enter the patient's date of birth.", code="dob"))
            return cleaned
        try:
            date_of_birth = datetime.date(parts[2], parts[1], parts[0])
        except ValueError:
            self.add_error(None, forms.ValidationError("Date of birth must be a real date.", code="dob"))
            return cleaned
        if date_of_birth > datetime.date.today():
            self.add_error(None, forms.ValidationError("Date of birth must be in the past.", code="dob"))
            return cleaned
        cleaned["date_of_birth"] = date_of_birth
        return cleaned

    @property
    def date_of_birth_error(self):
        """The date's error message, shown on the date-input group (NHS.UK date input pattern)."""
        for error in self.non_field_errors().as_data():
            if error.code == "dob":
                return error.messages[0]
        return ""
