"""The seed itself: organisations, teams and staff, the demo accounts, then patients and their records, then the
opt-out side (the regional process texts and a few objections).

Everything IG-relevant is written the way production writes it, through the apps' actions: organisations,
professionals and team memberships through `directory.actions`, involvements and changes to sharing agreements
through `sharing.actions`, the regional process texts and objections through `optout.actions`. So group
memberships, guardian grants and audit rows are real and the demo accounts see exactly what they should. The
synthetic clinical record (patients, support people, entries, observations) is bulk-inserted, as a feed would,
and so are the starting sharing agreements (see `organisations`).
"""

import random
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from faker import Faker

from directory.actions import (
    add_role_profile,
    add_team_member,
    note_received,
    provision_professional,
    save_organisation,
)
from directory.models import CareTeam, CareTeamMembership, Organisation, Professional, Region
from optout import actions as optout_actions
from optout.models import Objection, RegionalProcess
from patients import demographics
from patients.categories import Category
from patients.models import ENTRY_MODELS, Observation, Patient, Result, SourceDemographics, SupportPerson
from patients.nhs_numbers import test_range_numbers
from sharing.actions import end_involvement, save_sharing_agreement, start_involvement
from sharing.models import Involvement, SharingAgreement

from .accounts import DEMO_ACCOUNTS, DEMO_PASSWORD, information_governance_group
from .catalogue import (
    NOT_SHARED,
    ORGANISATIONS,
    REGIONAL_PROCESSES,
    TEAMLESS_STAFF,
    TEAMS,
    landline,
    postcode,
    registration_number,
    slug,
    street_address,
)
from .records import SEED, SOURCE_PREFIX, PatientRecord

NHS_NUMBER_START = 100_000  # leaves the bottom of the 999 range to the test factories
Role = Professional.Role
# The fields the seed sets on what it creates, named in the audit rows as admin names a form's changed fields.
ORGANISATION_FIELDS = ["ods_code", "name", "kind", "region", "address"]
REGIONAL_PROCESS_FIELDS = ["region", "title", "body", "contact_email", "contact_phone"]


@dataclass
class SeedSummary:
    created: Counter = field(default_factory=Counter)
    totals: dict = field(default_factory=dict)
    demo_patient: Patient | None = None
    opted_out_patient: Patient | None = None  # upheld objection; registered with the demo GP's practice
    restricted_patient: Patient | None = None  # the S-flag: no address, phone, email or contacts shown
    deceased_patient: Patient | None = None


def seed(*, patients=200):
    """Create the demo data set, or complete it; return what was created and the totals afterwards."""
    with transaction.atomic():
        return Seeder(patients).run()


def _insert_missing(model, objects, organisation_ids):
    """Insert the objects whose (source organisation, source id) is not stored yet; return those inserted."""
    stored = set(
        model.objects.filter(
            source_organisation_id__in=organisation_ids, source_id__startswith=SOURCE_PREFIX
        ).values_list("source_organisation_id", "source_id")
    )
    missing = [obj for obj in objects if (obj.source_organisation_id, obj.source_id) not in stored]
    model.objects.bulk_create(missing, batch_size=500)
    return missing


class Seeder:
    def __init__(self, patient_count):
        self.patient_count = patient_count
        self.summary = SeedSummary()
        self.now = timezone.now()
        self.today = timezone.localdate(self.now)
        self.fake = Faker("en_GB")
        self.orgs = {}  # ODS code -> Organisation
        self.teams = {}  # (ODS code, team name) -> CareTeam
        self.staff = defaultdict(list)  # (ODS code, team name) -> [(name, job title, role)], in a stable order

    def run(self):
        self.organisations()
        self.care_teams()
        self.professionals()
        self.demo_accounts()
        self.ig_group()
        self.patients_and_records()
        self.feeds_received()
        self.regional_processes()
        self.objections()
        self.summary.totals = {
            "organisations": Organisation.objects.count(),
            "care teams": CareTeam.objects.count(),
            "professionals": Professional.objects.count(),
            "patients": Patient.objects.count(),
            "support people": SupportPerson.objects.count(),
            "involvements": Involvement.objects.count(),
            **{model._meta.verbose_name_plural: model.objects.count() for model in ENTRY_MODELS.values()},
            "observations": Observation.objects.count(),
            "regional processes": RegionalProcess.objects.count(),
            "objections": Objection.objects.count(),
        }
        return self.summary

    # --- organisations, teams, people ---

    def organisations(self):
        stored = Organisation.objects.in_bulk([code for code, *_ in ORGANISATIONS], field_name="ods_code")
        agreements = defaultdict(dict)  # organisation id -> category -> SharingAgreement
        for agreement in SharingAgreement.objects.filter(organisation__in=stored.values()):
            agreements[agreement.organisation_id][agreement.category] = agreement
        since = self.today.replace(year=self.today.year - 2, day=1)
        for code, name, kind, region in ORGANISATIONS:
            organisation = stored.get(code)
            if organisation is None:
                rng = random.Random(f"{SEED}:org:{code}")
                address = f"{street_address(rng)}\n{postcode(rng, region)}"
                organisation = Organisation(ods_code=code, name=name, kind=kind, region=region, address=address)
                save_organisation(by=None, organisation=organisation, changed=ORGANISATION_FIELDS)
                self.summary.created["organisations"] += 1
            self.orgs[code] = organisation
            for category in Category:
                shares = category not in NOT_SHARED.get(code, ())
                agreement = agreements[organisation.pk].get(category)
                if agreement is None:
                    agreement = SharingAgreement(organisation=organisation, category=category, shares=shares)
                    agreement.since = since
                    save_sharing_agreement(by=None, agreement=agreement)
                # A database seeded before a category joined NOT_SHARED is brought into line, through the action
                # (audited, as IG's changes are); any other agreement IG has changed since stays as IG left it.
                elif not shares and agreement.shares:
                    agreement.shares = False
                    save_sharing_agreement(by=None, agreement=agreement)
                    self.summary.created["sharing agreements updated"] += 1

    def care_teams(self):
        for code, teams in TEAMS.items():
            for team_name, team_kind in teams:
                rng = random.Random(f"{SEED}:team:{code}:{team_name}")
                team, created = CareTeam.objects.get_or_create(
                    organisation=self.orgs[code], name=team_name, defaults={"kind": team_kind, "phone": landline(rng)}
                )
                self.teams[code, team_name] = team
                self.summary.created["care teams"] += created

    def professionals(self):
        plan = [(code, team, staff) for code, teams in TEAMS.items() for (team, _), staff in teams.items()]
        plan += [(code, None, staff) for code, staff in TEAMLESS_STAFF.items()]
        emails = set()
        for code, team_name, staff in plan:
            for number, (role, job_title) in enumerate(staff):
                key = f"{code}:{team_name}:{number}"
                rng = random.Random(f"{SEED}:staff:{key}")
                self.fake.seed_instance(zlib.crc32(key.encode()))
                first, last = self.fake.first_name(), self.fake.last_name()
                email = f"{slug(first)}.{slug(last)}@{code.lower()}.carerecord.test"
                while email in emails:  # a namesake in the same organisation
                    email = email.replace("@", "1@", 1)
                emails.add(email)
                registration = registration_number(role, job_title, rng)
                professional = self.professional(email, first, last, role, job_title, code, registration)
                self.join(professional, code, team_name, job_title)

    def professional(self, email, first, last, role, job_title, code, registration, *, account=None):
        professional = Professional.objects.select_related("user").filter(user__username=email).first()
        if professional is None:
            # Provisioned as admin provisions one: an account with no usable password, and the profile.
            professional = provision_professional(
                by=None,
                email=email,
                first_name=first,
                last_name=last,
                organisation=self.orgs[code],
                role=role,
                job_title=job_title,
                registration_number=registration,
            )
            self.summary.created["professionals"] += 1
            # Demo set-up the directory has no action for: the demo accounts sign in with the published password
            # (hashing one for every member of staff would cost seconds), and IG officers use admin.
            user, changed = professional.user, []
            if account:
                user.set_password(DEMO_PASSWORD)
                changed.append("password")
            if role == Role.IG_OFFICER:
                user.is_staff = True
                changed.append("is_staff")
            if changed:
                user.save(update_fields=changed)
        user = professional.user
        if account and not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
            TOTP.activate(user, account.totp_secret)  # the service requires an authenticator app
        return professional

    def join(self, professional, code, team_name, job_title):
        if team_name is None:
            return
        team = self.teams[code, team_name]
        # Through the action (group membership, audit), but only once: a re-run must not re-audit.
        if not CareTeamMembership.objects.filter(team=team, professional=professional).exists():
            add_team_member(by=None, team=team, professional=professional, role_in_team=job_title)
        self.staff[code, team_name].append((professional.name, job_title, professional.role))

    def demo_accounts(self):
        for account in DEMO_ACCOUNTS:
            rng = random.Random(f"{SEED}:demo:{account.email}")
            registration = registration_number(account.role, account.job_title, rng)
            professional = self.professional(
                account.email,
                account.first_name,
                account.last_name,
                account.role,
                account.job_title,
                account.organisation,
                registration,
                account=account,
            )
            self.join(professional, account.organisation, account.team, account.job_title)
            for code, role, job_title in account.other_roles:
                self.role_profile(professional, code, role, job_title)

    def role_profile(self, professional, code, role, job_title):
        """A further role at another organisation (as CIS2 gives a locum GP's out-of-hours sessions): the demo's
        "Change role" and single sign-on's role selection."""
        organisation = self.orgs[code]
        if not professional.role_profiles.filter(organisation=organisation, role=role).exists():
            add_role_profile(
                by=None, professional=professional, organisation=organisation, role=role, job_title=job_title
            )

    def ig_group(self):
        # Admin rights, not record access (that comes only from care teams, through the actions above): the
        # directory has no action for Django's own groups, so the demo sets this one as a superuser would.
        group = information_governance_group()
        for account in DEMO_ACCOUNTS:
            if account.role == Role.IG_OFFICER:
                get_user_model().objects.get(username=account.email).groups.add(group)

    # --- patients and their records ---

    def patients_and_records(self):
        numbers = test_range_numbers(NHS_NUMBER_START)
        records = [PatientRecord(self, index, next(numbers)) for index in range(self.patient_count)]
        self.mark_demographics(records)
        wanted = [record.patient.nhs_number for record in records]
        stored = set(Patient.objects.filter(nhs_number__in=wanted).values_list("nhs_number", flat=True))
        new_patients = [record.patient for record in records if record.patient.nhs_number not in stored]
        Patient.objects.bulk_create(new_patients, batch_size=500)
        self.summary.created["patients"] += len(new_patients)
        by_number = Patient.objects.in_bulk(wanted, field_name="nhs_number")
        for record in records:
            record.bind(by_number[record.patient.nhs_number])
        self.summary.demo_patient = records[0].patient if records else None
        self.records = records
        self.source_demographics(records)

        organisation_ids = [organisation.pk for organisation in self.orgs.values()]
        support = [person for record in records for person in record.support]
        self.summary.created["support people"] += len(_insert_missing(SupportPerson, support, organisation_ids))
        new_results = []
        for model in ENTRY_MODELS.values():
            entries = [entry for record in records for entry in record.entries[model]]
            inserted = _insert_missing(model, entries, organisation_ids)
            self.summary.created[model._meta.verbose_name_plural] += len(inserted)
            if model is Result:
                new_results = inserted
        self.observations(records, new_results, organisation_ids)
        self.involvements(records)

    def feeds_received(self):
        """When each demo source last sent anything: most within the hour, a few hours or days behind, so the
        record's freshness lines show both a live feed and a stale one (the social care feed a week behind)."""
        now = timezone.now()
        behind = {"ZZK1": timedelta(days=7), "ZZH": timedelta(days=2), "ZZM": timedelta(hours=5)}
        for code, organisation in self.orgs.items():
            lag = behind.get(code, timedelta(minutes=5 + zlib.crc32(code.encode()) % 50))
            note_received(organisation, now - lag)

    def mark_demographics(self, records):
        """One restricted (S-flag) and one deceased patient, registered with the demo GP's practice where it has
        enough patients (the GP sees them in "My patients"), chosen from the end so that the objections (picked
        from the start) fall on others."""
        practice = _demo_account(Role.GP).organisation
        others = [record for record in reversed(records) if not record.anchor]
        chosen = [record for record in others if record.practice == practice][:2]
        chosen += [record for record in others if record not in chosen][: 2 - len(chosen)]
        if len(chosen) == 2:
            chosen[0].mark_restricted()
            chosen[1].mark_deceased()
            self.summary.restricted_patient, self.summary.deceased_patient = chosen[0].patient, chosen[1].patient

    def source_demographics(self, records):
        """Each patient's demographics as their GP practice holds them (the master view), and two deliberate
        disagreements: the shared demo patient's hospital trust holds the address before they moved, and the next
        patient's trust an old mobile number. Inserted where missing, then the master views recomputed for those
        (a database seeded before sources were kept takes the restricted and deceased patients' flags from them)."""
        disagreeing = {0: "address"}
        second = next((i for i, r in enumerate(records) if i and not r.restricted and r.died_on is None), None)
        if second is not None:
            disagreeing[second] = "phone"
        copies = [
            copy
            for index, record in enumerate(records)
            for copy in record.source_demographics(self.orgs, disagreeing=disagreeing.get(index))
        ]
        stored = set(
            SourceDemographics.objects.filter(patient_id__in=[record.patient.pk for record in records]).values_list(
                "patient_id", "organisation_id"
            )
        )
        missing = [copy for copy in copies if (copy.patient_id, copy.organisation_id) not in stored]
        SourceDemographics.objects.bulk_create(missing, batch_size=500)
        self.summary.created["source demographics"] += len(missing)
        demographics.recompute({copy.patient_id for copy in missing})

    def observations(self, records, new_results, organisation_ids):
        """Observations have no natural key of their own, so they are created only with a newly created report."""
        pending = {key: observations for record in records for key, observations in record.observations.items()}
        source_ids = [result.source_id for result in new_results]
        observations = []
        for start in range(0, len(source_ids), 500):
            stored = Result.objects.filter(
                source_organisation_id__in=organisation_ids, source_id__in=source_ids[start : start + 500]
            ).values_list("source_organisation_id", "source_id", "id")
            for organisation_id, source_id, result_id in stored:
                for observation in pending[organisation_id, source_id]:
                    observation.result_id = result_id
                    observations.append(observation)
        Observation.objects.bulk_create(observations, batch_size=1000)
        self.summary.created["observations"] += len(observations)

    def involvements(self, records):
        """Through the actions, so each grant (and each revocation) is made exactly as in production."""
        stored = set(
            Involvement.objects.filter(source_id__startswith=SOURCE_PREFIX).values_list("care_team_id", "source_id")
        )
        for record in records:
            for team, reason, started_at, ended_at, source_id in record.involvements:
                if (team.pk, source_id) in stored:
                    continue
                involvement = start_involvement(
                    by=None,
                    patient=record.patient,
                    care_team=team,
                    reason=reason,
                    started_at=started_at,
                    source_id=source_id,
                )
                if ended_at:
                    end_involvement(by=None, involvement=involvement, ended_at=ended_at)
                self.summary.created["involvements"] += 1

    # --- opt-out: the regional processes and a few objections ---

    def regional_processes(self):
        stored = set(RegionalProcess.objects.values_list("region", flat=True))
        for region, (title, body, email, phone) in REGIONAL_PROCESSES.items():
            if region in stored:
                continue  # text IG has edited since stays as IG wrote it
            process = RegionalProcess(region=region, title=title, body=body, contact_email=email, contact_phone=phone)
            optout_actions.save_regional_process(by=None, process=process, changed=REGIONAL_PROCESS_FIELDS)
            self.summary.created["regional processes"] += 1

    def objections(self):
        """Three requests at different stages, made through the actions so their audit trails are real: one from
        the web form waiting for IG to match it, one recorded by a GP and verified, and one upheld for a patient
        of the demo GP's practice (not the shared demo patient), so the GP can open a record under the opted-out
        banner. A patient who already has an objection, in any state, is left as IG left it; replies go by
        phone, so seeding sends no email."""
        ig = get_user_model().objects.get(username=_demo_account(Role.IG_OFFICER).email)
        gp_practice = _demo_account(Role.GP).organisation
        chosen = set()

        def pick(wanted):
            for record in self.records:
                special = record.restricted or record.died_on  # an objection by post needs an address
                if not record.anchor and not special and record.patient.pk not in chosen and wanted(record):
                    chosen.add(record.patient.pk)
                    return record
            return None

        upheld = pick(lambda r: r.practice == gp_practice and self.shared_by_others(r))
        web_request = pick(lambda r: r.region == Region.SEL) or pick(lambda r: True)
        recorded = pick(lambda r: True)

        if upheld and not _has_objection(upheld.patient):
            objection = self.web_request(upheld, days_ago=40, nhs_number=upheld.patient.nhs_number)
            optout_actions.match_patient(by=ig, objection=objection, patient=upheld.patient)
            optout_actions.verify(by=ig, objection=objection, identity_check="call-back")
            optout_actions.uphold(
                by=ig,
                objection=objection,
                reason="Identity confirmed by phone. The patient's wish; no overriding clinical need.",
            )
            self.summary.created["objections"] += 1
        if upheld and Objection.objects.filter(patient=upheld.patient, status=Objection.Status.UPHELD).exists():
            self.summary.opted_out_patient = upheld.patient
        if web_request and not _has_objection(web_request.patient):
            self.web_request(web_request, days_ago=3)
            self.summary.created["objections"] += 1
        if recorded and not _has_objection(recorded.patient):
            team = self.teams[recorded.practice, "Practice team"]
            gp = Professional.objects.filter(memberships__team=team, role=Role.GP).select_related("user").first()
            objection = optout_actions.record_professional_objection(
                by=gp.user,
                patient=recorded.patient,
                reason="Does not want other services to see their GP record; asked at a routine appointment.",
                how_told="in-person",
                region=recorded.region,
            )
            optout_actions.verify(by=ig, objection=objection, identity_check="professional")
            self.summary.created["objections"] += 1

    def shared_by_others(self, record):
        """Does another organisation share something in this record? (Then an upheld objection visibly hides it.)"""
        for entries in record.entries.values():
            for entry in entries:
                code = entry.source_organisation.ods_code
                if code != record.practice and not entry.sensitive and entry.category not in NOT_SHARED.get(code, ()):
                    return True
        return False

    def web_request(self, record, *, days_ago, nhs_number=""):
        patient = record.patient
        return optout_actions.submit_objection(
            given_name=patient.given_name,
            family_name=patient.family_name,
            date_of_birth=patient.date_of_birth,
            nhs_number=nhs_number,
            postcode=patient.postcode,
            contact_phone=patient.phone,
            region=record.region,
            reason="I would rather each service kept its own records about me.",
            received_at=self.now - timedelta(days=days_ago),
        )


def _demo_account(role):
    return next(account for account in DEMO_ACCOUNTS if account.role == role)


def _has_objection(patient):
    """Matched or not: a web request is found by the details it gave, as IG would find it."""
    return Objection.objects.filter(
        Q(patient=patient)
        | Q(
            given_name__iexact=patient.given_name,
            family_name__iexact=patient.family_name,
            date_of_birth=patient.date_of_birth,
        )
    ).exists()
