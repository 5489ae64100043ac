"""Small presentational helpers for the record pages. No queries: they only format what views passed in."""

from dataclasses import dataclass

from django import template
from django.urls import reverse
from django.utils.html import format_html

from patients.categories import Category

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


# Status tags. Which NHS.UK tag colour each value of a coded field reads as, per field ("scheme"), in one place;
# templates call `{{ value|status_tag:"scheme" }}` for the class and take the label from the model's choices.
# A value (or scheme) not listed gets the neutral grey tag: an unexpected code must never break a page, nor
# look alarming or reassuring.
NEUTRAL_TAG = "grey"
STATUS_TAGS = {
    "appointment": {"booked": "blue", "attended": "green", "noshow": "orange", "cancelled": "grey"},
    "condition": {"active": "blue", "remission": "aqua-green", "resolved": "grey"},
    "medication": {"active": "green", "stopped": "grey", "completed": "grey"},
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


# Entry lists. patients/entries/_list.html draws every category's list the same way; the category's own
# columns come from patients/entries/cells/<category>.html. The layout says how the frame places them.
@dataclass(frozen=True)
class EntryLayout:
    cells: str  # the category's partial
    date_first: bool = False  # the date is the first column, not the one just before "From"
    with_time: bool = False  # the date shows the time of day
    as_list: bool = False  # one block per entry (title, source line, body) rather than a table row
    item_class: str = ""  # an extra class on each block of a list

    @property
    def date_format(self):
        return "j M Y, H:i" if self.with_time else "j M Y"


# Only where a category differs from the default: a table, dated by day, the date just before "From".
ENTRY_LAYOUTS = {
    Category.APPOINTMENTS: {"date_first": True, "with_time": True},
    Category.EVENTS: {"date_first": True},
    Category.RESULTS: {"as_list": True, "with_time": True, "item_class": "app-result"},  # observations nested
    Category.LETTERS: {"as_list": True},  # the letter readable in place
}


def cells_template(category) -> str:
    return f"patients/entries/cells/{Category(category).value}.html"


@register.simple_tag
def entry_layout(category):
    """How the entry list lays out a category: `{% entry_layout category as layout %}`."""
    category = Category(category)
    return EntryLayout(cells=cells_template(category), **ENTRY_LAYOUTS.get(category, {}))


_HEADER_CELL = '<th class="nhsuk-table__header" scope="col" role="columnheader">{}</th>'
_CELL = (
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
            return format_html(_HEADER_CELL, heading)
        return format_html(_CELL, heading, self.nodelist.render(context))  # already escaped, and safe


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
