"""Telling FHIR STU3 from R4 before anything is validated as R4.

GP Connect's structured record, CareConnect feeds and the pathology adaptor still send STU3. Validated as R4 an
STU3 resource fails element by element ("taken: extra fields not permitted"), which tells the sender nothing
useful and could, for a resource that happens to validate, be misread (H-10). So a submission is looked at for
what only STU3 has before it is parsed as R4, and refused with one OperationOutcome (`not-supported`) that says
it is STU3, what gave it away, and what is accepted. The signs, each cheap to look for:

- a `fhirVersion` other than 4.0 / 4.3 in the Content-Type (`application/fhir+json; fhirVersion=3.0`);
- an STU3 profile in `meta.profile` (`https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-...`,
  `https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-...`), or an extension or code system under `/STU3/`;
- a resource type STU3 has and R4 does not (ProcedureRequest, ReferralRequest...);
- an element STU3 has and R4 does not (`MedicationStatement.taken`, `AllergyIntolerance.assertedDate`,
  `Observation.context`, `DocumentReference.indexed`...): `STU3_ONLY_ELEMENTS`, the difference between
  fhir.resources' STU3 and R4B models for the types partners send (tests/fhirapi/test_stu3.py checks it);
- a status that is a code in STU3 and a CodeableConcept in R4 (`Condition.clinicalStatus: "active"`).

Every sign but the last two is invalid R4 anyway, so an R4 resource is never refused for looking like STU3.
Only the top-level elements of each resource (and of each Bundle entry's) are compared; the URL scan runs only
when the body holds "/STU3/" at all, so an R4 bundle pays a dictionary lookup per entry.
"""

import re
from dataclasses import dataclass

from .outcome import Issue, error

# STU3 resource types R4 dropped, and what R4 has instead (where it has one).
STU3_ONLY_TYPES = {
    "BodySite": "BodyStructure",
    "DataElement": "StructureDefinition",
    "DeviceComponent": "DeviceDefinition",
    "EligibilityRequest": "CoverageEligibilityRequest",
    "EligibilityResponse": "CoverageEligibilityResponse",
    "ExpansionProfile": "",
    "ImagingManifest": "ImagingStudy",
    "ProcedureRequest": "ServiceRequest",
    "ProcessRequest": "Task",
    "ProcessResponse": "Task",
    "ReferralRequest": "ServiceRequest",
    "Sequence": "MolecularSequence",
    "ServiceDefinition": "ActivityDefinition",
}
# Elements of STU3 resources that R4 does not have (fhir.resources STU3 fields minus R4B's, for the types a care
# record's partners send), with what R4 says instead where there is one.
STU3_ONLY_ELEMENTS = {
    "AllergyIntolerance": {"assertedDate": "recordedDate"},
    "Appointment": {"incomingReferral": "basedOn", "indication": "reasonReference", "reason": "reasonCode"},
    "Binary": {"content": "data"},
    "CarePlan": {"context": "encounter", "definition": "instantiatesCanonical"},
    "CareTeam": {"context": "encounter"},
    "Communication": {"context": "encounter", "definition": "", "notDone": "status", "notDoneReason": "statusReason"},
    "Composition": {"class": "category"},
    "Condition": {"abatementBoolean": "abatement[x]", "assertedDate": "recordedDate", "context": "encounter"},
    "Consent": {
        "action": "provision.action",
        "actor": "provision.actor",
        "consentingParty": "performer",
        "data": "provision.data",
        "dataPeriod": "provision.dataPeriod",
        "except": "provision.provision",
        "period": "provision.period",
        "purpose": "provision.purpose",
        "securityLabel": "provision.securityLabel",
        "sourceIdentifier": "source[x]",
    },
    "DiagnosticReport": {"codedDiagnosis": "conclusionCode", "context": "encounter", "image": "media"},
    "DocumentReference": {"class": "category", "created": "content.attachment.creation", "indexed": "date"},
    "Encounter": {"incomingReferral": "basedOn", "reason": "reasonCode"},
    "FamilyMemberHistory": {
        "definition": "",
        "gender": "sex",
        "notDone": "status",
        "notDoneReason": "dataAbsentReason",
    },
    "Immunization": {
        "date": "occurrenceDateTime",
        "explanation": "reasonCode",
        "notGiven": "status",
        "practitioner": "performer",
        "vaccinationProtocol": "protocolApplied",
    },
    "Medication": {"image": "", "isBrand": "", "isOverTheCounter": "", "package": "batch"},
    "MedicationAdministration": {
        "definition": "instantiates",
        "notGiven": "status",
        "prescription": "request",
        "reasonNotGiven": "statusReason",
    },
    "MedicationDispense": {
        "notDone": "status",
        "notDoneReasonCodeableConcept": "statusReasonCodeableConcept",
        "notDoneReasonReference": "statusReasonReference",
    },
    "MedicationRequest": {"context": "encounter", "definition": "instantiatesCanonical"},
    "MedicationStatement": {"reasonNotTaken": "statusReason", "taken": "status"},
    "MessageHeader": {"event": "eventCoding", "receiver": "destination.receiver", "timestamp": ""},
    "Observation": {
        "comment": "note",
        "context": "encounter",
        "related": "hasMember / derivedFrom",
        "valueAttachment": "",
    },
    "Patient": {"animal": ""},
    "Procedure": {
        "context": "encounter",
        "definition": "instantiatesCanonical",
        "notDone": "status",
        "notDoneReason": "statusReason",
    },
    "Provenance": {"period": "occurred[x]"},
    "QuestionnaireResponse": {"context": "encounter", "parent": "partOf"},
    "Task": {
        "context": "encounter",
        "definitionReference": "instantiatesCanonical",
        "definitionUri": "instantiatesUri",
        "reason": "reasonCode",
    },
}
# Codes in STU3 that R4 made CodeableConcepts.
CODED_IN_R4 = {
    "Condition": ("clinicalStatus", "verificationStatus"),
    "AllergyIntolerance": ("clinicalStatus", "verificationStatus"),
}
STU3_PROFILE = re.compile(r"/STU3/|(?:^|/)CareConnect-")
STU3_URL = re.compile(r"/STU3/")
_FHIR_VERSION = re.compile(r"fhirVersion\s*=\s*\"?([0-9][0-9.]*)", re.IGNORECASE)
RELEASES = {"1.0": "DSTU2", "3.0": "STU3", "4.0": "R4", "4.3": "R4B", "5.0": "R5"}
ACCEPTED_RELEASES = {"4.0", "4.3"}  # UK Core is R4 (4.0.1); R4B reads it the same
SIGNS_NAMED = 3
EXTENSIONS = ("extension", "modifierExtension")


@dataclass(frozen=True)
class Sign:
    """Something only an older (or newer) FHIR release has, and where it is."""

    release: str
    what: str
    expression: str = ""


def refusal(signs: list[Sign]) -> Issue:
    """One issue for the whole submission: the release, what gave it away, and what is accepted."""
    first = signs[0]
    named = "; ".join(sign.what for sign in signs[:SIGNS_NAMED])
    more = len(signs) - SIGNS_NAMED
    if more > 0:
        named += f"; and {more} more sign{'s' if more > 1 else ''}"
    return error(
        "not-supported",
        f"This is FHIR {first.release} ({named}); carerecord accepts FHIR R4 (UK Core) only. Send R4 resources, "
        "to the UK Core profiles: https://fhir.hl7.org.uk/StructureDefinition/UKCore-...",
        first.expression,
    )


def content_type_sign(content_type: str | None) -> Sign | None:
    """A `fhirVersion` parameter naming a release other than R4 (`application/fhir+json; fhirVersion=3.0`)."""
    match = _FHIR_VERSION.search(content_type or "")
    if match is None:
        return None
    major_minor = ".".join(match[1].split(".")[:2])
    if major_minor in ACCEPTED_RELEASES:
        return None
    release = RELEASES.get(major_minor, f"version {match[1]}")
    return Sign(release, f"the Content-Type says fhirVersion={match[1]}")


def _element_signs(resource_type: str, names, expression: str) -> list[Sign]:
    signs = []
    if resource_type in STU3_ONLY_TYPES:
        instead = STU3_ONLY_TYPES[resource_type]
        r4 = f", R4 has {instead}" if instead else ""
        signs.append(Sign("STU3", f"{resource_type}: an STU3 resource type{r4}", expression))
    only = STU3_ONLY_ELEMENTS.get(resource_type, {})
    for name in names:
        element = name.removeprefix("_")
        if element in only:
            instead = f", R4 has {resource_type}.{only[element]}" if only[element] else ""
            signs.append(
                Sign("STU3", f"{resource_type}.{element}: an STU3 element{instead}", f"{expression}.{element}")
            )
    return signs


def _coded(resource_type: str, element: str, expression: str) -> Sign:
    return Sign(
        "STU3",
        f"{resource_type}.{element} as a code: STU3's form, R4's is a CodeableConcept",
        f"{expression}.{element}",
    )


def _profile_signs(profiles, expression: str) -> list[Sign]:
    return [
        Sign("STU3", f"meta.profile {profile}: an STU3 profile", f"{expression}.meta.profile")
        for profile in profiles
        if isinstance(profile, str) and STU3_PROFILE.search(profile)
    ]


# JSON


def json_signs(data: dict, body: bytes) -> list[Sign]:
    """The STU3 signs of a JSON resource or Bundle (each entry's resource too), in document order."""
    signs = _json_resource_signs(data, data.get("resourceType", ""))
    if data.get("resourceType") == "Bundle" and isinstance(data.get("entry"), list):
        for index, entry in enumerate(data["entry"]):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
                signs += _json_resource_signs(resource, f"Bundle.entry[{index}].resource")
    if b"/STU3/" in body:
        signs += _json_url_signs(data, data.get("resourceType", ""))
    return signs


def _json_resource_signs(resource: dict, expression: str) -> list[Sign]:
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return []
    signs = _element_signs(resource_type, resource, expression)
    signs += [
        _coded(resource_type, element, expression)
        for element in CODED_IN_R4.get(resource_type, ())
        if isinstance(resource.get(element), str)
    ]
    meta = resource.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("profile"), list):
        signs += _profile_signs(meta["profile"], expression)
    return signs


def _json_url_signs(data, prefix: str) -> list[Sign]:
    """Extensions and code systems under /STU3/ (CareConnect's, GP Connect's), wherever they sit."""
    signs = []
    stack = [(prefix, data)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            for key in ("url", "system"):
                value = item.get(key)
                if isinstance(value, str) and STU3_URL.search(value):
                    kind = "extension" if key == "url" else "code system"
                    signs.append(Sign("STU3", f"{kind} {value}: an STU3 one", f"{path}.{key}"))
            stack.extend((f"{path}.{key}", value) for key, value in reversed(item.items()) if key != "resourceType")
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", value) for index, value in reversed(list(enumerate(item))))
    return signs


# XML


def xml_signs(root, body: bytes, namespace: str) -> list[Sign]:
    """The STU3 signs of an XML resource or Bundle (each entry's resource too)."""
    name = _local(root)
    signs = _xml_resource_signs(root, name)
    if name == "Bundle":
        for index, entry in enumerate(root.findall(f"{{{namespace}}}entry")):
            wrapper = entry.find(f"{{{namespace}}}resource")
            children = [child for child in wrapper if isinstance(child.tag, str)] if wrapper is not None else []
            if children:
                signs += _xml_resource_signs(children[0], f"Bundle.entry[{index}].resource")
    if b"/STU3/" in body:
        for element in root.iter():
            local = _local(element)
            value = element.get("value") if local == "system" else element.get("url") if local in EXTENSIONS else None
            if value and STU3_URL.search(value):
                kind = "code system" if local == "system" else "extension"
                signs.append(Sign("STU3", f"{kind} {value}: an STU3 one", name))
    return signs


def _local(element) -> str:
    tag = element.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _xml_resource_signs(element, expression: str) -> list[Sign]:
    resource_type = _local(element)
    children = [child for child in element if isinstance(child.tag, str)]
    signs = _element_signs(resource_type, dict.fromkeys(_local(child) for child in children), expression)
    coded = CODED_IN_R4.get(resource_type, ())
    signs += [
        _coded(resource_type, _local(child), expression)
        for child in children
        if _local(child) in coded and child.get("value") is not None
    ]
    for child in children:
        if _local(child) == "meta":
            profiles = [p.get("value") for p in child if isinstance(p.tag, str) and _local(p) == "profile"]
            signs += _profile_signs(profiles, expression)
    return signs
