"""The banner's "Currently in hospital" notice: `{% current_admissions patient decision as admissions %}`. A tag
rather than view context so that every record page's banner has it with no view changed; the rule (an open
admission the viewer may see) is sharing.record.current_admissions."""

from django import template

from sharing.record import current_admissions as open_admissions

register = template.Library()


@register.simple_tag
def current_admissions(patient, decision=None):
    """[Appointment] for the banner: one query (none without a decision, or for a patient who has died)."""
    if patient is None or decision is None:
        return []
    return open_admissions(patient, decision)
