"""The entry lists: one frame (patients/entries/list.jinja) for every category, a cell partial per category,
and status colours from one table (record_tags.STATUS_TAGS)."""

import pathlib
import re

import pytest
from django.conf import settings
from django.template import Context, Template
from django.template.loader import get_template, render_to_string
from django.utils import dateformat, timezone
from django.utils.html import escape

from patients import models
from patients.categories import REGISTRY, Category
from patients.templatetags.record_tags import ENTRY_LAYOUTS, STATUS_TAGS, cells_template, entry_layout, status_tag
from portal import jinja
from sharing.record import Section
from tests import factories

TEMPLATES = pathlib.Path(settings.BASE_DIR) / "templates"

# What a clinician would look for first in each category's entry.
KEY_FIELD = {
    models.Appointment: "service",
    models.Condition: "name",
    models.Medication: "name",
    models.Alert: "text",
    models.Allergy: "substance",
    models.Result: "name",
    models.Letter: "title",
    models.CarePlan: "title",
    models.CareEvent: "title",
    models.Procedure: "name",
    models.Immunisation: "vaccine",
}


# Status tags


@pytest.mark.parametrize(
    "scheme, value, expected",
    [
        ("appointment", "booked", "blue"),
        ("appointment", "attended", "green"),
        ("appointment", "noshow", "orange"),
        ("appointment", "cancelled", "grey"),
        ("condition", "active", "blue"),
        ("condition", "remission", "aqua-green"),
        ("condition", "resolved", "grey"),
        ("medication", "active", "green"),
        ("medication", "stopped", "grey"),
        ("medication", "completed", "grey"),
        ("care-plan", "active", "green"),
        ("care-plan", "draft", "yellow"),
        ("care-plan", "completed", "grey"),
        ("allergy-severity", "severe", "red"),
        ("allergy-severity", "moderate", "orange"),
        ("allergy-severity", "mild", "yellow"),
        ("allergy-severity", "", "grey"),
        ("alert", "safeguarding", "red"),
        ("alert", "dnacpr", "red"),
        ("alert", "risk", "red"),
        ("alert", "communication", "purple"),
        ("alert", "clinical", "orange"),
        ("alert", "inactive", "grey"),
        ("observation-flag", "H", "red"),
        ("observation-flag", "L", "blue"),
        ("observation-flag", "A", "red"),
        ("involvement", "current", "green"),
        ("involvement", "ended", "grey"),
    ],
)
def test_each_status_maps_to_its_tag(scheme, value, expected):
    assert status_tag(value, scheme) == f"nhsuk-tag--{expected}"


def test_choice_members_map_like_their_values():
    assert status_tag(models.Appointment.Status.BOOKED, "appointment") == "nhsuk-tag--blue"


@pytest.mark.parametrize(
    "value, scheme",
    [
        ("unheard-of", "appointment"),
        ("active", "no-such-scheme"),
        ("active", ""),
        (None, "condition"),
        ([], "condition"),  # unhashable
        ({"a": 1}, "alert"),
        (3, "medication"),
    ],
)
def test_unknown_status_is_neutral_grey_never_an_error(value, scheme):
    assert status_tag(value, scheme) == "nhsuk-tag--grey"


def test_unknown_status_renders_grey_in_a_template():
    rendered = Template('{% load record_tags %}{{ value|status_tag:"appointment" }}|{{ missing|status_tag }}').render(
        Context({"value": "rescheduled"})
    )
    assert rendered == "nhsuk-tag--grey|nhsuk-tag--grey"


@pytest.mark.parametrize(
    "scheme, choices",
    [
        ("appointment", models.Appointment.Status),
        ("condition", models.Condition.Status),
        ("medication", models.Medication.Status),
        ("care-plan", models.CarePlan.Status),
        ("allergy-severity", models.Allergy.Severity),
        ("alert", models.Alert.Kind),
        ("immunisation", models.Immunisation.Status),
        ("procedure", models.Procedure.Status),
        ("observation-flag", [f for f in models.Observation.Flag if f]),  # "Normal" is not shown as a tag
    ],
)
def test_every_choice_has_a_colour_chosen_for_it(scheme, choices):
    """A new status must get a colour on purpose, not fall into grey by accident."""
    assert {str(c) for c in choices} <= set(STATUS_TAGS[scheme])


def test_every_scheme_templates_name_exists():
    """A misspelt scheme would silently draw every tag grey."""
    used = set()
    for path in [*TEMPLATES.rglob("*.html"), *TEMPLATES.rglob("*.jinja")]:
        # Django's `|status_tag:"scheme"` and Jinja2's `|status_tag("scheme")`
        used |= set(re.findall(r"""status_tag(?::|\()\s*["']([^"']+)["']""", path.read_text()))
    assert used, "no template uses status_tag"
    assert used <= set(STATUS_TAGS), used - set(STATUS_TAGS)


def test_no_template_chooses_a_tag_colour_itself():
    """Colour rules live in STATUS_TAGS: no `{% if %}…nhsuk-tag--colour` in the record's templates."""
    rule = re.compile(r"\{%\s*(?:el)?if\b[^%]*%\}\s*nhsuk-tag--")
    for folder in ("patients/entries", "patients/record"):
        for path in [*(TEMPLATES / folder).rglob("*.html"), *(TEMPLATES / folder).rglob("*.jinja")]:
            assert not rule.search(path.read_text()), path


# Templates exist for every category


@pytest.mark.hazard("H-04")
@pytest.mark.parametrize("category", list(REGISTRY), ids=str)
def test_every_registered_category_has_its_cell_partial(category):
    cells = jinja.environment().get_template(cells_template(category))  # TemplateNotFound when missing
    layout = entry_layout(category)
    assert {"title", "body"} <= set(dir(cells.module)) if layout.as_list else hasattr(cells.module, "cells")


def test_no_cell_partial_without_a_category():
    partials = {p.stem for p in (TEMPLATES / "patients/entries/cells").iterdir()}
    assert partials == {c.value for c in REGISTRY}


@pytest.mark.parametrize("category", list(Category), ids=str)
def test_every_section_template_exists(category):
    get_template(Section(category=category).template)


def test_layouts_only_name_registered_categories():
    assert set(ENTRY_LAYOUTS) <= set(REGISTRY)


# Rendering one entry of each category


def _local(value, format_string):
    return dateformat.format(timezone.localtime(value), format_string)


def _render(entry):
    category = type(entry).category
    return render_to_string(
        REGISTRY[category].template, {"entries": [entry], "category": category, "patient": entry.patient}
    )


@pytest.mark.hazard("H-04")
@pytest.mark.django_db
@pytest.mark.parametrize("category", list(REGISTRY), ids=str)
def test_one_entry_shows_its_source_date_and_key_field(category):
    model = REGISTRY[category].model
    assert model in KEY_FIELD, f"Add {model.__name__}'s key field to KEY_FIELD"
    entry = factories.ENTRY_FACTORIES[model]()
    html = _render(entry)
    # Faker's names and titles may hold an apostrophe: the page holds them HTML-escaped.
    assert escape(entry.source_organisation.name) in html
    assert f'datetime="{_local(entry.effective_at, "c")}"' in html
    assert _local(entry.effective_at, "j M Y") in html
    assert escape(str(getattr(entry, KEY_FIELD[model]))) in html


@pytest.mark.django_db
@pytest.mark.parametrize("category", [c for c in REGISTRY if not ENTRY_LAYOUTS.get(c, {}).get("as_list")], ids=str)
def test_table_headers_match_the_cells_narrow_screen_headings(category):
    """Same columns in the header row as in each entry's row, in the same order, with the same names."""
    entry = factories.ENTRY_FACTORIES[REGISTRY[category].model]()
    html = _render(entry)
    headers = re.findall(r'<th class="nhsuk-table__header" scope="col" role="columnheader">([^<]*)</th>', html)
    headings = re.findall(r'<span class="nhsuk-table-responsive__heading" aria-hidden="true">([^<]*) </span>', html)
    assert headers == headings
    assert headers[-1] == "From" and entry_layout(category).date_heading in headers
    assert html.count('<td class="nhsuk-table__cell" role="cell">') == len(headers)
    assert f"{category.label}, newest first" in html


@pytest.mark.django_db
def test_appointments_and_events_lead_with_the_date():
    appointment = factories.AppointmentFactory()
    event = factories.CareEventFactory()
    for entry in (appointment, event):
        headers = re.findall(r'role="columnheader">([^<]*)</th>', _render(entry))
        assert headers[0] == "Date", headers
    assert _local(appointment.effective_at, "j M Y, H:i") in _render(appointment)


@pytest.mark.django_db
def test_results_keep_their_observations_nested():
    result = factories.ResultFactory(status="preliminary")
    factories.ObservationFactory(result=result, name="Haemoglobin A1c", flag=models.Observation.Flag.LOW)
    html = _render(result)
    assert '<li class="app-entry app-result">' in html
    assert "Haemoglobin A1c" in html
    assert '<strong class="nhsuk-tag nhsuk-tag--blue">Low</strong>' in html
    assert "This report is not final." in html
    assert _local(result.effective_at, "j M Y, H:i") in html


@pytest.mark.django_db
def test_letters_are_readable_in_place():
    letter = factories.LetterFactory(body="First paragraph.\n\nSecond paragraph.")
    html = _render(letter)
    assert '<details class="nhsuk-details app-entry__details">' in html
    assert "<p>First paragraph.</p>" in html and "<p>Second paragraph.</p>" in html


@pytest.mark.django_db
def test_inactive_alert_row_is_dimmed_and_grey():
    active = factories.AlertFactory(kind=models.Alert.Kind.SAFEGUARDING)
    inactive = factories.AlertFactory(kind=models.Alert.Kind.SAFEGUARDING, active=False)
    assert "app-row--inactive" not in _render(active) and "nhsuk-tag--red" in _render(active)
    assert "app-row--inactive" in _render(inactive) and "nhsuk-tag--grey" in _render(inactive)


@pytest.mark.django_db
def test_other_categories_rows_are_never_dimmed():
    html = _render(factories.ConditionFactory(clinical_status=models.Condition.Status.RESOLVED))
    assert "app-row--inactive" not in html


# The cell tag


def test_cell_tag_draws_a_header_or_a_cell():
    template = Template('{% load record_tags %}{% cell "Where and with whom" %} {{ value }} {% endcell %}')
    assert template.render(Context({"part": "head", "value": "x"})) == (
        '<th class="nhsuk-table__header" scope="col" role="columnheader">Where and with whom</th>'
    )
    cell = template.render(Context({"value": "<b>"}))
    assert cell.startswith('<td class="nhsuk-table__cell" role="cell">') and cell.endswith("</td>")
    assert '<span class="nhsuk-table-responsive__heading" aria-hidden="true">Where and with whom </span>' in cell
    assert "&lt;b&gt;" in cell  # the cell's content is escaped as usual


def test_cell_tag_escapes_a_heading_from_a_variable():
    template = Template("{% load record_tags %}{% cell heading %}{% endcell %}")
    assert "Tom &amp; Jerry" in template.render(Context({"part": "head", "heading": "Tom & Jerry"}))
    assert "Tom &amp; Jerry </span>" in template.render(Context({"heading": "Tom & Jerry"}))


def test_cell_tag_needs_one_heading():
    from django.template import TemplateSyntaxError

    with pytest.raises(TemplateSyntaxError):
        Template("{% load record_tags %}{% cell %}{% endcell %}")
