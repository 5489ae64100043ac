"""CareTeam -> a directory.CareTeam at the sending organisation, and an Involvement of it with the subject patient.

This is the one resource that grants access (through sharing.actions, audited, like every involvement): the
source says this team of its own is caring for this patient. The team is found or made by name at the sender;
its members are not mapped (practitioners get no accounts from imports: IG adds members). An inactive or
entered-in-error CareTeam ends the involvement (Involvement has no entered-in-error flag, so it is ended, not
hidden). Moving an involvement to another team or patient is refused: end it and send a new CareTeam.

What a partner may assert (issue 11, finding 2): a token could otherwise give its organisation's staff standing
access to any patient in the city with one CareTeam naming an NHS number. So:
- only for its **own teams**: a CareTeam whose managingOrganization names another organisation (by ODS code,
  on the reference or through the Organization sent) is refused (`forbidden`);
- only for **patients it sends data for**: a CareTeam that would start, reopen or change a current involvement
  needs the sender to hold clinical data about the patient — a record entry from this organisation (any
  category, not entered in error), already held or in the same submission (entries are written before care
  teams, in the same transaction). A Patient resource alone does not count: demographics anyone can send. One
  query for all the submission's care teams. Refused: `business-rule` on `CareTeam.subject`. Ending an
  involvement is always accepted (it takes access away), and so is a closed CareTeam (it grants nothing).
Every involvement a token asserts records the token (`asserted_by_token`, and its label as `asserted_by`), its
audit rows name it, and it waits for IG's review with a review date (sharing.actions.start_involvement).
"""

from django.db import IntegrityError, transaction

from directory.models import CareTeam, Organisation
from patients.categories import entry_models
from patients.models import Patient
from sharing import actions
from sharing.models import Involvement

from ..context import Unmappable
from ..outcome import error
from ..systems import ODS_CODE
from ..upsert import CREATED, UNCHANGED, UPDATED
from .common import period_end, period_start, texts_of
from .events import ADDICTION_WORDS, CAMHS_WORDS

Kind = CareTeam.Kind
KIND_WORDS = [
    (CAMHS_WORDS, Kind.CAMHS),
    (("mental health",), Kind.MENTAL_HEALTH),
    (ADDICTION_WORDS, Kind.ADDICTION),
    (("social",), Kind.SOCIAL_CARE),
    (("ward",), Kind.WARD),
    (("clinic", "outpatient"), Kind.CLINIC),
    (("practice", " gp"), Kind.GP_PRACTICE),
]
KIND_BY_ORGANISATION = {Organisation.Kind.GP_PRACTICE: Kind.GP_PRACTICE, Organisation.Kind.ACUTE_TRUST: Kind.CLINIC}
REASON = {
    Kind.GP_PRACTICE: Involvement.Reason.REGISTRATION,
    Kind.WARD: Involvement.Reason.ADMISSION,
    Kind.CLINIC: Involvement.Reason.REFERRAL,
}
CLOSED = {"inactive", "entered-in-error"}


def team_kind(words: str, organisation: Organisation) -> str:
    words = f" {words.lower()}"
    for needles, kind in KIND_WORDS:
        if any(needle in words for needle in needles):
            return kind
    return KIND_BY_ORGANISATION.get(organisation.kind, Kind.COMMUNITY)


def save_care_teams(outcomes, ctx, *, token=None, actor=None) -> None:
    """`token` and `actor`: the partner system's token and how the audit trail names it (None for commands)."""
    planned = []
    for outcome in outcomes:
        resource = outcome.entry.resource
        try:
            patient_id = ctx.patient_id(resource.subject, "CareTeam.subject")
            _check_own_team(resource, ctx)
        except Unmappable as exc:
            outcome.reject(exc.issue)
            continue
        outcome.patient_id = patient_id
        planned.append((outcome, patient_id))
    if not planned:
        return
    asserting = {patient_id for outcome, patient_id in planned if not _closed(outcome.entry.resource, ctx)}
    held = patients_with_clinical_data(ctx.organisation, asserting)
    for outcome, patient_id in planned:
        try:
            status = _save_care_team(
                outcome.key, outcome.entry.resource, patient_id, patient_id in held, ctx, token, actor
            )
            outcome.finish(status)
        except Unmappable as exc:
            outcome.reject(exc.issue)


def patients_with_clinical_data(organisation, patient_ids) -> set:
    """Which of these patients this organisation holds clinical data about (a record entry of any category, not
    entered in error), in one query: a UNION over the entry tables, each on its (patient, date) index."""
    if not patient_ids:
        return set()
    ids = list(patient_ids)
    parts = [
        model.objects.filter(patient_id__in=ids, source_organisation=organisation, entered_in_error=False)
        .order_by()
        .values_list("patient_id", flat=True)
        for model in entry_models().values()
    ]
    return set(parts[0].union(*parts[1:]))


def _ods_code(reference, ctx) -> str:
    identifier = reference.identifier
    if identifier and identifier.system == ODS_CODE and identifier.value:
        return identifier.value.strip().upper()
    named = ctx.named(reference)
    return named.code.strip().upper() if named and named.code_system == ODS_CODE and named.code else ""


def _check_own_team(resource, ctx) -> None:
    """An organisation asserts care relationships for its own teams only."""
    own = ctx.organisation.ods_code.upper()
    for index, reference in enumerate(resource.managingOrganization or []):
        code = _ods_code(reference, ctx)
        if code and code != own:
            raise Unmappable(
                error(
                    "forbidden",
                    f"This CareTeam is managed by {code}: an organisation asserts care relationships only for its "
                    f"own teams, and this token sends for {own}. The managing organisation must send it.",
                    f"CareTeam.managingOrganization[{index}]",
                )
            )


def _closed(resource, ctx) -> bool:
    ended = period_end(resource.period)
    return resource.status in CLOSED or (ended is not None and ended <= ctx.now)


def _refuse_unrelated(key) -> Unmappable:
    return Unmappable(
        error(
            "business-rule",
            f"{key}: this organisation holds no clinical data about this patient, so it cannot assert a care "
            "relationship with them. Send what the team has recorded (an Encounter, Condition, ...) first, or "
            "in the same bundle.",
            "CareTeam.subject",
        )
    )


def _save_care_team(key, resource, patient_id, sends_data, ctx, token, actor) -> str:
    closed = _closed(resource, ctx)
    involvement = _involvement(ctx.organisation, key)
    if involvement is None and not closed and not sends_data:
        raise _refuse_unrelated(key)
    patient = Patient.objects.get(pk=patient_id)
    name = (resource.name or next(iter(texts_of(resource.category)), "") or "Care team")[:200]
    kind = team_kind(" ".join([name, *texts_of(resource.category)]), ctx.organisation)
    team, _ = CareTeam.objects.get_or_create(organisation=ctx.organisation, name=name, defaults={"kind": kind})
    started, ended = period_start(resource.period), period_end(resource.period)
    if involvement is None:
        try:
            with transaction.atomic():
                involvement = actions.start_involvement(
                    by=actor,
                    patient=patient,
                    care_team=team,
                    reason=REASON.get(team.kind, Involvement.Reason.CASELOAD),
                    started_at=started or ctx.now,
                    source_id=key,
                    token=token,
                    # A review date while it lasts (one ending within the horizon needs none).
                    review_on=None if closed or token is None else actions.review_date(ended_at=ended),
                )
                if closed or ended:
                    actions.end_involvement(by=actor, involvement=involvement, ended_at=ended or ctx.now, token=token)
            return CREATED
        except IntegrityError:
            involvement = _involvement(ctx.organisation, key)  # a concurrent import created it first
    if involvement.care_team_id != team.pk or involvement.patient_id != patient.pk:
        raise Unmappable(
            error(
                "business-rule",
                f"{key} already records another team or patient: end it (status inactive) and send a new CareTeam.",
                "CareTeam.name",
            )
        )
    wanted_end = ended or ((involvement.ended_at or ctx.now) if closed else None)
    changes = {}
    if started and started != involvement.started_at:
        changes["started_at"] = started
    if wanted_end != involvement.ended_at:
        changes["ended_at"] = wanted_end
    if not changes:
        return UNCHANGED
    if not closed and not sends_data:
        raise _refuse_unrelated(key)  # an update that keeps or makes it current asserts it anew
    # The actions sync the grant from these: already loaded here, so no query to fetch them again.
    involvement.patient, involvement.care_team = patient, team
    if set(changes) == {"ended_at"} and involvement.ended_at is None:
        actions.end_involvement(by=actor, involvement=involvement, ended_at=wanted_end, token=token)
    else:
        actions.update_involvement(by=actor, involvement=involvement, token=token, **changes)
    return UPDATED


def _involvement(organisation, key) -> Involvement | None:
    return Involvement.objects.filter(care_team__organisation=organisation, source_id=key).first()
