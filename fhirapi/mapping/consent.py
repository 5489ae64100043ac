"""Consent -> an objection to sharing, opened in IG's queue as received (optout.actions.receive_partner_objection).

A partner that records a patient's objection to sharing their record (a UK Core / R4 Consent: status active,
scope patient-privacy, provision type deny) sends it here, and it becomes what any objection is: a case IG
verify (with the patient) and decide in admin. A feed never upholds one (H-02): until IG uphold it the record
is shared as before, and only IG's decision, never a system's, changes what anyone sees.

- The case is matched to the Consent's patient and names the sending organisation, the date of the Consent, and
  the clinician (a Practitioner or PractitionerRole performer) or the person acting for the patient (a
  RelatedPerson performer) where given; its reason is the Consent's narrative. A deny limited to some
  recipients, data or classes of data is still opened (IG check its scope with the patient: the record can
  only be shared or not), and the case says it is limited.
- One Consent opens at most one case, ever (re-sending it, or a new version of it, opens nothing), and none
  while the patient has a case open: IG have it in hand. The sender is told the same either way ("passed to
  IG"), so a partner's system learns nothing of other cases.
- Not acted on, and kept as sent (fhirapi.models.ReceivedResource) with an information issue `not-supported`
  saying why: a Consent that permits, is not about privacy, is not active (draft, proposed, rejected, inactive,
  entered in error: a withdrawal of an objection is the patient's to make to IG, never a feed's), whose
  provision has ended, or that denies only something other than access, use or disclosure, or only for purposes
  other than direct care (research, marketing: the shared record is for direct care).

A Consent is not part of the record: it is not read back (the case is IG's, in admin).
"""

from optout.actions import receive_partner_objection
from patients.models import Patient

from ..context import Unmappable
from ..models import ReceivedResource, digest_of, split_key
from ..outcome import Issue, information
from ..references import reference_strings
from ..upsert import CREATED, UNCHANGED, UPDATED
from .common import codes_in, narrative, to_datetime

CONSENT_SCOPE_PRIVACY = "patient-privacy"
# consentaction codes a sharing objection denies (the others: collect, correct).
SHARING_ACTIONS = {"access", "use", "disclose"}
# v3-ActReason purposes of use that are direct care: treatment, emergency treatment, care management,
# coordination of care, break the glass.
DIRECT_CARE_PURPOSES = {"TREAT", "ETREAT", "CAREMGT", "COC", "BTG"}
CLINICIANS = {"Practitioner", "PractitionerRole"}
LIMITS = ("actor", "data", "class_fhir", "code", "securityLabel", "dataPeriod", "provision")
LIMITED = "The Consent limits its objection (to some recipients or data): check with the patient what they object to."


def why_not_an_objection(resource, now) -> str:
    """Why this Consent is not an objection to sharing the record, or "" when it is one."""
    if resource.status != "active":
        return f"its status is {resource.status}, not active"
    if CONSENT_SCOPE_PRIVACY not in codes_in(resource.scope):
        return "it is not a privacy consent (scope patient-privacy)"
    provision = resource.provision
    if provision is None or provision.type != "deny":
        return "it does not deny sharing (provision.type is not deny)"
    ended = to_datetime(provision.period.end) if provision.period is not None else None
    if ended is not None and ended <= now:
        return f"its provision ended on {ended:%d %b %Y}"
    actions = {code for action in provision.action or [] for code in codes_in(action)}
    if actions and not actions & SHARING_ACTIONS:
        return "what it denies is not access to, use or disclosure of the record"
    purposes = {coding.code for coding in provision.purpose or [] if coding.code}
    if purposes and not purposes & DIRECT_CARE_PURPOSES:
        return "it denies sharing for purposes other than direct care, which the shared record is for"
    return ""


def save_consents(outcomes, ctx, *, actor=None) -> None:
    """Open a case for each Consent that objects to sharing; keep every one as sent. `actor`: the partner
    system as the audit trail names it (its token), None for commands without one."""
    if not outcomes:
        return
    statuses = _kept_statuses(outcomes, ctx)
    for outcome in outcomes:
        resource = outcome.entry.resource
        try:
            outcome.patient_id = ctx.patient_id(resource.patient, "Consent.patient")
        except Unmappable as exc:
            outcome.reject(exc.issue)
            continue
        why_not = why_not_an_objection(resource, ctx.now)
        if why_not:
            outcome.issues.append(
                Issue("information", "not-supported", f"{outcome.key}: kept as sent, not acted on: {why_not}.")
            )
        else:
            _open_case(outcome, resource, ctx, actor)
            outcome.issues.append(
                information(
                    f"{outcome.key}: an objection to sharing, passed to information governance as received. "
                    "Nothing changes on the record unless IG verify and uphold it."
                )
            )
        outcome.finish(statuses[outcome.key])


def _open_case(outcome, resource, ctx, actor) -> None:
    clinicians, on_behalf = _performers(resource, ctx)
    told = [f"Sent by {ctx.organisation.name} ({ctx.organisation.ods_code}) as FHIR {outcome.key}"]
    dated = to_datetime(resource.dateTime)
    if dated:
        told.append(f"dated {dated:%d %b %Y}")
    if clinicians:
        told.append(f"recorded by {clinicians}")
    managed_by = ctx.name_of(resource.organization[0]) if resource.organization else ""
    if managed_by and managed_by != ctx.organisation.name:
        told.append(f"managed by {managed_by}")
    limited = any(getattr(resource.provision, limit, None) for limit in LIMITS)
    reason = "\n\n".join(filter(None, [narrative(resource.text), LIMITED if limited else ""]))
    receive_partner_objection(
        by=actor,
        patient=Patient.objects.get(pk=outcome.patient_id),
        organisation=ctx.organisation,
        source_key=outcome.key,
        how_told=", ".join(told),
        reason=reason,
        on_behalf_name=on_behalf,
    )


def _performers(resource, ctx) -> tuple[str, str]:
    """(the clinicians who recorded it, the person acting for the patient), as named by the Consent."""
    clinicians, others = [], []
    for reference in resource.performer or []:
        kind = (ctx.key(reference) or reference.type or "").split("/")[0]
        name = ctx.name_of(reference)
        if name and kind in CLINICIANS:
            clinicians.append(name)
        elif name and kind == "RelatedPerson":
            others.append(name)
    return ", ".join(clinicians), ", ".join(others)


def _kept_statuses(outcomes, ctx) -> dict[str, str]:
    """Created, updated or unchanged, as the kept resource goes (one query): whether or not a case opened, so
    the sender learns nothing of other cases."""
    keys = {outcome.key: split_key(outcome.key) for outcome in outcomes}
    latest = {
        (row.resource_type, row.resource_id): row.digest
        for row in ReceivedResource.objects.newest((ctx.organisation.pk, *key) for key in keys.values())
    }
    statuses = {}
    for outcome in outcomes:
        held = latest.get(keys[outcome.key])
        resource = outcome.entry.as_sent()
        references = {
            text: ctx.full_urls[text] for text in reference_strings(resource) if ctx.full_urls.get(text, text) != text
        }
        if held is None:
            statuses[outcome.key] = CREATED
        else:
            statuses[outcome.key] = UNCHANGED if held == digest_of(resource, references) else UPDATED
    return statuses
