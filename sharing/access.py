"""The access decision: the one place that says who may see a patient's record, and what of it.

IG review starts here. Views call `get_patient_for()` (or `decide()` and `visible()`), nothing else;
django-guardian is used only from this module and `sharing.actions`.
"""

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from guardian.utils import get_group_obj_perms_model

from audit.models import AccessBasis
from audit.writers import record_access
from directory.models import Professional
from directory.profiles import professional_for
from optout.state import upheld_objection
from patients.categories import Category
from patients.models import Patient

from . import agreements
from .models import VIEW_PERMISSION, BreakGlass


class Reason(enum.StrEnum):
    """Why the decision came out as it did (stored in audit rows: plain strings, never renamed)."""

    CARE_TEAM = "care-team"
    BREAK_GLASS = "break-glass"
    NOT_SIGNED_IN = "not-signed-in"
    NO_PROFESSIONAL = "no-professional-profile"
    INACTIVE = "inactive"
    NO_RELATIONSHIP = "no-care-relationship"
    NO_SUCH_PATIENT = "no-such-patient"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    basis: AccessBasis
    reason: Reason
    professional: Professional | None = None
    break_glass: BreakGlass | None = None
    # An upheld objection: only the viewer's own organisation's entries are shown.
    opted_out: bool = False
    # The sharing agreements' version read with the decision's facts (sharing/agreements.py), and the agreements
    # in force as this decision found them: read once, on the primary, for every entry query of the request.
    agreements_version: int | None = None
    _memo: dict = field(default_factory=dict, compare=False, repr=False)

    def shared(self) -> Mapping[str, frozenset[int]]:
        """Organisations sharing each category today (by category value), read once for this decision."""
        if "agreements" not in self._memo:
            self._memo["agreements"] = agreements.in_force(self.agreements_version)
        return self._memo["agreements"]

    @property
    def can_break_glass(self):
        """Refused for want of a relationship (or no such patient): the page offers emergency access."""
        return not self.allowed and self.reason in (Reason.NO_RELATIONSHIP, Reason.NO_SUCH_PATIENT)

    @property
    def organisation_id(self):
        return self.professional.organisation_id if self.professional else None


class RecordAccessDenied(PermissionDenied):
    """Refused, or no such patient: the two look the same from outside (rendered as one page)."""

    def __init__(self, decision: Decision, patient_id=None):
        super().__init__("Record not available")
        self.decision = decision
        self.patient_id = patient_id


def _refused(reason: Reason, professional=None) -> Decision:
    return Decision(allowed=False, basis=AccessBasis.NONE, reason=reason, professional=professional)


@dataclass(frozen=True)
class Facts:
    """What the decision reads about one viewer and one patient, beyond the viewer's own profile: fetched in one
    query (`_fact_columns`), alone or as part of the query that fetches the patient (`get_patient_for`)."""

    care_team: bool
    opted_out: bool
    agreements_version: int | None = None


def _fact_columns(user, organisation_id) -> dict:
    """The decision's facts as subqueries of a query over patients (one row per patient): a care-team grant of
    the viewer's acting organisation (H-19), and an upheld objection."""
    grant = Exists(_care_team_grants(user, organisation_id, OuterRef("pk")))
    return {
        "decision_care_team": grant,
        "decision_opted_out": upheld_objection(),
        "decision_agreements_version": agreements.version_column(),
    }


def _facts_of(row) -> Facts:
    return Facts(
        care_team=row.decision_care_team,
        opted_out=row.decision_opted_out,
        agreements_version=row.decision_agreements_version,
    )


def decide(user, patient: Patient, facts: Facts | None = None) -> Decision:
    """May `user` see `patient`'s shared record, and on what basis?

    Order matters: inactive or profile-less users are refused before anything else; a care-team grant
    outranks break glass, so IG review sees break glass only where it was needed.
    Deliberately ignores Django's superuser flag: being staff or an administrator gives no right to
    read clinical records. `facts`, when the caller fetched them with the patient (for this user), save the
    query that fetches them here.
    """
    if not getattr(user, "is_authenticated", False):
        return _refused(Reason.NOT_SIGNED_IN)
    if not user.is_active:
        return _refused(Reason.INACTIVE)
    professional = professional_for(user)
    if professional is None:
        return _refused(Reason.NO_PROFESSIONAL)
    if not professional.active or not professional.organisation.active:
        return _refused(Reason.INACTIVE, professional)
    if facts is None:
        rows = Patient.objects.filter(pk=patient.pk).annotate(**_fact_columns(user, professional.organisation_id))
        row = rows.only("pk").first()
        facts = _facts_of(row) if row is not None else Facts(care_team=False, opted_out=False)  # gone: no grant
    if facts.care_team:
        return Decision(
            allowed=True,
            basis=AccessBasis.CARE_TEAM,
            reason=Reason.CARE_TEAM,
            professional=professional,
            opted_out=facts.opted_out,
            agreements_version=facts.agreements_version,
        )
    break_glass = active_break_glass(user, patient)
    if break_glass is not None:
        return Decision(
            allowed=True,
            basis=AccessBasis.BREAK_GLASS,
            reason=Reason.BREAK_GLASS,
            professional=professional,
            break_glass=break_glass,
            opted_out=facts.opted_out,
            agreements_version=facts.agreements_version,
        )
    return _refused(Reason.NO_RELATIONSHIP, professional)


def active_break_glass(user, patient: Patient) -> BreakGlass | None:
    """The user's unexpired emergency access to this patient, if any (it ends by itself at expiry)."""
    now = timezone.now()
    return (
        BreakGlass.objects.filter(user=user, patient=patient, started_at__lte=now, expires_at__gt=now)
        .order_by("-expires_at")
        .first()
    )


def can_search(user) -> bool:
    """Any active professional may search (demographics only), as with the Summary Care Record."""
    professional = professional_for(user)
    return bool(professional and user.is_active and professional.active and professional.organisation.active)


def _care_team_grants(user, organisation_id, patient) -> QuerySet:
    """The grants of `read_shared_record` on `patient` (an instance or an OuterRef) to one of the user's
    care-team groups: of the acting organisation's teams only, when `organisation_id` is given.

    Only the per-patient grant counts (the group object-permission table, written by `sharing.actions` from
    involvements): a global `patients.read_shared_record`, Django's `view_patient` (admin's) or the superuser
    flag never stand in for a care relationship. A professional holding roles in two organisations acts in one at
    a time, and a relationship of the other is not theirs in this one (H-19)."""
    permissions = get_group_obj_perms_model(Patient)
    grants = permissions.objects.filter(
        content_object=patient,
        permission__codename=VIEW_PERMISSION,
        permission__content_type__app_label=Patient._meta.app_label,
        group__user=user,
    )
    if organisation_id is not None:
        grants = grants.filter(group__care_team__organisation_id=organisation_id)
    return grants


def has_care_team_permission(user, patient: Patient, organisation_id=None) -> bool:
    """One indexed query: does any of the user's care-team groups hold `read_shared_record` on this patient?"""
    return _care_team_grants(user, organisation_id, patient).exists()


def patients_in_care_of(user) -> QuerySet:
    """The patients a professional's care teams currently hold access to ("my patients")."""
    if not can_search(user):
        return Patient.objects.none()
    permissions = get_group_obj_perms_model(Patient)
    granted = permissions.objects.filter(
        permission__codename=VIEW_PERMISSION,
        permission__content_type__app_label=Patient._meta.app_label,
        group__user=user,
        group__care_team__organisation_id=professional_for(user).organisation_id,
    ).values("content_object_id")
    return Patient.objects.filter(pk__in=granted)


def sharing_organisations(category: Category, decision: Decision) -> frozenset[int]:
    """Organisations sharing a category today, as the decision found them on the primary: values, so that an
    entry query holds no subquery on the agreements and may run on a replica."""
    return decision.shared().get(category.value, frozenset())


def visible(entries: QuerySet, decision: Decision, *, via: str = "", category: Category | None = None) -> QuerySet:
    """Narrow a queryset of record entries to what this decision lets the viewer see.

    - the viewer's own organisation's entries are always shown (they hold them anyway);
    - another organisation's entries only if it shares that category, and not if flagged sensitive
      (sexual health, IVF, ...);
    - after an upheld objection, only the viewer's own organisation's entries;
    - entries withdrawn by their source as entered in error are shown to no one.
    `via` is the lookup path to the entry when filtering a related model (e.g. "result__" for
    observations, whose visibility follows their report).
    """
    if not decision.allowed:
        return entries.none()
    category = category or entries.model.category
    own = Q(**{f"{via}source_organisation_id": decision.organisation_id})
    not_withdrawn = Q(**{f"{via}entered_in_error": False})
    if decision.opted_out:
        return entries.filter(own, not_withdrawn)
    shared = Q(
        **{f"{via}source_organisation_id__in": sharing_organisations(category, decision), f"{via}sensitive": False}
    )
    return entries.filter(shared | own, not_withdrawn)


def visible_teams(involvements: QuerySet, decision: Decision) -> QuerySet:
    """Involvements shown in the record's "involved teams" section; their source is the team's
    organisation, which must share the "involved teams" category (or be the viewer's own)."""
    if not decision.allowed:
        return involvements.none()
    own = Q(care_team__organisation_id=decision.organisation_id)
    if decision.opted_out:
        return involvements.filter(own)
    return involvements.filter(own | Q(care_team__organisation_id__in=sharing_organisations(Category.TEAMS, decision)))


# Set by a verified launch from a partner's clinical system (identity.launch), for the record page it opens.
LAUNCH_SESSION_KEY = "carerecord_launch"


def launched_for(request, patient_id) -> str:
    """The launch that sent this request to this patient's record, taken once (the first record page after a
    launch names it on its AccessEvent); "" when none did."""
    session = getattr(request, "session", None)
    launch = session.get(LAUNCH_SESSION_KEY) if session is not None else None
    if not launch or patient_id is None or launch.get("patient_id") != str(patient_id):
        return ""
    del session[LAUNCH_SESSION_KEY]
    return str(launch.get("label", ""))


def get_patient_for(request, patient_id, *, page: str) -> tuple[Patient, Decision]:
    """Fetch the patient, decide, and write the one audit event for this page; raise when refused.

    A missing patient and a refused one raise the same RecordAccessDenied, so an outsider cannot probe
    which patients exist.
    """
    patient = None
    try:
        patient_uuid = uuid.UUID(str(patient_id))
    except ValueError:
        patient_uuid = None
    facts = None
    if patient_uuid is not None:
        # The patient and what the decision reads about them, for this viewer, in one query.
        found = Patient.objects.select_related("registered_gp").filter(pk=patient_uuid)
        professional = professional_for(request.user)
        if professional is not None:
            found = found.annotate(**_fact_columns(request.user, professional.organisation_id))
        patient = next(iter(found.order_by()[:1]), None)  # by primary key: no ORDER BY to build or run
        if patient is not None and professional is not None:
            facts = _facts_of(patient)
    if patient is None:
        decision = _refused(Reason.NO_SUCH_PATIENT, professional_for(request.user))
    else:
        decision = decide(request.user, patient, facts)
    launch = launched_for(request, patient_uuid)
    record_access(
        request=request, patient=patient, patient_id=patient_uuid, decision=decision, page=page, launch=launch
    )
    if not decision.allowed:
        raise RecordAccessDenied(decision, patient_id=patient_uuid)
    return patient, decision
