"""The Jinja2 parts of the record (portal/jinja.py), for the Django pages.

`{% entry_list category entries patient printing=printing %}` draws one category's entries;
`{% record_part "source" organisation date with_time=True %}` one part of patients/record/parts.jinja (an
organisation's name, an entry's dates, a result's flag), with the same arguments as the macro."""

from django import template

from portal import jinja

register = template.Library()

LIST = "patients/entries/list.jinja"
PARTS = "patients/record/parts.jinja"


@register.simple_tag
def entry_list(category, entries, patient, printing=False):
    return jinja.render(LIST, "entry_list", category, entries, patient, printing=bool(printing))


@register.simple_tag
def record_part(name, *args, **kwargs):
    return jinja.render(PARTS, name, *args, **kwargs)
