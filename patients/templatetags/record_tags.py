"""Small presentational helpers for the record pages. No queries: they only format what views passed in."""

from django import template
from django.urls import reverse

register = template.Library()

NOT_KNOWN = "Not known"


@register.simple_tag
def record_url(category, patient):
    """The URL of one category's page of a patient's record: `{% record_url category patient %}`."""
    return reverse(f"record-{category.value}", args=[patient.pk])


@register.filter
def not_known(value):
    """Blank values (None, "", whitespace) read "Not known" rather than looking like an empty cell."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return NOT_KNOWN
    return value


@register.filter
def one_line(value):
    """A multi-line address on one line: "12 Mare Street, Hackney, London"."""
    return ", ".join(line.strip() for line in str(value or "").splitlines() if line.strip())


@register.filter
def label_lower(value):
    """Lower-case a heading for use mid-sentence, keeping acronyms: "CAMHS events" stays "CAMHS events"."""
    return " ".join(word if word.isupper() and len(word) > 1 else word.lower() for word in str(value).split(" "))


def _values(categories):
    return {c.strip() for c in categories.split(",")}


@register.filter
def of_categories(sections, categories):
    """Sections whose category value is in the comma-separated list, in their original order."""
    wanted = _values(categories)
    return [s for s in sections if s.category.value in wanted]


@register.filter
def without_categories(sections, categories):
    unwanted = _values(categories)
    return [s for s in sections if s.category.value not in unwanted]
