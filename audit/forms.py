"""Admin forms of the audit trail: the period a subject access letter covers (from and to, both optional: all
time; both days in UK time), and from when to check the seals."""

import datetime

from django import forms
from django.utils import timezone

EARLIEST, LATEST = datetime.date(1900, 1, 1), datetime.date(2999, 12, 31)


def day_field(label: str, help_text: str, which: str) -> forms.DateField:
    """An optional day, as an `<input type="date">` sends it (YYYY-MM-DD) or as people type it (2/12/2026)."""
    return forms.DateField(
        label=label,
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d", "%d/%m/%Y"],
        help_text=help_text,
        error_messages={"invalid": f"Enter the {which} day as a date, for example 2026-12-02."},
    )


class PeriodForm(forms.Form):
    """Dates as an `<input type="date">` sends them (YYYY-MM-DD), or as people type them (2/12/2026)."""

    since = day_field("From", "Leave empty for the record's whole history.", "first")
    until = day_field("To", "The last day included. Leave empty for up to today.", "last")

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        for name, day in (("since", since), ("until", until)):
            if day and not EARLIEST <= day <= LATEST:
                self.add_error(name, "Enter a day between 1900 and 2999.")
                return cleaned
        if since and until and since > until:
            raise forms.ValidationError("The first day is after the last day: swap them, or change one.")
        return cleaned

    def bounds(self) -> tuple[datetime.datetime | None, datetime.datetime | None]:
        """(from local midnight of the first day, to local midnight after the last), either None when open."""
        since, until = self.cleaned_data.get("since"), self.cleaned_data.get("until")
        start = timezone.make_aware(datetime.datetime.combine(since, datetime.time())) if since else None
        end = (
            timezone.make_aware(datetime.datetime.combine(until + datetime.timedelta(days=1), datetime.time()))
            if until
            else None
        )
        return start, end


class VerifyForm(forms.Form):
    """From when to check the audit trail's seals: empty for the whole trail (every sealed row read once)."""

    since = day_field(
        "Seals made from", "Leave empty to check the whole trail; on a large trail a recent period is quicker.", "first"
    )

    def clean_since(self):
        day = self.cleaned_data.get("since")
        if day and not EARLIEST <= day <= LATEST:
            raise forms.ValidationError("Enter a day between 1900 and 2999.")
        return day

    def since_moment(self):
        """The first day's start in UK time, or None."""
        day = self.cleaned_data.get("since")
        if day is None:
            return None
        return timezone.make_aware(datetime.datetime.combine(day, datetime.time()))
