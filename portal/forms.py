"""Break glass: a coded reason, free text when the code is 'Other', and an explicit confirmation. The name search
as an ambulance crew can fill it in: an age or an age range instead of a date of birth, a postcode, sex."""

from django import forms

from patients import crew_search
from patients.forms import NameSearchForm
from patients.models import Sex
from sharing.models import BreakGlass


class BreakGlassForm(forms.Form):
    reason_code = forms.ChoiceField(
        label="Why do you need emergency access?",
        choices=BreakGlass.ReasonCode.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Select why you need emergency access."},
    )
    reason_text = forms.CharField(
        label="Give details",
        help_text="Required when the reason is 'Other'. This is reviewed by information governance.",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=1000,
        required=False,
    )
    confirm = forms.BooleanField(
        label="I confirm I need this record to care for the patient now, and that my access will be reviewed.",
        error_messages={"required": "Confirm that you need emergency access and that it will be reviewed."},
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("reason_code") == BreakGlass.ReasonCode.OTHER and not cleaned.get("reason_text", "").strip():
            self.add_error("reason_text", "Give the reason you need emergency access.")
        return cleaned


def _age_field(label, what, **options):
    return forms.IntegerField(
        label=label,
        min_value=0,
        max_value=crew_search.OLDEST_AGE,
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "numeric"}),
        error_messages={
            "invalid": f"Enter {what} as a whole number, for example 70",
            "min_value": f"{what.capitalize()} must be 0 or more",
            "max_value": f"{what.capitalize()} must be {crew_search.OLDEST_AGE} or less",
        },
        **options,
    )


class NameAndAgeSearchForm(NameSearchForm):
    """The name search with what a crew can give when nobody knows the date of birth (patients.crew_search).

    A date of birth searches that exact date, as before; otherwise an age ("about 70": 5 years either side) or
    an age range is needed — never a name alone (H-06). A range is at most `crew_search.AGE_RANGE_WIDEST`
    years wide, for the same reason."""

    age = _age_field(
        "Or their age",
        "the age",
        help_text=f"About how old? For example, 70. Patients {crew_search.AGE_TOLERANCE_YEARS} years younger or "
        "older are found too.",
    )
    age_from = _age_field("From", "the youngest age")
    age_to = _age_field("To", "the oldest age")
    postcode = forms.CharField(
        label="Postcode (optional)",
        help_text="The full postcode or its first part, for example N19 5NF or N19.",
        max_length=10,
        required=False,
        error_messages={"max_length": "Enter a postcode like N19 5NF, or its first part like N19"},
    )
    sex = forms.ChoiceField(
        label="Sex (optional)",
        choices=[("", "Not known"), (Sex.FEMALE, "Female"), (Sex.MALE, "Male")],
        widget=forms.RadioSelect,
        required=False,
        error_messages={"invalid_choice": "Select female, male or not known"},
    )

    age_range_hint = (
        f"If you are not sure of their age: at most {crew_search.AGE_RANGE_WIDEST} years apart, for example 60 to 80."
    )

    def _typed(self, *names):
        return any(self.cleaned_data.get(name) not in (None, "") or name in self.errors for name in names)

    def clean(self):
        dob_typed = self._typed("dob_day", "dob_month", "dob_year")
        age_typed, range_typed = self._typed("age"), self._typed("age_from", "age_to")
        if dob_typed:
            cleaned = super().clean()  # the date of birth's own rules and messages
        else:
            cleaned = super(NameSearchForm, self).clean()
            if not (age_typed or range_typed):
                message = "Enter the patient's date of birth, or their age or an age range"
                self.add_error(None, forms.ValidationError(message, code="dob"))
        family_name = cleaned.get("family_name", "")
        if family_name and not any(character.isalpha() for character in family_name):
            self.add_error("family_name", "Enter the family name in letters")
        if dob_typed and (age_typed or range_typed):
            self.add_error("age" if age_typed else "age_from", "Give the date of birth or an age, not both")
        elif age_typed and range_typed:
            self.add_error("age_from", "Give an age or an age range, not both")
        elif range_typed:
            self._clean_range(cleaned.get("age_from"), cleaned.get("age_to"))
        if cleaned.get("postcode"):
            postcode = crew_search.parse_postcode(cleaned["postcode"])
            if postcode is None:
                self.add_error("postcode", "Enter a postcode like N19 5NF, or its first part like N19")
            else:
                cleaned["postcode"] = postcode
        return cleaned

    def _clean_range(self, youngest, oldest):
        if "age_from" in self.errors or "age_to" in self.errors:
            return
        widest = crew_search.AGE_RANGE_WIDEST
        if youngest is None:
            self.add_error("age_from", "Enter the youngest age of the range")
        elif oldest is None:
            self.add_error("age_to", "Enter the oldest age of the range")
        elif youngest > oldest:
            self.add_error("age_to", "The oldest age must be the same as or more than the youngest")
        elif oldest - youngest > widest:
            self.add_error("age_to", f"Make the range {widest} years or less, for example 60 to 90")

    def search_terms(self) -> dict:
        """The valid form as `crew_search.find`'s arguments."""
        data = self.cleaned_data
        if data.get("date_of_birth"):
            ages = None
        elif data.get("age") is not None:
            ages = crew_search.Ages.about(data["age"])
        else:
            ages = crew_search.Ages.between(data["age_from"], data["age_to"])
        return {
            "family_name": data["family_name"],
            "given_name": data["given_name"],
            "born_on": data.get("date_of_birth"),
            "ages": ages,
            "postcode": data.get("postcode") or None,
            "sex": data.get("sex", ""),
        }
