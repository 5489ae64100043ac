"""Identifier and code systems the mapping recognises (UK Core and HL7 terminology URIs)."""

NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
ODS_CODE = "https://fhir.nhs.uk/Id/ods-organization-code"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
OBSERVATION_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
ENCOUNTER_CLASS = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

# Confidentiality codes that make an entry sensitive here: restricted and very restricted.
SENSITIVE_CONFIDENTIALITY = {"R", "V"}
