"""The record categories: what an organisation can choose to share, and how the record is laid out.

`Category` names each one (its values are stored and appear in URLs). The registry says, per category, which
model holds its entries and how admin lists them; each entry model registers itself with `@register`, so the
layers above (record pages, FHIR, demo, bench) read the registry instead of keeping lists of their own.
Adding a category: docs/adding-a-category.md.
"""

from dataclasses import dataclass

from django.db import models


class Category(models.TextChoices):
    # Values are stored (sharing agreements, audit rows) and appear in URLs: never rename one. The order is
    # not stored: it is the order of the clinical summary, the record's navigation and every list of
    # categories — what a clinician must not miss first (alerts, allergies, medications, active problems;
    # see docs/adr/0006-clinical-summary.md), who is involved last.
    ALERTS = "alerts", "Alerts"
    ALLERGIES = "allergies", "Allergies"
    MEDICATIONS = "medications", "Medications"
    CONDITIONS = "conditions", "Diagnosed conditions"
    RESULTS = "results", "Blood tests and results"
    PROCEDURES = "procedures", "Procedures"
    IMMUNISATIONS = "immunisations", "Immunisations"
    LETTERS = "letters", "Letters and discharge information"
    APPOINTMENTS = "appointments", "Appointments, attendances and referrals"
    CARE_PLANS = "care-plans", "Care plans"
    EVENTS = "events", "Community, CAMHS and addiction events"
    TEAMS = "teams", "Involved teams"


# What names an entry in a list of several categories (the timeline, "what changed"): a field of each category's
# entry model. A new category adds its field here (tests/portal/test_changes.py checks every one has one).
TITLE_FIELDS = {
    Category.ALERTS: "text",
    Category.ALLERGIES: "substance",
    Category.MEDICATIONS: "name",
    Category.CONDITIONS: "name",
    Category.RESULTS: "name",
    Category.PROCEDURES: "name",
    Category.IMMUNISATIONS: "vaccine",
    Category.LETTERS: "title",
    Category.APPOINTMENTS: "service",
    Category.CARE_PLANS: "title",
    Category.EVENTS: "title",
}


def category_choices():
    """For model fields: a callable, so a new category changes no migration (Django stores the reference)."""
    return Category.choices


@dataclass(frozen=True)
class CategoryEntry:
    """One category's entry model (clinical entries are read on the record pages, through the access decision;
    admin does not list them: see ADR 0005 and issue 11's finding 1)."""

    category: Category
    model: type

    @property
    def template(self) -> str:
        """What the record pages include to list this category's entries (with `entries` and `category`).

        The same frame for every category; it draws the category's own columns from
        patients/entries/cells/<category>.jinja, the one template a new category adds."""
        return "patients/entries/_list.html"


REGISTRY: dict[Category, CategoryEntry] = {}


def register(category: Category):
    """Class decorator for an entry model: records it as the model holding `category`'s entries."""

    def decorate(model):
        if category in REGISTRY:
            raise ValueError(f"{category} already has an entry model: {REGISTRY[category].model.__name__}")
        model.category = category
        REGISTRY[category] = CategoryEntry(category, model)
        return model

    return decorate


def entry_model(category: Category):
    """The model holding a category's entries (KeyError for "involved teams", which live in sharing)."""
    return REGISTRY[category].model


def entry_models() -> dict[Category, type]:
    """Every category with an entry model, in the order of `Category`."""
    return {category: REGISTRY[category].model for category in Category if category in REGISTRY}
