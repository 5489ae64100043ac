"""What the mappers share while one submission is imported: who sent it, when, and how references resolve —
within the submission (fullUrls, and what earlier stages stored) and against what the organisation sent before.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from directory.models import Organisation
from patients.models import Patient, SourcePatientId, SourceResource
from patients.nhs_numbers import normalise

from .models import ReceivedResource, split_key
from .outcome import Issue, error
from .references import key_of
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


class Context:
    def __init__(self, *, organisation: Organisation, now: datetime, full_urls: dict[str, str]):
        self.organisation = organisation
        self.now = now
        self.full_urls = full_urls
        self.patients: dict[str, UUID] = {}  # "Patient/<id>" -> patient
        self.patients_by_nhs_number: dict[str, UUID] = {}
        # Patient ids refused in this submission (an id moved to another NHS number, H-06): nothing sent about
        # them joins a record; and what IG are told of them after the submission (mapping.patients).
        self.refused_patient_keys: set[str] = set()
        self.identity_refusals: list[dict] = []
        self.names: dict[str, Named] = {}
        self._names_looked_up: set[str] = set()
        self._received: dict[str, dict | None] = {}
        self._organisations_by_ods: dict[str, int | None] = {}

    def key(self, reference) -> str | None:
        if reference is None or not reference.reference:
            return None
        return self.full_urls.get(reference.reference) or key_of(reference.reference)

    # Patients

    def load_patients(self, references: Iterable) -> None:
        """Look up, in two queries, every patient these references may point at."""
        keys, nhs_numbers = set(), set()
        for reference in references:
            if reference is None:
                continue
            if _nhs_number(reference):
                nhs_numbers.add(_nhs_number(reference))
            key = self.key(reference)
            if key and key.startswith("Patient/") and key not in self.patients and key not in self.refused_patient_keys:
                keys.add(key)
        if keys:
            known = SourcePatientId.objects.filter(organisation=self.organisation, resource_id__in=keys)
            self.patients.update(known.values_list("resource_id", "patient_id"))
        if nhs_numbers:
            found = Patient.objects.filter(nhs_number__in=nhs_numbers).values_list("nhs_number", "id")
            self.patients_by_nhs_number.update(found)

    def patient_id(self, reference, expression: str) -> UUID:
        """The patient a subject/patient reference points at; Unmappable (not-found) if this source never sent it."""
        if reference is None:
            raise Unmappable(error("required", "No patient is named, so this cannot join anyone's record.", expression))
        nhs_number = _nhs_number(reference)
        if nhs_number and nhs_number in self.patients_by_nhs_number:
            return self.patients_by_nhs_number[nhs_number]
        key = self.key(reference)
        if key in self.refused_patient_keys:
            refused = f"{key} was refused in this submission, so nothing joins a record by it."
            raise Unmappable(error("business-rule", refused, expression))
        if key in self.patients:
            return self.patients[key]
        described = reference.reference or (f"NHS number {nhs_number}" if nhs_number else "the patient")
        raise Unmappable(
            error(
                "not-found",
                f"Patient not found: {described} is not a patient this organisation has sent. "
                "Send the Patient first, or in the same bundle.",
                expression,
            )
        )

    def refuse_patient_key(self, key: str) -> None:
        self.refused_patient_keys.add(key)
        self.patients.pop(key, None)

    # Practitioners, roles, medications and organisations

    def named(self, reference) -> Named | None:
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
        return self.names.get(key)

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
        """A referenced organisation known here by its ODS code (from the reference or the Organization sent)."""
        if reference is None:
            return None
        identifier = reference.identifier
        ods_code = identifier.value if identifier and identifier.system == ODS_CODE else None
        if not ods_code:
            named = self.named(reference)
            ods_code = named.code if named and named.code_system == ODS_CODE else None
        if not ods_code:
            return None
        if ods_code not in self._organisations_by_ods:
            found = Organisation.objects.filter(ods_code=ods_code).values_list("id", flat=True).first()
            self._organisations_by_ods[ods_code] = found
        return self._organisations_by_ods[ods_code]


def _nhs_number(reference) -> str:
    identifier = reference.identifier
    if identifier and identifier.system == NHS_NUMBER and identifier.value:
        return normalise(identifier.value)
    return ""
