"""The filter forms of the record's lists, read from the query string (GET: the URL is the filters' state).

Whatever arrives, the answer is a page: a value the form cannot read is a field error, never a 500 and never
quietly "no filter". The choices are given by the view from the access decision (`sharing.filters.organisations`),
so an organisation whose entries the viewer may not see is never offered, and naming one is an error.
"""

from django import forms

from patients.categories import Category
from sharing import filters as record_filters
from sharing import timeline

DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d %m %Y", "%d.%m.%Y"]
DATE_HINT = "For example, 31/3/2024"


class DateInput(forms.DateInput):
    input_type = "date"


class DateField(forms.DateField):
    """A date typed in any of DATE_FORMATS (a browser without a date picker sends what was typed) and shown back
    as the ISO date a date input needs; a value it cannot read is shown back as it was typed."""

    def prepare_value(self, value):
        if isinstance(value, str):
            try:
                parsed = self.to_python(value)
            except forms.ValidationError:
                return value
            return parsed.isoformat() if parsed else value
        return super().prepare_value(value)


def _date_field(label):
    return DateField(
        label=label,
        required=False,
        input_formats=DATE_FORMATS,
        help_text=DATE_HINT,
        widget=DateInput(format="%Y-%m-%d"),
        error_messages={"invalid": f"Enter a real '{label.lower()}' date, like 31/3/2024"},
    )


class RecordFilterForm(forms.Form):
    """A category page's filters: date range, source organisation, and where its model has them, status and text."""

    date_from = _date_field("From")
    date_to = _date_field("To")
    organisation = forms.ChoiceField(
        label="Source organisation",
        required=False,
        error_messages={"invalid_choice": "Select a source organisation from the list"},
    )
    status = forms.ChoiceField(
        label="Status", required=False, error_messages={"invalid_choice": "Select a status from the list"}
    )
    q = forms.CharField(
        label="Search the title and text",
        required=False,
        max_length=200,
        error_messages={"max_length": "Search for 200 characters or fewer"},
    )

    def __init__(self, data, *, organisations, category: Category | None = None):
        super().__init__(data)
        self.organisation_ids = {organisation.ods_code: organisation.pk for organisation in organisations}
        self.fields["organisation"].choices = [("", "All organisations")] + [
            (organisation.ods_code, organisation.name) for organisation in organisations
        ]
        statuses = record_filters.status_choices(category) if category else []
        if statuses:
            self.fields["status"].choices = [("", "Any status"), *statuses]
        else:
            del self.fields["status"]
        if category is None or not record_filters.searches_text(category):
            del self.fields["q"]

    def _clean_date(self, name):
        day = self.cleaned_data.get(name)
        if day is not None and not record_filters.EARLIEST_YEAR <= day.year <= record_filters.LATEST_YEAR:
            raise forms.ValidationError(
                f"Enter a date between {record_filters.EARLIEST_YEAR} and {record_filters.LATEST_YEAR}"
            )
        return day

    def clean_date_from(self):
        return self._clean_date("date_from")

    def clean_date_to(self):
        return self._clean_date("date_to")

    def clean_q(self):
        text = " ".join(self.cleaned_data.get("q", "").split())
        if len(text.split()) > record_filters.MAX_WORDS:
            raise forms.ValidationError(f"Search for {record_filters.MAX_WORDS} words or fewer")
        return text

    def clean(self):
        cleaned = super().clean()
        date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
        if date_from and date_to and date_to < date_from:
            self.add_error("date_to", "The 'to' date must be the same as or after the 'from' date")
        return cleaned

    def filters(self) -> record_filters.Filters:
        """The valid form's filters (call after is_valid())."""
        cleaned = self.cleaned_data
        return record_filters.Filters(
            date_from=cleaned.get("date_from"),
            date_to=cleaned.get("date_to"),
            organisation_id=self.organisation_ids.get(cleaned.get("organisation") or ""),
            status=cleaned.get("status") or "",
            text=cleaned.get("q") or "",
            categories=tuple(Category(value) for value in cleaned.get("category") or ()),
        )


class TimelineFilterForm(RecordFilterForm):
    """The timeline's: which categories (none ticked: all), the source organisation and the date range."""

    category = forms.MultipleChoiceField(
        label="Categories",
        required=False,
        choices=[(category.value, category.label) for category in timeline.categories()],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Select categories from the list"},
    )

    field_order = ["category", "organisation", "date_from", "date_to"]

    def __init__(self, data, *, organisations):
        super().__init__(data, organisations=organisations)
