"""The ten record categories: what an organisation can choose to share, and how the record is laid out."""

from django.db import models


class Category(models.TextChoices):
    # Values are stored (sharing agreements, audit rows) and appear in URLs: never rename one.
    TEAMS = "teams", "Involved teams"
    APPOINTMENTS = "appointments", "Appointments"
    CONDITIONS = "conditions", "Diagnosed conditions"
    MEDICATIONS = "medications", "Medications"
    ALERTS = "alerts", "Alerts"
    ALLERGIES = "allergies", "Allergies"
    RESULTS = "results", "Blood tests and results"
    LETTERS = "letters", "Letters and discharge information"
    CARE_PLANS = "care-plans", "Care plans"
    EVENTS = "events", "Community, CAMHS and addiction events"
