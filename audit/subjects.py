"""How audit finds and names the people and organisations its rows are about, without importing their apps.

Audit rows hold values only. Admin still has to turn an NHS number typed by IG into a patient's id, and
show names beside ODS codes; the apps that own patients and organisations register those look-ups here
when they start (their AppConfig.ready), so the dependency points from them to audit, never back.
"""

from collections.abc import Callable, Iterable

_lookups: dict[str, Callable] = {}


def register(**lookups: Callable) -> None:
    """Called from an AppConfig.ready(): `nhs_number_in`, `patient_id_for`, `patient`, `organisation_names`,
    `professional_for`."""
    _lookups.update(lookups)


def nhs_number_in(term: str) -> str | None:
    """The NHS number in `term` as typed (spaces, dashes), or None if it is not one."""
    return _lookups["nhs_number_in"](term)


def patient_id_for(nhs_number: str):
    """The id of the patient with this NHS number, or None."""
    return _lookups["patient_id_for"](nhs_number)


def patient(patient_id):
    """The patient (for its label), or None."""
    return _lookups["patient"](patient_id)


def organisation_names(ods_codes: Iterable[str]) -> dict[str, str]:
    """ODS code -> organisation name, for the codes known."""
    return _lookups["organisation_names"](ods_codes)


def professional_for(user):
    """The user's professional profile in the session's role, to name IG on the AccessEvents of their own looks in
    audit's admin; None when no app registered the look-up (the row still names the account: id and email)."""
    lookup = _lookups.get("professional_for")
    return lookup(user) if lookup else None
