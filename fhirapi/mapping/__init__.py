"""Resource type -> model mapping, one module per area. Mappers are plain functions of (resource, context)
that return (model, field values) or raise Unmappable with the issue to report; they write nothing."""

from . import alerts, allergies, appointments, care_plans, conditions, events, letters, medications, support

# Record entries written by the generic bulk upsert.
ENTRY_MAPPERS = {
    "Appointment": appointments.map_appointment,
    "Encounter": appointments.map_encounter,
    "Condition": conditions.map_condition,
    "MedicationStatement": medications.map_medication_statement,
    "MedicationRequest": medications.map_medication_request,
    "Flag": alerts.map_flag,
    "AllergyIntolerance": allergies.map_allergy,
    "DocumentReference": letters.map_document_reference,
    "Composition": letters.map_composition,
    "CarePlan": care_plans.map_care_plan,
    "EpisodeOfCare": events.map_episode_of_care,
    "RelatedPerson": support.map_related_person,
}
DIRECTORY_TYPES = {"Organization", "Practitioner", "PractitionerRole", "Medication"}
RESULT_TYPES = {"DiagnosticReport", "Observation"}
HANDLED_TYPES = {*ENTRY_MAPPERS, *DIRECTORY_TYPES, *RESULT_TYPES, "Patient", "CareTeam"}
