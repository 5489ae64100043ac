"""The record's Jinja2 parts (portal/jinja.py) draw what the Django templates drew: the same dates in Europe/London,
the same escaping, the same table cells, and nothing of a patient's entry unescaped."""

import datetime
import zoneinfo

import pytest
from django.template import Context, Template, defaultfilters
from django.utils import timezone, translation
from django.utils.html import escape
from hypothesis import given, settings
from hypothesis import strategies as st

from patients.categories import REGISTRY, Category
from portal import jinja
from tests import factories

FORMATS = ["c", "j M Y", "j M Y, H:i"]
ZONES = [datetime.UTC, zoneinfo.ZoneInfo("Europe/London"), zoneinfo.ZoneInfo("America/New_York")]


def django_date(value, format_string):
    """What `{{ value|date:format }}` writes in a Django template (local time first, as the template engine does)."""
    return Template("{{ value|date:format }}").render(Context({"value": value, "format": format_string}))


@pytest.mark.hazard("H-09")
@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime.datetime(1, 1, 2),
        max_value=datetime.datetime(9999, 12, 30),
        timezones=st.sampled_from(ZONES),
    ),
    format_string=st.sampled_from(FORMATS),
)
def test_an_aware_time_is_written_as_django_writes_it_in_london_time(moment, format_string):
    assert jinja.date(moment, format_string) == django_date(moment, format_string)


@pytest.mark.hazard("H-09")
def test_a_time_just_after_midnight_in_summer_is_the_london_day_not_the_utc_one():
    moment = datetime.datetime(2026, 6, 30, 23, 30, tzinfo=datetime.UTC)  # 00:30 on 1 July in London
    assert jinja.date(moment, "j M Y, H:i") == "1 Jul 2026, 00:30"
    assert jinja.date(moment, "c") == "2026-07-01T00:30:00+01:00"


@pytest.mark.hazard("H-09")
@settings(max_examples=100, deadline=None)
@given(day=st.dates(), format_string=st.sampled_from(["c", "j M Y"]))
def test_a_date_without_a_time_is_written_as_django_writes_it(day, format_string):
    assert jinja.date(day, format_string) == django_date(day, format_string)


def test_no_date_is_blank_and_other_formats_are_djangos():
    moment = timezone.make_aware(datetime.datetime(2026, 3, 8, 9, 5))
    assert jinja.date(None, "j M Y") == "" and jinja.date("", "c") == ""
    assert jinja.date(moment, "l jS F Y") == defaultfilters.date(timezone.localtime(moment), "l jS F Y")
    assert jinja.date(moment, "l jS F Y") == "Sunday 8th March 2026"


def test_month_names_are_the_active_languages():
    moment = timezone.make_aware(datetime.datetime(2026, 3, 8, 9, 5))
    with translation.override("fr"):
        assert jinja.date(moment, "j M Y") == django_date(moment, "j M Y") == "8 Mar 2026"
    with translation.override("de"):
        assert jinja.date(moment, "j M Y") == django_date(moment, "j M Y") == "8 Mär 2026"


@pytest.mark.hazard("H-04")
@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_text_is_escaped_as_django_escapes_it(text):
    template = jinja.environment().from_string("{{ text }}")
    assert template.render(text=text) == escape(text)


@pytest.mark.hazard("H-04")
def test_the_cell_is_the_django_tags_cell():
    django_cell = Template("{% load record_tags %}{% cell heading %}<b>{{ value }}</b>{% endcell %}")
    jinja_cell = jinja.environment().from_string("{% call cell(heading, part) %}<b>{{ value }}</b>{% endcall %}")
    for part in ("head", "row"):
        context = {"part": part, "value": "<i>", "heading": "Tom & Jerry's"}
        assert jinja_cell.render(**context) == django_cell.render(Context(context))


@pytest.mark.django_db
@pytest.mark.parametrize("model", [entry.model for entry in REGISTRY.values()], ids=lambda model: model.__name__)
def test_a_coded_fields_label_is_djangos_for_every_choice_and_an_unknown_code(model):
    entry = factories.ENTRY_FACTORIES[model].build()
    coded = [field for field in model._meta.concrete_fields if field.choices]
    assert coded, model
    for field in coded:
        for value in [*(choice for choice, _ in field.flatchoices), "not-a-code"]:
            setattr(entry, field.attname, value)
            assert jinja.display(entry, field.name) == getattr(entry, f"get_{field.name}_display")()


def test_a_url_that_does_not_reverse_is_blank():
    assert jinja.url("record-result-trend", "not-a-uuid", "") == ""
    assert jinja.url("home") == "/"


@pytest.mark.hazard("H-04")
@pytest.mark.django_db
def test_an_entry_that_holds_markup_is_shown_as_text_in_the_list_and_its_parts():
    organisation = factories.OrganisationFactory(name='<img src=x onerror="alert(1)">', short_name="")
    medication = factories.MedicationFactory(name="<script>alert(1)</script>", source_organisation=organisation)
    html = jinja.render(
        "patients/entries/list.jinja", "entry_list", Category.MEDICATIONS, [medication], medication.patient
    )
    assert "<script>" not in html and "<img" not in html
    assert escape(medication.name) in html and escape(organisation.name) in html
    part = Template('{% load record_parts %}{% record_part "organisation" organisation %}')
    assert part.render(Context({"organisation": organisation})) == escape(organisation.name)


@pytest.mark.django_db
def test_a_missing_attribute_draws_nothing_as_in_django_templates():
    template = jinja.environment().from_string("[{{ entry.no_such_field }}]{% if entry.no_such_field %}x{% endif %}")
    assert template.render(entry=factories.MedicationFactory()) == "[]"
