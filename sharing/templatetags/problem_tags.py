"""The "Report a problem" link on each entry of a record page: `{% report_problem_url entry %}` and the entry's
words for the link's visually hidden text, `{{ entry|entry_headline }}`. No queries: they read the entry's own
fields (the naming rule is sharing.problems')."""

from functools import lru_cache

from django import template
from django.urls import get_script_prefix, reverse

from sharing import problems

register = template.Library()


@register.simple_tag
def report_problem_url(entry) -> str:
    return _report_problem_path(entry.patient_id, get_script_prefix()) + f"{problems.entry_name(entry)}/"


@lru_cache(maxsize=1024)
def _report_problem_path(patient_id, script_prefix) -> str:
    """The patient's report-a-problem URLs up to the entry's name, reversed once per patient (a record page draws
    hundreds of links; an entry's name, "medications-123", needs no quoting)."""
    return reverse("record-report-problem", args=[patient_id, "-"]).removesuffix("-/")


@register.filter
def entry_headline(entry) -> str:
    return problems.headline(entry)
