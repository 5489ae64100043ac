"""CareTeam -> a sharing.CareTeam at the sending organisation, and an Involvement of it with the subject patient.

This is the one resource that grants access (through sharing.actions, audited, like every involvement): the
source says this team of its own is caring for this patient. The team is found or made by name at the sender;
its members are not mapped (practitioners get no accounts from imports: IG adds members). An inactive or
entered-in-error CareTeam ends the involvement (Involvement has no entered-in-error flag, so it is ended, not
hidden). Moving an involvement to another team or patient is refused: end it and send a new CareTeam.
"""

from django.db import IntegrityError, transaction

from directory.models import CareTeam, Organisation
from patients.models import Patient
from sharing import actions
from sharing.models import Involvement

from ..context import Unmappable
from ..outcome import error
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


def save_care_teams(outcomes, ctx) -> None:
    for outcome in outcomes:
        try:
            outcome.finish(_save_care_team(outcome.key, outcome.entry.resource, ctx))
        except Unmappable as exc:
            outcome.reject(exc.issue)


def _save_care_team(key, resource, ctx) -> str:
    patient = Patient.objects.get(pk=ctx.patient_id(resource.subject, "CareTeam.subject"))
    name = (resource.name or next(iter(texts_of(resource.category)), "") or "Care team")[:200]
    kind = team_kind(" ".join([name, *texts_of(resource.category)]), ctx.organisation)
    team, _ = CareTeam.objects.get_or_create(organisation=ctx.organisation, name=name, defaults={"kind": kind})
    started, ended = period_start(resource.period), period_end(resource.period)
    closed = resource.status in CLOSED or (ended is not None and ended <= ctx.now)
    involvement = _involvement(ctx.organisation, key)
    if involvement is None:
        try:
            with transaction.atomic():
                involvement = actions.start_involvement(
                    by=None,
                    patient=patient,
                    care_team=team,
                    reason=REASON.get(team.kind, Involvement.Reason.CASELOAD),
                    started_at=started or ctx.now,
                    source_id=key,
                )
                if closed or ended:
                    actions.end_involvement(by=None, involvement=involvement, ended_at=ended or ctx.now)
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
    # The actions sync the grant from these: already loaded here, so no query to fetch them again.
    involvement.patient, involvement.care_team = patient, team
    if set(changes) == {"ended_at"} and involvement.ended_at is None:
        actions.end_involvement(by=None, involvement=involvement, ended_at=wanted_end)
    else:
        actions.update_involvement(by=None, involvement=involvement, **changes)
    return UPDATED


def _involvement(organisation, key) -> Involvement | None:
    return Involvement.objects.filter(care_team__organisation=organisation, source_id=key).first()
