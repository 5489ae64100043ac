"""The "Report a problem" link on each entry of a record page: `{% report_problem_url entry %}` and the entry's
words for the link's visually hidden text, `{{ entry|entry_headline }}`. No queries: they read the entry's own
fields (the naming rule is sharing.problems')."""

from django import template
from django.urls import reverse

from sharing import problems

register = template.Library()


@register.simple_tag
def report_problem_url(entry) -> str:
    return reverse("record-report-problem", args=[entry.patient_id, problems.entry_name(entry)])


@register.filter
def entry_headline(entry) -> str:
    return problems.headline(entry)
