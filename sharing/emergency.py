"""The emergency view's queries: what an ambulance crew, NHS 111 or an emergency department needs first.

Everything starts from the access decision and goes through `visible()`, as on the summary. Allergies, current
medications, alerts and active problems are the summary's own selections (`record.SHOWN_WHOLE`), shown whole
however many there are (H-07); the rest is what an emergency needs next: plans for a crisis or the end of life,
who to call, the registered GP and how to reach them, and where the patient was last seen. A fixed number of
queries whatever the size of the record.
"""

import datetime
from dataclasses import dataclass, field
from functools import reduce
from operator import or_

from django.db.models import Q
from django.utils import timezone

from directory.models import Organisation
from patients.categories import Category
from patients.models import Appointment, CarePlan, Patient, SupportPerson

from . import record
from .access import Decision

# Care plans carry no coded kind (a FHIR CarePlan's title, else its category's text, is kept as the title:
# fhirapi/mapping/care_plans.py), so a plan for a crisis or the end of life is known by what its title says.
EMERGENCY_PLAN_WORDS = (
    "respect",  # ReSPECT (Recommended Summary Plan for Emergency Care and Treatment)
    "dnacpr",
    "dnar",
    "resuscitat",
    "advance decision",
    "advance care plan",
    "advance statement",
    "treatment escalation",
    "crisis",
    "end of life",
    "end-of-life",
    "palliative",
)
# Where the patient was last seen: the newest few, the rest one link away (the appointments page).
ATTENDANCES_SHOWN = 5
SEEN_KINDS = [Appointment.Kind.ATTENDANCE, Appointment.Kind.ADMISSION, Appointment.Kind.APPOINTMENT]
# What says the patient was seen, or was due and did not come: a booked one in the past may or may not have
# happened, and a cancelled one did not (both are on the appointments page, as their source said them).
SEEN_STATUSES = [
    Appointment.Status.ATTENDED,
    Appointment.Status.IN_PROGRESS,
    Appointment.Status.COMPLETED,
    Appointment.Status.DID_NOT_ATTEND,
]
# Next of kin and those who may decide for the patient before other contacts.
CONTACT_ORDER = [
    SupportPerson.Relationship.NEXT_OF_KIN,
    SupportPerson.Relationship.LASTING_POWER_OF_ATTORNEY,
    SupportPerson.Relationship.CARER,
]


@dataclass
class EmergencyView:
    allergies: record.Section
    medications: record.Section
    alerts: record.Section
    conditions: record.Section
    plans: list[CarePlan]
    support_network: list[SupportPerson]
    gp: Organisation | None
    gp_teams: list = field(default_factory=list)  # the practice's involved teams the viewer may see (their phones)
    attendances: list[Appointment] = field(default_factory=list)
    attendances_total: int = 0

    @property
    def sections(self):
        """The four never cut short, in the emergency view's order (allergies and medications first)."""
        return [self.allergies, self.medications, self.alerts, self.conditions]

    @property
    def attendances_more(self):
        return max(self.attendances_total - len(self.attendances), 0)

    def sources(self) -> list[Organisation]:
        """The organisations whose entries the page shows, for their freshness (no query)."""
        return record.sources(
            *(section.items for section in self.sections), self.plans, self.support_network, self.attendances
        )


def whole_section(patient: Patient, decision: Decision, category: Category, today: datetime.date) -> record.Section:
    """All that is current of a category the summary never cuts short, in the summary's order and groups."""
    whole = record.SHOWN_WHOLE[category]
    items = list(record.entries(patient, decision, category).filter(whole.current(today)).order_by(*whole.order))
    return record.Section(
        category=category,
        items=items,
        all_of=whole.all_of,
        groups=whole.groups(items) if whole.groups else [],
    )


def emergency_plans(patient: Patient, decision: Decision) -> list[CarePlan]:
    """Visible plans for a crisis or the end of life (ReSPECT, DNACPR, advance decisions...) that are not
    completed (a completed or revoked plan no longer holds), newest first."""
    says_emergency = reduce(or_, (Q(title__icontains=word) for word in EMERGENCY_PLAN_WORDS))
    plans = record.entries(patient, decision, Category.CARE_PLANS).filter(says_emergency)
    return list(plans.exclude(status=CarePlan.Status.COMPLETED))


def latest_attendances(patient: Patient, decision: Decision, *, now=None) -> tuple[list[Appointment], int]:
    """The newest visible attendances, admissions and appointments the patient came to (or missed), and how many
    in all: not referrals, not in the future, and dated (an undated one cannot be said to be the latest)."""
    now = now or timezone.now()
    seen = record.entries(patient, decision, Category.APPOINTMENTS).filter(
        kind__in=SEEN_KINDS, status__in=SEEN_STATUSES, effective_at__lte=now
    )
    return list(seen[:ATTENDANCES_SHOWN]), seen.count()


def contacts(patient: Patient, decision: Decision) -> list[SupportPerson]:
    """The visible support network, next of kin and attorneys and carers first (none for a restricted patient)."""
    people = list(record.support_network(patient, decision))
    rank = {relationship: n for n, relationship in enumerate(CONTACT_ORDER)}
    return sorted(people, key=lambda person: (rank.get(person.relationship, len(rank)), person.name))


def gp_teams(patient: Patient, decision: Decision) -> list:
    """The registered practice's current involved teams the viewer may see: how to reach the practice (an
    organisation holds no phone number; its teams do)."""
    if patient.registered_gp_id is None:
        return []
    return list(
        record.involvements(patient, decision, brief=True).filter(care_team__organisation_id=patient.registered_gp_id)
    )


def emergency_view(patient: Patient, decision: Decision, *, today: datetime.date | None = None) -> EmergencyView:
    today = today or timezone.localdate()
    attendances, attendances_total = latest_attendances(patient, decision)
    return EmergencyView(
        allergies=whole_section(patient, decision, Category.ALLERGIES, today),
        medications=whole_section(patient, decision, Category.MEDICATIONS, today),
        alerts=whole_section(patient, decision, Category.ALERTS, today),
        conditions=whole_section(patient, decision, Category.CONDITIONS, today),
        plans=emergency_plans(patient, decision),
        support_network=contacts(patient, decision),
        gp=patient.registered_gp,
        gp_teams=gp_teams(patient, decision),
        attendances=attendances,
        attendances_total=attendances_total,
    )
