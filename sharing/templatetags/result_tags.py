"""The results pages' one rule for an abnormal value (sharing.results.abnormality), for templates that list
observations: `{{ observation|abnormality }}`, and `{{ reading|flagged_part }}` for the part of a reading of
several (a blood pressure) that its flag is about."""

from django import template

from sharing.results import abnormality as reason

register = template.Library()


@register.filter
def abnormality(observation) -> str:
    """ "" when normal (or not known to be otherwise); else "flagged", "critical", "above" or "below"."""
    return reason(observation) if observation is not None else ""


@register.filter
def flagged_part(reading):
    """The reading's first abnormal part, else its first (a single-value reading: its one observation)."""
    parts = list(getattr(reading, "parts", None) or [reading])
    return next((part for part in parts if reason(part)), parts[0])
