"""The record's entry lists and the parts every record page shares, drawn with Jinja2.

Why: a heavy patient's summary draws ~300 entries through ~2,300 Django template includes and ~1,700 cells, and
that was 70% of the page's time (issue 19's profile); Jinja2 compiles templates to Python, so the same HTML costs a
fraction. Only the parts drawn once per entry are Jinja2 (templates/**/*.jinja); the pages stay Django templates
and call them through portal/templatetags/record_parts.py, so each part (an entry's date, its source, a result's
flag) is written once and every page draws it the same way (H-04, H-09).

The filters are the Django ones the pages use, with Django's meaning: `date` shows an aware time in
Europe/London (as the Django filter does), `default` is not needed (write `value or "Not recorded"`).
"""

import datetime
from functools import cache

import jinja2
from django.conf import settings
from django.template import defaultfilters
from django.urls import NoReverseMatch, reverse
from django.utils import dates, translation
from django.utils.encoding import force_str
from django.utils.hashable import make_hashable
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime

from patients.templatetags import record_tags
from sharing.templatetags import attachment_tags, problem_tags, result_tags


def date(value, format_string):
    """Django's `date` filter, with the local time Django's templates give it first: "" for no date.

    The three formats the record draws ~1,000 times a page ("c", "j M Y", "j M Y, H:i") are written here
    directly, with the month names of the active language, as Django would write them (tests/portal/test_jinja.py
    holds them to Django's output); every other format is Django's."""
    if value is None or value == "" or isinstance(value, jinja2.Undefined):
        return ""
    value = template_localtime(value)
    if isinstance(value, datetime.date):
        if format_string == "c":
            return value.isoformat()
        if format_string == "j M Y" or (format_string == "j M Y, H:i" and isinstance(value, datetime.datetime)):
            day = f"{value.day} {_months(translation.get_language())[value.month]} {value.year:04d}"
            return day if format_string == "j M Y" else f"{day}, {value.hour:02d}:{value.minute:02d}"
    return defaultfilters.date(value, format_string)


@cache
def _months(language) -> tuple:
    """Django's "M" (three-letter month) names in a language, read once."""
    with translation.override(language):
        return ("", *(str(dates.MONTHS_3[month]).title() for month in range(1, 13)))


def url(name, *args):
    """A URL by name, or "" where it has none for these arguments (as `{% url … as x %}` gives)."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def cell(heading, part, caller):
    """One column of a responsive table, as the Django `{% cell %}` tag draws it: `{% call cell("Status", part) %}…`.

    With part "head" the column header (the body is not drawn at all); otherwise the cell with the heading the
    narrow-screen layout shows beside it, from the same strings as the tag's."""
    if part == "head":
        return format_html(record_tags.HEADER_CELL, heading)
    return format_html(record_tags.CELL, heading, caller())  # caller() is markup: Jinja2 escaped what it drew


def display(entry, field_name: str):
    """A coded field's label, as `entry.get_<field>_display()` gives it, from the field's choices read once."""
    value = getattr(entry, field_name)
    label = _choices(type(entry), field_name).get(make_hashable(value), value)
    return force_str(label, strings_only=True)


@cache
def _choices(model, field_name) -> dict:
    return dict(make_hashable(model._meta.get_field(field_name).flatchoices))


def as_django_escapes(value):
    """Text with quotes escaped as Django escapes them (&#x27; and &quot;, where markupsafe writes &#39; and &#34;),
    so a page reads the same throughout; everything else is left to Jinja2's own (faster) escaping."""
    if value.__class__ is str and ("'" in value or '"' in value):
        return escape(value)
    return value


FILTERS = {
    "date": date,
    "display": display,
    "capfirst": defaultfilters.capfirst,
    "linebreaks": lambda value: defaultfilters.linebreaks_filter(value, autoescape=True),
    "linebreaksbr": lambda value: defaultfilters.linebreaksbr(value, autoescape=True),
    "filesizeformat": defaultfilters.filesizeformat,
    "not_known": record_tags.not_known,
    "status_tag": record_tags.status_tag,
    "observation_category": record_tags.observation_category,
    "readings": record_tags.readings,
    "abnormality": result_tags.abnormality,
    "flagged_part": result_tags.flagged_part,
    "entry_headline": problem_tags.entry_headline,
    "attachment_label": attachment_tags.attachment_label,
    "opens_inline": attachment_tags.opens_inline,
}

GLOBALS = {
    "url": url,
    "cell": cell,
    "entry_layout": record_tags.entry_layout,
    "report_problem_url": problem_tags.report_problem_url,
}


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(settings.BASE_DIR / "templates"),
        autoescape=True,
        # Templates are read once per process in production, and again when changed while developing.
        auto_reload=settings.DEBUG,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.Undefined,  # a missing attribute draws nothing, as in Django templates
        finalize=as_django_escapes,
    )
    env.filters.update(FILTERS)
    env.globals.update(GLOBALS)
    return env


def macro(template: str, name: str):
    """A macro of a .jinja template, to call from Python: `macro("patients/record/parts.jinja", "source")`."""
    return getattr(environment().get_template(template).module, name)


def render(template: str, name: str, *args, **kwargs) -> SafeString:
    """A macro's HTML, safe for a Django template (Jinja2 escaped what it drew)."""
    return mark_safe(str(macro(template, name)(*args, **kwargs)))  # noqa: S308 - autoescaped by Jinja2
