"""The banner's notes on sources that disagree about who the patient is: `{% demographics_notes patient decision
as notes %}`. A tag rather than view context so that every record page's banner has them with no view changed;
the rules (what may be said, which source may be named) are in sharing.demographics."""

from django import template

from sharing.demographics import notes_for

register = template.Library()


@register.simple_tag
def demographics_notes(patient, decision=None):
    """[Note] for the banner: one query, two when sources disagree."""
    if patient is None:
        return []
    return notes_for(patient, decision)
