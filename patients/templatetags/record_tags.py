"""Small presentational helpers for the record pages. No queries: they only format what views passed in."""

from dataclasses import dataclass

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.timesince import timesince

from patients.categories import Category
from patients.postcodes import display_postcode
from patients.units import display_unit, with_unit

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


# Status tags. Which NHS.UK tag colour each value of a coded field reads as, per field ("scheme"), in one place;
# templates call `{{ value|status_tag:"scheme" }}` for the class and take the label from the model's choices.
# A value (or scheme) not listed gets the neutral grey tag: an unexpected code must never break a page, nor
# look alarming or reassuring.
NEUTRAL_TAG = "grey"
STATUS_TAGS = {
    "appointment": {
        "booked": "blue",
        "attended": "green",
        "noshow": "orange",
        "cancelled": "grey",
        "in-progress": "blue",  # an attendance or admission under way
        "requested": "yellow",  # a referral waiting to be seen
        "completed": "green",
    },
    "condition": {"active": "blue", "remission": "aqua-green", "resolved": "grey"},
    "medication": {"active": "green", "stopped": "grey", "completed": "grey"},
    # A dispensing or an administration: an event about a medicine, marked apart from the medicines themselves.
    "medication-event": {"dispensed": "white", "administered": "white"},
    "care-plan": {"active": "green", "draft": "yellow", "completed": "grey"},
    "allergy-severity": {"severe": "red", "moderate": "orange", "mild": "yellow", "": "grey"},
    # An alert's kind; "inactive" for any alert no longer active, whatever its kind.
    "alert": {
        "safeguarding": "red",
        "dnacpr": "red",
        "risk": "red",
        "communication": "purple",
        "clinical": "orange",
        "inactive": "grey",
    },
    "observation-flag": {"H": "red", "L": "blue", "A": "red"},
    # A vaccination recorded as not given is worth noticing (a course may be incomplete), not alarming.
    "immunisation": {"completed": "green", "not-done": "orange"},
    "procedure": {
        "completed": "green",
        "in-progress": "blue",
        "preparation": "yellow",
        "not-done": "orange",
        "stopped": "grey",
        "unknown": "grey",
    },
    "involvement": {"current": "green", "ended": "grey"},
}


@register.filter
def status_tag(value, scheme=""):
    """The NHS.UK tag modifier for a coded value: `{{ entry.status|status_tag:"appointment" }}` is
    "nhsuk-tag--blue" for a booked appointment. Unknown values and schemes get the neutral grey."""
    try:
        colour = STATUS_TAGS[scheme][value]
    except (KeyError, TypeError):  # TypeError: an unhashable value
        colour = NEUTRAL_TAG
    return f"nhsuk-tag--{colour}"


# Entry lists. patients/entries/list.jinja draws every category's list the same way; the category's own
# columns come from patients/entries/cells/<category>.jinja. The layout says how the frame places them.
@dataclass(frozen=True)
class EntryLayout:
    cells: str  # the category's partial
    date_heading: str = "Date"  # what the clinical date is, where it is one thing (a condition's onset)
    date_first: bool = False  # the date is the first column, not the one just before "From"
    with_time: bool = False  # the date shows the time of day
    as_list: bool = False  # one block per entry (title, source line, body) rather than a table row
    item_class: str = ""  # an extra class on each block of a list

    @property
    def date_format(self):
        return "j M Y, H:i" if self.with_time else "j M Y"


# Only where a category differs from the default: a table, dated by day, the date just before "From".
ENTRY_LAYOUTS = {
    Category.CONDITIONS: {"date_heading": "Onset"},
    Category.ALLERGIES: {"date_heading": "Onset"},
    Category.APPOINTMENTS: {"date_first": True, "with_time": True},
    Category.EVENTS: {"date_first": True},
    Category.RESULTS: {"as_list": True, "with_time": True, "item_class": "app-result"},  # observations nested
    Category.LETTERS: {"as_list": True},  # the letter readable in place
}


def cells_template(category) -> str:
    return f"patients/entries/cells/{Category(category).value}.jinja"


@register.simple_tag
def entry_layout(category):
    """How the entry list lays out a category: `{% entry_layout category as layout %}`."""
    category = Category(category)
    return EntryLayout(cells=cells_template(category), **ENTRY_LAYOUTS.get(category, {}))


HEADER_CELL = '<th class="nhsuk-table__header" scope="col" role="columnheader">{}</th>'
CELL = (
    '<td class="nhsuk-table__cell" role="cell">\n'
    '  <span class="nhsuk-table-responsive__heading" aria-hidden="true">{} </span>\n'
    "  {}\n"
    "</td>"
)


class CellNode(template.Node):
    def __init__(self, heading, nodelist):
        self.heading = heading
        self.nodelist = nodelist

    def render(self, context):
        heading = self.heading.resolve(context)
        if context.get("part") == "head":
            return format_html(HEADER_CELL, heading)
        return format_html(CELL, heading, self.nodelist.render(context))  # already escaped, and safe


@register.tag
def cell(parser, token):
    """One column of a responsive table: `{% cell "Status" %}…{% endcell %}`.

    With `part="head"` in the context (the header row) it draws the column header; otherwise the cell, with
    the heading the narrow-screen layout shows beside it. So a column's header and its cells' headings are
    written once, and cannot disagree."""
    bits = token.split_contents()
    if len(bits) != 2:
        raise template.TemplateSyntaxError(f'Usage: {{% {bits[0]} "Heading" %}}…{{% end{bits[0]} %}}')
    nodelist = parser.parse(("endcell",))
    parser.delete_first_token()
    return CellNode(parser.compile_filter(bits[1]), nodelist)


# Freshness and units.


@register.filter
def ago(value):
    """How long ago, to the largest unit: "2 hours ago", "3 days ago" ("just now" under a minute)."""
    if value is None:
        return ""
    elapsed = timesince(value, depth=1)
    return "just now" if elapsed.startswith("0\xa0") else f"{elapsed} ago"


@register.filter
def unit_of(observation):
    """An observation's unit as clinicians write it (UCUM "umol/L" shown "µmol/L"): patients.units."""
    return display_unit(observation.unit, observation.unit_code, observation.unit_system)


@register.filter
def observation_category(code):
    """An observation's category code as words: "vital-signs" reads "Vital signs"."""
    return str(code or "").replace("-", " ").capitalize()


# Readings. A value row that is a component of a reading (systolic, diastolic: rows of one source
# Observation, sharing its `source_id`, with `reading_name`) is shown with the rest of that reading, as one:
# "Blood pressure 120/80 mmHg", never as two unrelated results.
@dataclass
class Reading:
    name: str
    parts: list  # one Observation, or a reading's components in the source's order

    @property
    def single(self):
        return len(self.parts) == 1

    @property
    def first(self):
        return self.parts[0]

    @property
    def code(self):
        """The test code whose trend this reading links to (a reading of several parts has none)."""
        return self.first.code if self.single else ""

    @property
    def effective_at(self):
        return self.first.effective_at

    @property
    def display_value(self):
        if self.single:
            return self.first.display_value
        units = {unit_of(part) for part in self.parts}
        if len(units) == 1 and all(part.value is not None for part in self.parts):
            values = "/".join(f"{part.value.normalize():f}" for part in self.parts)
            return with_unit(values, units.pop())
        return "; ".join(f"{part.name} {part.display_value}" for part in self.parts)

    @property
    def reference_range(self):
        if self.single:
            return self.first.reference_range
        return "; ".join(f"{part.name}: {part.reference_range}" for part in self.parts if part.reference_range)

    @property
    def abnormal(self):
        return any(part.abnormal for part in self.parts)

    @property
    def flagged(self):
        """The part whose flag the reading shows: the first abnormal one, else the first."""
        return next((part for part in self.parts if part.abnormal), self.first)

    @property
    def interpretation(self):
        seen = []
        for part in self.parts:
            if part.interpretation and part.interpretation not in seen:
                seen.append(part.interpretation)
        return "; ".join(seen)


@register.filter
def readings(observations):
    """A result's value rows as readings: components of one reading together (in the order they were
    received), every other row a reading of its own; by name, as the rows arrive."""
    grouped = {}
    for observation in observations:
        if observation.reading_name:
            key = ("reading", observation.result_id, observation.source_id, observation.reading_name)
            grouped.setdefault(key, Reading(observation.reading_name, [])).parts.append(observation)
        else:
            grouped[("value", observation.pk)] = Reading(observation.name, [observation])
    for reading in grouped.values():
        reading.parts.sort(key=lambda part: part.pk)
    return sorted(grouped.values(), key=lambda reading: reading.name)


@register.filter
def postcode(value):
    """A postcode as on a letter ("SW9 1NQ"), however it was stored."""
    return display_postcode(value)
