"""What the mappers share while one submission is imported: who sent it, when, and how references resolve —
within the submission (fullUrls, and what earlier stages stored) and against what the organisation sent before.

A reference is one of: a literal `<Type>/<id>` (or a Bundle's fullUrl), the sender's own id; a conditional
reference (`Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9991234567`), settled before the stages run
(fhirapi.conditional) into the key of the one resource it matched, or, for an NHS number, the patient it names;
or a local `#id`, a resource contained in the one that refers to it. A contained resource has no existence of
its own (FHIR references.html#contained): a contained Patient names a patient carerecord already holds, by its
NHS number, and never creates or changes one; a contained Practitioner, Organization or Medication gives the
name (and codes) its container shows.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from directory.models import Organisation
from patients.models import Patient, SourcePatientId, SourceResource
from patients.nhs_numbers import normalise

from .models import ReceivedResource, split_key
from .outcome import Issue, error
from .references import BadCondition, conditional, conditional_nhs_number, is_conditional, is_local, key_of
from .systems import NHS_NUMBER, ODS_CODE


@dataclass(frozen=True)
class Named:
    """A practitioner, role, medication or organisation as the source described it (a medication with every
    coding of its code: dm+d and SNOMED CT alike)."""

    name: str
    code_system: str = ""
    code: str = ""
    codings: tuple = ()


class Unmappable(Exception):
    """A resource that cannot become part of the record; its issue goes back to the sender."""

    def __init__(self, issue: Issue):
        super().__init__(issue.diagnostics)
        self.issue = issue


# What a contained resource can be named by (as if sent on its own: mapping.directory.map_directory).
DESCRIBED = {"Organization", "Practitioner", "PractitionerRole", "Medication"}


class Context:
    def __init__(
        self, *, organisation: Organisation, now: datetime, full_urls: dict[str, str], describe: Callable | None = None
    ):
        """`describe(resource, context) -> Named`: how a practitioner, role, organisation or medication is named
        (the directory stage's, passed in: the mapping package imports this module)."""
        self.organisation = organisation
        self.describe = describe
        self.now = now
        self.full_urls = full_urls
        self.patients: dict[str, UUID] = {}  # "Patient/<id>" -> patient
        self.patients_by_nhs_number: dict[str, UUID] = {}
        # Patient ids refused in this submission (an id moved to another NHS number, H-06): nothing sent about
        # them joins a record; and what IG are told of them after the submission (mapping.patients).
        self.refused_patient_keys: set[str] = set()
        self.identity_refusals: list[dict] = []
        self.names: dict[str, Named] = {}
        # Settled before the stages run (fhirapi.conditional): each conditional reference's text -> the key of
        # what it matched; an entry's key -> the key of the resource its conditional create matched instead.
        self.conditional_keys: dict[str, str] = {}
        self.aliases: dict[str, str] = {}
        # id(R4B Reference) -> (the Reference, the contained resource its `#id` names), per container.
        self._contained: dict[int, tuple] = {}
        self._names_looked_up: set[str] = set()
        self._received: dict[str, dict | None] = {}
        self._organisations_by_ods: dict[str, int | None] = {}
        self.binaries: dict = {}  # Binary key -> its Outcome: a document's content (mapping/letters.py)

    def key(self, reference) -> str | None:
        if reference is None or not reference.reference:
            return None
        return self.key_of_text(reference.reference)

    def key_of_text(self, text: str) -> str | None:
        """The key a reference's text stands for in this submission (None for a contained resource, which has
        none, and for a conditional reference that matched nothing)."""
        if text.startswith("#"):
            return None
        if is_conditional(text):
            return self.conditional_keys.get(text)
        key = self.full_urls.get(text) or key_of(text)
        return self.aliases.get(key, key) if key else None

    def resolved(self, text: str) -> str | None:
        """What a reference's text stood for in this submission, where its own text does not say (a urn:uuid
        fullUrl, a conditional reference, an id whose conditional create matched another resource): kept with the
        resource (ReceivedResource.references), since outside the submission the text alone means nothing."""
        if is_conditional(text):
            return self.conditional_keys.get(text)
        key = self.full_urls.get(text, text)
        if key != text:
            return self.aliases.get(key, key)
        own = key_of(text)
        return self.aliases.get(own) if own else None

    def kind_of(self, reference) -> str:
        """The resource type a reference points at, however it points ("" if it does not say)."""
        if reference is None:
            return ""
        contained = self.contained(reference)
        if contained is not None:
            return contained.get_resource_type()
        text = reference.reference or ""
        if is_conditional(text):
            return text.split("?", 1)[0]
        key = self.key(reference)
        return split_key(key)[0] if key else reference.type or ""

    # Contained resources

    def contain(self, reference, resource) -> None:
        """`reference` (a `#id` in some resource) names `resource`, contained in the same container."""
        self._contained[id(reference)] = (reference, resource)

    def contained(self, reference):
        """The contained resource a `#id` reference names, if it names one."""
        if reference is None or not is_local(reference.reference):
            return None
        held = self._contained.get(id(reference))
        return held[1] if held is not None and held[0] is reference else None

    # Patients

    def load_patients(self, references: Iterable) -> None:
        """Look up, in two queries, every patient these references may point at."""
        keys, nhs_numbers = set(), set()
        for reference in references:
            if reference is None:
                continue
            nhs_numbers |= self._nhs_numbers(reference)
            key = self.key(reference)
            if key and _patient_key(key) and key not in self.patients and key not in self.refused_patient_keys:
                keys.add(key)
        if keys:
            known = SourcePatientId.objects.filter(organisation=self.organisation, resource_id__in=keys)
            self.patients.update(known.values_list("resource_id", "patient_id"))
        nhs_numbers -= set(self.patients_by_nhs_number)
        if nhs_numbers:
            found = Patient.objects.filter(nhs_number__in=nhs_numbers).values_list("nhs_number", "id")
            self.patients_by_nhs_number.update(found)

    def patient_id(self, reference, expression: str) -> UUID:
        """The patient a subject/patient reference points at; Unmappable (not-found) if this source never sent it.
        Every way the reference names a patient (its id, its NHS number identifier, a conditional reference, a
        contained Patient) must name the same one: one that disagrees refuses it (H-06), never a guess."""
        if reference is None:
            raise Unmappable(error("required", "No patient is named, so this cannot join anyone's record.", expression))
        if is_local(reference.reference):
            return self._contained_patient(reference, expression)
        nhs_numbers = self._nhs_numbers(reference)
        if len(nhs_numbers) > 1:
            raise Unmappable(_disagree(f"NHS numbers {' and '.join(sorted(nhs_numbers))}", expression))
        nhs_number = next(iter(nhs_numbers), "")
        by_nhs_number = self.patients_by_nhs_number.get(nhs_number) if nhs_number else None
        key = self.key(reference)
        by_key = self.patients.get(key) if key and _patient_key(key) else None
        if by_nhs_number and by_key and by_nhs_number != by_key:
            raise Unmappable(_disagree(f"{key} and NHS number {nhs_number}", expression))
        if by_nhs_number:
            return by_nhs_number
        if key in self.refused_patient_keys:
            refused = f"{key} was refused in this submission, so nothing joins a record by it."
            raise Unmappable(error("business-rule", refused, expression))
        if by_key:
            return by_key
        raise Unmappable(error("not-found", _not_found(reference, nhs_number), expression))

    def _nhs_numbers(self, reference) -> set[str]:
        """The NHS numbers a reference names its patient by: its identifier, a conditional reference (or the
        conditional create its key matched), a contained Patient's."""
        found = set()
        identifier = reference.identifier
        if identifier and identifier.system == NHS_NUMBER and identifier.value:
            found.add(normalise(identifier.value))
        key = self.key(reference)
        if key and conditional_nhs_number(key):
            found.add(conditional_nhs_number(key))
        contained = self.contained(reference)
        if contained is not None and contained.get_resource_type() == "Patient":
            found |= contained_nhs_numbers(contained)
        return found

    def _contained_patient(self, reference, expression: str) -> UUID:
        """A contained Patient names a patient carerecord holds, by its NHS number: it is a copy inside its
        container, with no existence of its own, so it never creates a patient nor changes who one is."""
        text = reference.reference
        contained = self.contained(reference)
        if contained is None:
            raise Unmappable(error("not-found", f"{text} names no resource contained in this one.", expression))
        if contained.get_resource_type() != "Patient":
            kind = contained.get_resource_type()
            raise Unmappable(error("invalid", f"{text} is a contained {kind}, not a Patient.", expression))
        nhs_numbers = self._nhs_numbers(reference)
        if len(nhs_numbers) > 1:
            raise Unmappable(_disagree(f"NHS numbers {' and '.join(sorted(nhs_numbers))}", expression))
        if not nhs_numbers:
            raise Unmappable(
                error(
                    "required",
                    f"The contained Patient {text} has no NHS number ({NHS_NUMBER}): a contained Patient names a "
                    "patient only by NHS number, and never creates one.",
                    expression,
                )
            )
        [nhs_number] = nhs_numbers
        if nhs_number in self.patients_by_nhs_number:
            return self.patients_by_nhs_number[nhs_number]
        raise Unmappable(
            error(
                "not-found",
                f"The contained Patient {text} (NHS number {nhs_number}) is not a patient the shared record holds. "
                "A contained Patient never creates a patient: send the Patient resource first, or in the same bundle.",
                expression,
            )
        )

    def refuse_patient_key(self, key: str) -> None:
        self.refused_patient_keys.add(key)
        self.patients.pop(key, None)

    # Practitioners, roles, medications and organisations

    def named(self, reference) -> Named | None:
        contained = self.contained(reference)
        if contained is not None:
            return self._named_contained(contained)
        key = self.key(reference)
        if key is None:
            return None
        if key not in self.names and key not in self._names_looked_up:
            self._names_looked_up.add(key)
            row = (
                SourceResource.objects.filter(organisation=self.organisation, resource_id=key)
                .values("name", "code_system", "code")
                .first()
            )
            if row:
                self.names[key] = Named(**row)
            elif _ods_code_of_key(key):
                self.names[key] = self._directory_named(_ods_code_of_key(key))
        return self.names.get(key)

    def _named_contained(self, resource) -> Named | None:
        """What a contained Practitioner, PractitionerRole, Organization or Medication is called (as if sent on
        its own); a Medication with no code, by its ingredients."""
        kind = resource.get_resource_type()
        if kind not in DESCRIBED or self.describe is None:
            return None
        named = self.describe(resource, self)
        if kind == "Medication" and not named.name:
            ingredients = [text for item in resource.ingredient or [] if (text := _ingredient(item))]
            return Named(", ".join(ingredients)) if ingredients else named
        return named

    def _directory_named(self, ods_code: str) -> Named | None:
        found = Organisation.objects.filter(ods_code=ods_code).values_list("id", "name").first()
        if found is None:
            return None
        self._organisations_by_ods[ods_code] = found[0]
        return Named(found[1], ODS_CODE, ods_code)

    def received(self, reference) -> dict | None:
        """The latest JSON this organisation sent of what a reference names (a Medication sent before), if kept."""
        key = self.key(reference)
        if key is None:
            return None
        if key not in self._received:
            row = ReceivedResource.objects.newest([(self.organisation.pk, *split_key(key))]).values("json").first()
            self._received[key] = row["json"] if row else None
        return self._received[key]

    def name_of(self, reference) -> str:
        """A referenced person's or organisation's name: the reference's own display (how the sender chose to show
        it here), else the name its resource gave."""
        if reference is None:
            return ""
        if reference.display:
            return reference.display
        named = self.named(reference)
        return named.name if named else ""

    def organisation_id(self, reference) -> int | None:
        """A referenced organisation known here by its ODS code (from the reference, a conditional reference, or
        the Organization sent or contained)."""
        if reference is None:
            return None
        identifier = reference.identifier
        ods_code = identifier.value if identifier and identifier.system == ODS_CODE else None
        if not ods_code and is_conditional(reference.reference):
            ods_code = _ods_code_of_key(reference.reference)
        if not ods_code:
            named = self.named(reference)
            ods_code = named.code if named and named.code_system == ODS_CODE else None
        if not ods_code:
            return None
        if ods_code not in self._organisations_by_ods:
            found = Organisation.objects.filter(ods_code=ods_code).values_list("id", flat=True).first()
            self._organisations_by_ods[ods_code] = found
        return self._organisations_by_ods[ods_code]


def contained_nhs_numbers(resource) -> set[str]:
    return {
        normalise(identifier.value)
        for identifier in resource.identifier or []
        if identifier.system == NHS_NUMBER and identifier.value
    }


def _patient_key(key: str) -> bool:
    """A key this sender's Patient ids are held by (not a conditional one naming an NHS number)."""
    return split_key(key)[0] == "Patient" and not conditional_nhs_number(key)


def _ods_code_of_key(key: str) -> str:
    if not is_conditional(key):
        return ""
    try:
        return conditional(key).ods_code
    except BadCondition:
        return ""


def _ingredient(item) -> str:
    if item.itemReference is not None and item.itemReference.display:
        return item.itemReference.display
    return _concept_text(item.itemCodeableConcept)


def _concept_text(concept) -> str:
    if concept is None:
        return ""
    return concept.text or next((coding.display for coding in concept.coding or [] if coding.display), "")


def _disagree(what: str, expression: str) -> Issue:
    return error(
        "business-rule",
        f"The reference names two patients ({what}): it is refused rather than joined to either.",
        expression,
    )


def _not_found(reference, nhs_number: str) -> str:
    text = reference.reference or ""
    if nhs_number:
        return (
            f"Patient not found: NHS number {nhs_number} is not a patient the shared record holds. "
            "Send the Patient first, or in the same bundle."
        )
    described = text or "the patient"
    return (
        f"Patient not found: {described} is not a patient this organisation has sent. "
        "Send the Patient first, or in the same bundle."
    )
