"""One synthetic patient and their whole record, drawn from the patient's own seed.

The record is built unsaved: the seeder inserts what is missing and binds the entries to the stored patient,
so the same patient gets the same record, and the same source ids, on every run.
"""

import random
import uuid
from collections import Counter, defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from directory.models import Region
from patients.models import (
    Alert,
    Allergy,
    Appointment,
    CareEvent,
    CarePlan,
    Condition,
    Immunisation,
    Letter,
    Medication,
    Observation,
    Patient,
    Procedure,
    Result,
    Sex,
    SourceDemographics,
    SupportPerson,
)
from patients.nhs_numbers import format_nhs_number
from sharing.models import Involvement

from .catalogue import (
    ACUTE_BY_REGION,
    ADMISSIONS,
    ADULT_PROFILES,
    AGE_BANDS,
    ALBUMIN,
    ALLERGIES,
    ALP,
    ALT,
    APPOINTMENT_REASONS,
    AT_RISK_PROFILES,
    BILIRUBIN,
    CARDIOMETABOLIC,
    CARE_EVENTS,
    CHILDHOOD_SCHEDULE,
    CHOLESTEROL,
    CLINIC_LETTERS,
    CONDITIONS,
    CREATININE,
    CRP,
    DMD,
    EGFR,
    ESR,
    FREE_T4,
    GGT,
    GLUCOSE,
    HAEMOGLOBIN,
    HBA1C,
    HDL,
    INFECTION_ANTIBIOTICS,
    LANGUAGES,
    LDL,
    LOINC,
    MCV,
    MEDICINES,
    NEUTROPHILS,
    NORTH,
    PANELS,
    PLATELETS,
    POTASSIUM,
    PRACTICES_BY_REGION,
    PROCEDURES,
    SNOMED,
    SODIUM,
    TRIGLYCERIDES,
    TSH,
    UREA,
    VACCINES,
    WHITE_CELLS,
    Role,
    Trajectory,
    landline,
    mobile,
    postcode,
    slug,
    street_address,
)

SEED = 2026
LONDON = ZoneInfo("Europe/London")
SOURCE_PREFIX = "demo-"  # every seeded source id starts with this


class PatientRecord:
    """Patient number `index`: demographics, a few clinical profiles, and the record those profiles imply.

    Patient 0 is the demo patient every demo clinician shares, with fixed profiles and six years of results.
    """

    def __init__(self, seeder, index, nhs_number):
        self.seeder = seeder
        self.rng = rng = random.Random(f"{SEED}:patient:{index}")
        fake = seeder.fake
        fake.seed_instance(SEED * 100_003 + index)
        self.today, self.now = seeder.today, seeder.now
        self.nhs_number = nhs_number
        self.anchor = index == 0  # the demo patient every demo clinician shares
        self.restricted = False  # the S-flag (mark_restricted)
        self.died_on = None  # mark_deceased
        self.entries = defaultdict(list)
        self.observations = {}  # (source organisation id, report source id) -> [Observation]
        self.support = []
        self.involvements = []  # (team, reason, started_at, ended_at, source id)
        self.series = defaultdict(list)  # Test -> [(date, value)], for letters to quote
        self.counters = Counter()

        self.region = Region.NCL if self.anchor else rng.choice(list(Region))
        practice = "ZZG101" if self.anchor else rng.choice(PRACTICES_BY_REGION[self.region])
        sex = Sex.FEMALE if self.anchor else rng.choices(list(Sex), weights=(50, 48, 1, 1))[0]
        if self.anchor:
            age = 58
        else:
            low, high, _ = rng.choices(AGE_BANDS, weights=[weight for *_, weight in AGE_BANDS])[0]
            age = rng.randint(low, high)
        given = {Sex.FEMALE: fake.first_name_female, Sex.MALE: fake.first_name_male}.get(sex, fake.first_name)()
        family = fake.last_name()
        adult = age >= 18
        self.patient = Patient(
            id=uuid.UUID(int=rng.getrandbits(128), version=4),
            nhs_number=nhs_number,
            given_name=given,
            family_name=family,
            date_of_birth=self.today - timedelta(days=age * 365 + age // 4 + rng.randint(1, 364)),
            sex=sex,
            address=street_address(rng),
            postcode=postcode(rng, self.region),
            phone=mobile(rng) if adult else landline(rng),
            email=f"{slug(given)}.{slug(family)}{rng.randint(1, 99)}@example.com"
            if adult and rng.random() < 0.65
            else "",
            registered_gp=seeder.orgs[practice],
        )
        self.age, self.sex, self.given = age, sex, given
        self.practice = practice
        self.trust = ACUTE_BY_REGION[self.region]
        north = self.region in NORTH
        self.cmht = f"{'North' if north else 'South'} Community Mental Health Team"
        self.community = "ZZN" if north else "ZZS"
        self.council = "ZZK1" if north else "ZZK2"

        if self.anchor:
            self.profiles = {"diabetes", "hypertension", "ckd", "mental_health"}
        elif adult:
            self.profiles = {
                name for name, chance, minimum in ADULT_PROFILES if rng.random() < chance and age >= minimum
            }
        else:
            self.profiles = {name for name, chance in (("camhs", 0.35), ("asthma", 0.2)) if rng.random() < chance}
            if age < 6:
                self.profiles.discard("camhs")
        self.mental_health = (
            "depression" if self.anchor else rng.choice(("depression", "anxiety", "bipolar", "schizophrenia"))
        )
        self.substance = rng.choice(("alcohol", "alcohol", "opioid"))
        history_years = 6 if self.anchor else rng.randint(3, 6)
        self.history_start = self.today - timedelta(days=history_years * 365)

        self.support_network()
        self.registration()
        self.long_term_conditions()
        self.infections()
        self.bloods()
        self.admissions()
        for team, profile, chance in (
            ("Diabetes and Endocrinology Clinic", "diabetes", 0.6),
            ("Renal Clinic", "ckd", 0.5),
            ("Respiratory Clinic", "respiratory", 0.5),
        ):
            if profile in self.profiles and (self.anchor or rng.random() < chance):
                self.clinic(team)
        if "mental_health" in self.profiles:
            self.mental_health_care()
        if "camhs" in self.profiles:
            self.camhs()
        if "addiction" in self.profiles:
            self.addiction()
        if self.profiles & {"frailty", "palliative"}:
            self.community_care()
        if "palliative" in self.profiles:
            self.hospice()
        self.allergies()
        self.alerts()
        self.gp_appointments()
        # Last, so that the random draws behind everything above (and so every record seeded before these
        # categories existed) are unchanged.
        self.immunisations()
        self.procedures()
        self.encounters()

    # --- demographics: who the patient is, as each source says ---

    def mark_restricted(self):
        """Flagged restricted (S-flag) by the practice: no address, phone or email is held or shown."""
        self.restricted = True
        self.patient.restricted = True
        self.patient.address = self.patient.postcode = self.patient.phone = self.patient.email = ""

    def mark_deceased(self, days_ago=12):
        self.died_on = self.today - timedelta(days=days_ago)
        self.patient.deceased, self.patient.date_of_death = True, self.died_on

    def source_demographics(self, orgs, *, disagreeing=None):
        """The registered practice's copy (what the seeded Patient row holds: the master view), and, where asked,
        an older copy at the patient's hospital trust that disagrees on the address or the phone number."""
        patient = self.patient
        fields = {
            name: getattr(patient, name)
            for name in ("given_name", "family_name", "date_of_birth", "sex", "address", "postcode", "phone", "email")
        }
        fields |= {"deceased": self.died_on is not None, "date_of_death": self.died_on}
        if self.restricted:
            fields |= {"address": "", "postcode": "", "phone": "", "email": ""}
        copies = [
            SourceDemographics(
                patient_id=patient.pk,
                organisation=orgs[self.practice],
                resource_id=f"Patient/{SOURCE_PREFIX}{self.nhs_number}",
                registered_gp=orgs[self.practice],
                restricted=self.restricted,
                source_updated_at=self.now - timedelta(days=30),
                **fields,
            )
        ]
        if disagreeing:
            rng = random.Random(f"{SEED}:demographics:{self.nhs_number}")
            other = dict(fields)
            if disagreeing == "address":  # the trust still holds the address before the patient moved
                other.update(address=street_address(rng), postcode=postcode(rng, self.region))
            else:
                other.update(phone=mobile(rng))
            copies.append(
                SourceDemographics(
                    patient_id=patient.pk,
                    organisation=orgs[self.trust],
                    resource_id=f"Patient/{SOURCE_PREFIX}trust-{self.nhs_number}",
                    registered_gp=orgs[self.practice],
                    source_updated_at=self.now - timedelta(days=400),
                    **other,
                )
            )
        return copies

    # --- helpers ---

    def bind(self, patient):
        self.patient = patient
        for entries in self.entries.values():
            for entry in entries:
                entry.patient_id = patient.pk
        for observations in self.observations.values():
            for observation in observations:
                observation.patient_id = patient.pk
        for person in self.support:
            person.patient_id = patient.pk

    def key(self, kind):
        self.counters[kind] += 1
        return f"{SOURCE_PREFIX}{self.nhs_number}-{kind}-{self.counters[kind]}"

    def moment(self, day, first_hour=8, last_hour=17):
        minute = self.rng.choice((0, 10, 15, 20, 30, 40, 45, 50))
        return datetime.combine(day, time(self.rng.randint(first_hour, last_hour), minute), tzinfo=LONDON)

    def day_between(self, start, end):
        return start + timedelta(days=self.rng.randint(0, max(0, (end - start).days)))

    def days_ago(self, low, high):
        return self.today - timedelta(days=self.rng.randint(low, high))

    def add(self, model, organisation, effective_at, *, sensitive=False, **fields):
        if effective_at is None:  # undated at source ("Date not recorded"): last changed when it was recorded
            updated = fields.get("recorded_at") or self.now
        elif effective_at <= self.now:
            updated = min(effective_at + timedelta(hours=self.rng.randint(1, 72)), self.now)
        else:  # booked ahead: last changed when it was booked
            updated = self.now - timedelta(days=self.rng.randint(1, 30), hours=self.rng.randint(0, 8))
        entry = model(
            source_organisation=self.seeder.orgs[organisation],
            source_id=self.key(model._meta.model_name),
            effective_at=effective_at,
            source_updated_at=updated,
            sensitive=sensitive,
            **fields,
        )
        self.entries[model].append(entry)
        return entry

    def involve(self, organisation, team_name, reason, started_at, ended_at=None):
        team = self.seeder.teams[organisation, team_name]
        self.involvements.append((team, reason, started_at, ended_at, self.key("involvement")))

    def staff(self, organisation, team_name, role=None):
        """A deterministic member of the team (by role when given): (name, job title)."""
        members = self.seeder.staff[organisation, team_name]
        matching = [member for member in members if role is None or member[2] == role] or members
        name, job_title, _ = self.rng.choice(matching)
        return name, job_title

    def doctor(self, organisation, team_name):
        name, job_title = self.staff(organisation, team_name, Role.DOCTOR)
        return f"Dr {name}", job_title

    def condition(self, key, organisation, onset, status=Condition.Status.ACTIVE, resolved_on=None, **fields):
        code, name = CONDITIONS[key]
        return self.add(
            Condition,
            organisation,
            self.moment(onset),
            code_system=SNOMED,
            code=code,
            name=name,
            clinical_status=status,
            resolved_on=resolved_on,
            **fields,
        )

    def medicine(self, key, organisation, started, kind=Medication.Kind.REPEAT, ended_on=None, **fields):
        code, name, dosage = MEDICINES[key]
        status = Medication.Status.ACTIVE if ended_on is None else fields.pop("status", Medication.Status.COMPLETED)
        return self.add(
            Medication,
            organisation,
            self.moment(started),
            code_system=DMD,
            code=code,
            name=name,
            dosage=dosage,
            kind=kind,
            status=status,
            ended_on=ended_on,
            **fields,
        )

    def active_conditions(self, before):
        return [
            c.name
            for c in self.entries[Condition]
            if c.clinical_status == Condition.Status.ACTIVE and c.effective_at.date() <= before and not c.sensitive
        ]

    def current_medicines(self, before):
        return [
            f"{m.name}: {m.dosage}"
            for m in self.entries[Medication]
            if m.status == Medication.Status.ACTIVE and m.effective_at.date() <= before
        ]

    def latest(self, test, before):
        values = [(day, value) for day, value in self.series[test] if day <= before]
        return values[-1] if values else None

    def letter_heading(self):
        patient = self.patient
        address = patient.address.replace("\n", ", ")
        return (
            f"Re: {patient.given_name} {patient.family_name}, born {patient.date_of_birth:%d/%m/%Y}, "
            f"NHS number {format_nhs_number(patient.nhs_number)}\n{address}, {patient.postcode}"
        )

    def gp_salutation(self):
        name, _ = self.seeder.staff[self.practice, "Practice team"][0][:2]
        return f"Dear Dr {name.split()[-1]},"

    def appointments(self, organisation, team_name, service, days, role=None, description=""):
        """Book the days given (past ones attended, missed or cancelled); return the days attended."""
        attended = []
        for day in days:
            when = self.moment(day)
            if day > self.today:
                status = Appointment.Status.BOOKED
            else:
                status = self.rng.choices(
                    (Appointment.Status.ATTENDED, Appointment.Status.DID_NOT_ATTEND, Appointment.Status.CANCELLED),
                    weights=(80, 10, 10),
                )[0]
            clinician, _ = self.staff(organisation, team_name, role)
            self.add(
                Appointment,
                organisation,
                when,
                service=service,
                location=self.seeder.orgs[organisation].name,
                clinician=clinician,
                status=status,
                description=description or self.rng.choice(APPOINTMENT_REASONS),
            )
            if status == Appointment.Status.ATTENDED:
                attended.append(day)
        return attended

    # --- the record, section by section ---

    def support_network(self):
        rng, fake, family = self.rng, self.seeder.fake, self.patient.family_name
        people = []
        if self.age < 18:
            people.append(
                (
                    f"{fake.first_name_female()} {family}",
                    SupportPerson.Relationship.PARENT,
                    "Mother; has parental responsibility.",
                )
            )
            if rng.random() < 0.6:
                people.append(
                    (
                        f"{fake.first_name_male()} {fake.last_name()}",
                        SupportPerson.Relationship.PARENT,
                        "Father; has parental responsibility.",
                    )
                )
        elif self.profiles & {"frailty", "palliative"}:
            carer = f"{fake.first_name()} {family}"
            people.append((carer, SupportPerson.Relationship.CARER, "Son or daughter; main carer, visits daily."))
            if rng.random() < 0.4:
                people.append(
                    (carer, SupportPerson.Relationship.LASTING_POWER_OF_ATTORNEY, "Health and welfare LPA registered.")
                )
        elif rng.random() < 0.55:
            relationship, note = rng.choice(
                (
                    (SupportPerson.Relationship.PARTNER, "Partner; lives with the patient."),
                    (SupportPerson.Relationship.NEXT_OF_KIN, "Sister; next of kin."),
                    (SupportPerson.Relationship.NEXT_OF_KIN, "Brother; next of kin."),
                    (SupportPerson.Relationship.FRIEND, "Close friend; happy to be contacted."),
                )
            )
            people.append((f"{fake.first_name()} {fake.last_name()}", relationship, note))
        for name, relationship, notes in people:
            self.support.append(
                SupportPerson(
                    source_organisation=self.seeder.orgs[self.practice],
                    source_id=self.key("support"),
                    name=name,
                    relationship=relationship,
                    phone=mobile(rng),
                    notes=notes,
                    source_updated_at=self.moment(self.days_ago(30, 900)),
                )
            )

    def registration(self):
        born = self.patient.date_of_birth
        registered = max(born + timedelta(days=28), self.days_ago(200, 22 * 365))
        if self.anchor:
            registered = self.today - timedelta(days=12 * 365)
        self.registered = registered
        self.involve(self.practice, "Practice team", Involvement.Reason.REGISTRATION, self.moment(registered))

    def long_term_conditions(self):
        rng, gp, profiles = self.rng, self.practice, self.profiles
        onset = self.onset
        if "diabetes" in profiles:
            diagnosed = onset()
            self.condition("diabetes", gp, diagnosed)
            self.medicine("metformin", gp, diagnosed + timedelta(days=30))
            if rng.random() < 0.4:
                self.medicine("gliclazide", gp, self.day_between(diagnosed, self.today - timedelta(days=200)))
            if self.anchor or rng.random() < 0.3:
                self.medicine("dapagliflozin", gp, self.days_ago(200, 700))
        if profiles & CARDIOMETABOLIC:
            self.medicine(
                "atorvastatin", gp, self.day_between(self.history_start, self.history_start + timedelta(days=300))
            )
        if "hypertension" in profiles:
            diagnosed = onset()
            self.condition("hypertension", gp, diagnosed)
            if rng.random() < 0.2:  # swapped for ankle swelling: a stopped item next to a current one
                switched = self.day_between(diagnosed + timedelta(days=120), self.today - timedelta(days=60))
                self.medicine("amlodipine", gp, diagnosed, ended_on=switched, status=Medication.Status.STOPPED)
                self.medicine("losartan", gp, switched)
            else:
                self.medicine(
                    "ramipril" if self.anchor else rng.choice(("amlodipine", "ramipril", "losartan")), gp, diagnosed
                )
            if rng.random() < 0.3:
                self.medicine("indapamide", gp, self.day_between(diagnosed, self.today))
        if "ckd" in profiles:
            self.condition(
                "ckd", self.trust, self.day_between(self.history_start, self.history_start + timedelta(days=500))
            )
            if not any(m.name.startswith(("Ramipril", "Losartan")) for m in self.entries[Medication]):
                self.medicine("ramipril_low", gp, self.history_start + timedelta(days=rng.randint(30, 400)))
        if "cardiac" in profiles:
            self.condition("af", self.trust, onset())
            self.medicine("bisoprolol", gp, self.history_start)
            if rng.random() < 0.4:
                self.condition("heart_failure", self.trust, onset())
                self.medicine("furosemide", gp, self.history_start)
            else:
                self.medicine("aspirin", gp, self.history_start)
        if "respiratory" in profiles or "asthma" in profiles:
            self.condition("copd" if self.age >= 45 and rng.random() < 0.6 else "asthma", gp, onset())
            self.medicine("salbutamol", gp, self.history_start)
        if "hypothyroid" in profiles:
            self.condition("hypothyroid", gp, self.history_start + timedelta(days=20))
            self.medicine("levothyroxine", gp, self.history_start + timedelta(days=40))
        if "frailty" in profiles:
            self.condition("osteoarthritis", gp, onset())
            if rng.random() < 0.5:
                self.condition("dementia", gp, self.day_between(self.history_start, self.today - timedelta(days=100)))
            self.medicine("paracetamol", gp, self.history_start)
        if "palliative" in profiles:
            self.condition("lung_cancer", self.trust, self.days_ago(120, 500))
            self.medicine("paracetamol", gp, self.days_ago(60, 110))

    def onset(self):
        """When a long-term condition was diagnosed: before the years of results, at most 15 years ago."""
        earliest = max(self.patient.date_of_birth, self.today - timedelta(days=15 * 365))
        return self.day_between(earliest, self.history_start)

    def infections(self):
        """Past acute episodes (resolved, with a finished antibiotic course), and a few sensitive diagnoses."""
        rng = self.rng
        if self.age >= 18 and rng.random() < 0.35:
            key = rng.choice(("lrti", "uti", "cellulitis"))
            day = self.days_ago(60, 4 * 365)
            self.condition(key, self.practice, day, Condition.Status.RESOLVED, resolved_on=day + timedelta(days=10))
            self.medicine(
                INFECTION_ANTIBIOTICS[key], self.practice, day, Medication.Kind.ACUTE, ended_on=day + timedelta(days=7)
            )
        if 18 <= self.age <= 45 and rng.random() < 0.05:
            # Sexual health: recorded by the hospital's clinic and flagged sensitive, so only that trust sees it.
            day = self.days_ago(90, 3 * 365)
            self.condition(
                "chlamydia",
                self.trust,
                day,
                Condition.Status.RESOLVED,
                resolved_on=day + timedelta(days=21),
                sensitive=True,
                notes="Treated in the sexual health clinic; partner notification completed.",
            )
            self.medicine(
                "doxycycline",
                self.trust,
                day,
                Medication.Kind.HOSPITAL,
                ended_on=day + timedelta(days=7),
                sensitive=True,
            )
        if self.age >= 25 and rng.random() < 0.015:
            self.condition("hiv", self.trust, self.days_ago(400, 3000), sensitive=True, notes="Under the HIV clinic.")

    def trajectories(self):
        rng, age, profiles = self.rng, self.age, self.profiles
        female = self.sex == Sex.FEMALE
        courses = {
            HBA1C: Trajectory(rng.uniform(32, 40), 0.3, 1.5, 25),
            GLUCOSE: Trajectory(rng.uniform(4.4, 5.6), 0.02, 0.4, 3),
            HAEMOGLOBIN: Trajectory((132 if female else 146) + rng.uniform(-8, 8), 0, 5, 70),
            WHITE_CELLS: Trajectory(rng.uniform(5, 8), 0, 1.0, 2),
            PLATELETS: Trajectory(rng.uniform(200, 320), 0, 25, 60),
            MCV: Trajectory(rng.uniform(85, 94), 0, 1.5, 70),
            NEUTROPHILS: Trajectory(rng.uniform(3, 5), 0, 0.7, 1),
            SODIUM: Trajectory(rng.uniform(137, 141), 0, 1.5, 120),
            POTASSIUM: Trajectory(rng.uniform(3.9, 4.6), 0, 0.25, 2.5),
            UREA: Trajectory(rng.uniform(3.5, 6.5), 0.05, 0.6, 1.5),
            EGFR: Trajectory(min(118.0, 118 - max(0, age - 30) * 0.8 + rng.uniform(-6, 6)), -0.8, 3, 8, 120),
            CHOLESTEROL: Trajectory(rng.uniform(4.2, 5.8), 0, 0.3, 2.5),
            HDL: Trajectory(rng.uniform(1.1, 1.8), 0, 0.1, 0.6),
            LDL: Trajectory(rng.uniform(2.2, 3.6), 0, 0.25, 0.8),
            TRIGLYCERIDES: Trajectory(rng.uniform(0.9, 2.0), 0, 0.3, 0.4),
            ALT: Trajectory(rng.uniform(14, 32), 0, 5, 5),
            ALP: Trajectory(rng.uniform(60, 110), 0, 10, 25),
            BILIRUBIN: Trajectory(rng.uniform(5, 14), 0, 2.5, 2),
            ALBUMIN: Trajectory(rng.uniform(38, 46), 0, 1.5, 20),
            GGT: Trajectory(rng.uniform(15, 40), 0, 6, 5),
            TSH: Trajectory(rng.uniform(1.0, 3.0), 0, 0.4, 0.05),
            FREE_T4: Trajectory(rng.uniform(13, 19), 0, 1.0, 5),
            CRP: Trajectory(rng.uniform(1, 4), 0, 1.5, 0.5),
            ESR: Trajectory(rng.uniform(4, 12) + age / 8, 0, 3, 1),
        }
        if "diabetes" in profiles:
            courses[HBA1C] = Trajectory(rng.uniform(60, 80), rng.uniform(-5, 1.5), 3, 46, 110)
            courses[GLUCOSE] = Trajectory(rng.uniform(7.5, 11), -0.3, 0.8, 5)
            courses[TRIGLYCERIDES] = Trajectory(rng.uniform(1.8, 2.8), -0.1, 0.3, 0.8)
        if profiles & CARDIOMETABOLIC:  # a statin brings cholesterol down over the years
            courses[CHOLESTEROL] = Trajectory(rng.uniform(5.4, 6.6), -0.35, 0.3, 3.6)
            courses[LDL] = Trajectory(rng.uniform(3.4, 4.4), -0.3, 0.25, 1.8)
        if "ckd" in profiles:
            courses[EGFR] = Trajectory(rng.uniform(44, 58), rng.uniform(-3.5, -1), 2.5, 15, 120)
            courses[UREA] = Trajectory(rng.uniform(7.5, 9.5), 0.3, 0.8, 3)
            courses[POTASSIUM] = Trajectory(rng.uniform(4.7, 5.1), 0.05, 0.25, 3)
            courses[HAEMOGLOBIN].base -= 10
        if "cardiac" in profiles:
            courses[POTASSIUM] = Trajectory(rng.uniform(3.6, 4.1), 0, 0.25, 2.8)
            courses[SODIUM] = Trajectory(rng.uniform(134, 138), 0, 1.5, 125)
        if "addiction" in profiles and self.substance == "alcohol":
            courses[ALT] = Trajectory(rng.uniform(60, 95), -8, 8, 20)
            courses[GGT] = Trajectory(rng.uniform(150, 280), -30, 20, 35)
            courses[MCV] = Trajectory(rng.uniform(100, 105), -0.6, 1.2, 88)
            courses[PLATELETS] = Trajectory(rng.uniform(120, 170), 5, 15, 60)
        if "hypothyroid" in profiles:
            courses[TSH] = Trajectory(rng.uniform(7, 11), -2.2, 0.5, 1.2, 12)
            courses[FREE_T4] = Trajectory(rng.uniform(8.5, 11), 1.8, 0.8, 8, 18.5)
        if female and rng.random() < 0.12:  # iron deficiency, treated
            courses[HAEMOGLOBIN] = Trajectory(rng.uniform(100, 112), 3, 4, 80, 138)
            courses[MCV] = Trajectory(rng.uniform(74, 79), 2, 1.2, 70, 90)
        return courses

    def bloods(self):
        """Repeated tests over the years, so the record can draw trends; most adults get 8 to 20 reports."""
        rng, profiles = self.rng, self.profiles
        courses = self.trajectories()
        if self.age >= 18:
            day, gap = self.history_start + timedelta(days=rng.randint(0, 60)), (90, 130) if self.anchor else (150, 300)
        elif self.age >= 5 and rng.random() < 0.4:
            day, gap = self.today - timedelta(days=rng.randint(300, 700)), (150, 300)
        else:
            return
        chances = {
            "fbc": 0.5,
            "lipids": 0.45 if profiles & CARDIOMETABOLIC else 0.2,
            "hba1c": 1.0 if "diabetes" in profiles else 0.15,
            "lft": 1.0 if "addiction" in profiles else 0.15,
            "tft": 1.0 if "hypothyroid" in profiles else 0.08,
            "crp": 0.5 if "respiratory" in profiles else 0.08,
        }
        hospital_chance = 0.35 if profiles & {"diabetes", "ckd"} else 0.1
        while day < self.today - timedelta(days=5):
            if self.age >= 18:
                panels = ["ue"] + [panel for panel, chance in chances.items() if rng.random() < chance]
            else:
                panels = ["fbc", "crp"]
            organisation = self.trust if rng.random() < hospital_chance else self.practice
            for panel in panels:
                self.report(panel, day, organisation, courses)
            day += timedelta(days=rng.randint(*gap))

    def report(self, panel, day, organisation, courses):
        rng = self.rng
        name, code, tests = PANELS[panel]
        effective_at = self.moment(day, 8, 12)
        years = (day - self.history_start).days / 365
        values = {test: courses[test].at(years, rng) for test in tests if test is not CREATININE}
        if CREATININE in tests:  # follows eGFR, as the lab derives one from the other
            values[CREATININE] = (5600 if self.sex == Sex.FEMALE else 7000) / values[EGFR] * rng.gauss(1, 0.03)
        observations, abnormal = [], []
        for test in tests:
            low, high = (Decimal(str(bound)) for bound in test.reference(self.sex))
            value = Decimal(f"{values[test]:.{test.places}f}")
            flag = Observation.Flag.LOW if value < low else Observation.Flag.HIGH if value > high else ""
            if flag:
                abnormal.append(test.name)
            self.series[test].append((day, value))
            observations.append(
                Observation(
                    name=test.name,
                    code_system=LOINC,
                    code=test.code,
                    value=value,
                    unit=test.unit,
                    reference_low=low,
                    reference_high=high,
                    flag=flag,
                    effective_at=effective_at,
                )
            )
        if abnormal:
            action = rng.choice(
                ("discuss at next appointment", "repeat in three months", "patient asked to book a review")
            )
            conclusion = f"{', '.join(abnormal)} outside the reference range. Reviewed: {action}."
        else:
            conclusion = rng.choice(("Normal. No action needed.", "Satisfactory; no further action.", ""))
        result = self.add(
            Result,
            organisation,
            effective_at,
            name=name,
            code_system=LOINC,
            code=code,
            status="final",
            conclusion=conclusion,
        )
        self.observations[result.source_organisation_id, result.source_id] = observations

    def admissions(self):
        rng = self.rng
        if self.age < 18:
            return
        chance = 0.45 if self.profiles & {"cardiac", "frailty"} else 0.2
        if self.anchor or rng.random() < chance:
            templates = [a for a in ADMISSIONS if (a[2] == "af") == ("cardiac" in self.profiles)] or list(ADMISSIONS)
            template = ADMISSIONS[0] if self.anchor else rng.choice(templates)
            admitted = self.days_ago(45, 3 * 365)
            self.admission(template, admitted, admitted + timedelta(days=rng.randint(2, 9)))
        if not self.anchor and rng.random() < 0.03:  # on the ward now
            self.involve(
                self.trust, "Acute Medical Unit", Involvement.Reason.ADMISSION, self.moment(self.days_ago(1, 5), 0, 23)
            )

    def admission(self, template, admitted, discharged):
        ward, complaint, diagnosis, course, medication_change, gp_actions = template
        trust = self.trust
        admitted_at, discharged_at = self.moment(admitted, 0, 23), self.moment(discharged, 10, 18)
        self.involve(trust, ward, Involvement.Reason.ADMISSION, admitted_at, discharged_at)
        if diagnosis != "af" or "cardiac" not in self.profiles:
            self.condition(diagnosis, trust, admitted, Condition.Status.RESOLVED, resolved_on=discharged)
        antibiotic = INFECTION_ANTIBIOTICS.get(diagnosis)
        if antibiotic:
            self.medicine(
                antibiotic, trust, admitted, Medication.Kind.HOSPITAL, ended_on=discharged + timedelta(days=4)
            )
        consultant, job_title = self.doctor(trust, ward)
        stay = (discharged - admitted).days
        body = "\n\n".join(
            (
                f"DISCHARGE SUMMARY\n\nWard: {ward}, {self.seeder.orgs[trust].name}\n"
                f"Admitted: {admitted:%d/%m/%Y}   Discharged: {discharged:%d/%m/%Y}   Length of stay: {stay} days\n"
                f"Consultant: {consultant}",
                self.letter_heading(),
                f"Presenting complaint:\n{complaint}",
                f"Diagnosis:\n{CONDITIONS[diagnosis][1]}",
                f"Hospital course:\n{course.format(given=self.given)}",
                "Medication changes:\n- " + medication_change,
                "Medication on discharge:\n- " + ("\n- ".join(self.current_medicines(discharged)) or "None"),
                f"Actions for GP:\n- {gp_actions}",
                f"Information given to the patient:\nDiagnosis and medication changes explained to {self.given}, "
                "who was given a copy of this summary and advised to seek help if symptoms return.",
                f"{consultant}\n{job_title}",
            )
        )
        self.add(
            Letter,
            trust,
            discharged_at,
            kind=Letter.Kind.DISCHARGE,
            title=f"Discharge summary: {ward}",
            author=consultant,
            body=body,
        )

    def clinic(self, team_name):
        rng, trust = self.rng, self.trust
        referred = self.history_start + timedelta(days=rng.randint(60, 500))
        discharged = (
            None
            if self.anchor or rng.random() < 0.65
            else self.day_between(referred + timedelta(days=400), self.today - timedelta(days=30))
        )
        self.involve(
            trust,
            team_name,
            Involvement.Reason.REFERRAL,
            self.moment(referred),
            self.moment(discharged) if discharged else None,
        )
        last = discharged or self.today
        visits = []
        day = referred + timedelta(days=rng.randint(20, 60))
        while day < last:
            visits.append(day)
            day += timedelta(days=rng.randint(150, 220))
        if not discharged:
            visits.append(self.today + timedelta(days=rng.randint(7, 90)))
        service = team_name.replace(" Clinic", " clinic")
        attended = self.appointments(trust, team_name, service, visits, Role.DOCTOR, description="Outpatient follow-up")
        for day in attended[-3:]:
            self.clinic_letter(team_name, day)

    def clinic_letter(self, team_name, day):
        title, assessment, tests, plan = CLINIC_LETTERS[team_name]
        consultant, job_title = self.doctor(self.trust, team_name)
        results = []
        for test in tests:
            latest = self.latest(test, day)
            if latest:
                results.append(f"- {test.name}: {latest[1]} {test.unit} ({latest[0]:%d/%m/%Y})")
        sections = [
            self.gp_salutation(),
            self.letter_heading(),
            "Diagnoses:\n- " + ("\n- ".join(self.active_conditions(day)) or "None recorded"),
            f"I saw {self.given} in the {team_name.lower()} on {day.day} {day:%B %Y}. "
            + assessment.format(given=self.given),
        ]
        if results:
            sections.append("Recent results:\n" + "\n".join(results))
        sections += [
            "Current medication:\n- " + ("\n- ".join(self.current_medicines(day)) or "None"),
            "Plan:\n" + "\n".join(f"{number}. {step}" for number, step in enumerate(plan, 1)),
            f"Yours sincerely,\n\n{consultant}\n{job_title}\n{self.seeder.orgs[self.trust].name}",
            f"cc: {self.patient.given_name} {self.patient.family_name} (patient)",
        ]
        self.add(
            Letter,
            self.trust,
            self.moment(day + timedelta(days=self.rng.randint(2, 10)), 9, 17),
            kind=Letter.Kind.CLINIC,
            title=title,
            author=consultant,
            body="\n\n".join(sections),
        )

    def letter_to_gp(self, organisation, team_name, day, title, narrative, plan, *, sensitive=False, role=None):
        author, job_title = self.staff(organisation, team_name, role)
        team = self.seeder.teams[organisation, team_name]
        body = "\n\n".join(
            (
                self.gp_salutation(),
                self.letter_heading(),
                f"{self.given} was reviewed by the {team_name} on {day.day} {day:%B %Y}. {narrative}",
                "Plan:\n" + "\n".join(f"{number}. {step}" for number, step in enumerate(plan, 1)),
                f"Please contact the team on {team.phone} with any questions or concerns.",
                f"Yours sincerely,\n\n{author}\n{job_title}\n{self.seeder.orgs[organisation].name}",
            )
        )
        self.add(
            Letter,
            organisation,
            self.moment(day + timedelta(days=self.rng.randint(1, 7))),
            kind=Letter.Kind.TO_GP,
            title=title,
            author=author,
            body=body,
            sensitive=sensitive,
        )

    def care_plan(self, organisation, day, title, description, *, review_in=(60, 180), status=CarePlan.Status.ACTIVE):
        review_on = (
            self.today + timedelta(days=self.rng.randint(*review_in)) if status == CarePlan.Status.ACTIVE else None
        )
        self.add(
            CarePlan,
            organisation,
            self.moment(day),
            title=title,
            status=status,
            description=description,
            review_on=review_on,
        )

    def events(self, service, organisation, team_name, start, count, *, sensitive_chance=0.0):
        templates = CARE_EVENTS[service]
        for number in range(count):
            title, description = templates[0] if number == 0 else self.rng.choice(templates[1:])
            practitioner, _ = self.staff(organisation, team_name)
            day = self.day_between(start, self.today - timedelta(days=2)) if number else start
            self.add(
                CareEvent,
                organisation,
                self.moment(day),
                service=service,
                title=title,
                description=description,
                practitioner=practitioner,
                sensitive=self.rng.random() < sensitive_chance,
            )

    def mental_health_care(self):
        rng, kind = self.rng, self.mental_health
        diagnosed = self.day_between(
            self.history_start - timedelta(days=1500), self.history_start + timedelta(days=300)
        )
        self.condition(kind, "ZZM", diagnosed)
        if kind in ("depression", "anxiety"):
            self.medicine("sertraline", self.practice, diagnosed + timedelta(days=14))
        if not (self.anchor or rng.random() < 0.75):
            return
        start = self.day_between(self.history_start, self.today - timedelta(days=200))
        ended = (
            None
            if self.anchor or rng.random() < 0.75
            else self.day_between(start + timedelta(days=120), self.today - timedelta(days=10))
        )
        self.involve(
            "ZZM", self.cmht, Involvement.Reason.CASELOAD, self.moment(start), self.moment(ended) if ended else None
        )
        reviews = [start + timedelta(days=rng.randint(10, 40) + 90 * n) for n in range(rng.randint(2, 4))]
        reviews = [day for day in reviews if day < (ended or self.today)]
        if not ended:
            reviews.append(self.today + timedelta(days=rng.randint(5, 60)))
        self.appointments("ZZM", self.cmht, "Community mental health team review", reviews)
        narratives = {
            "depression": "Mood has lifted since treatment was optimised; sleep and appetite are better and they have "
            "returned to part-time work. No thoughts of self-harm; protective factors are family and work.",
            "anxiety": "Panic attacks have reduced from daily to about once a week with CBT techniques. They are "
            "travelling on public transport again with support.",
            "bipolar": "Currently euthymic. Engaging well, with good insight into early warning signs. Sleep "
            "regular. No evidence of elated or depressed mood at review.",
            "schizophrenia": "Stable on current treatment. No active psychotic symptoms elicited; insight partial. "
            "Attending the clozapine-free recovery group and supported employment sessions.",
        }
        self.letter_to_gp(
            "ZZM",
            self.cmht,
            start + timedelta(days=30),
            "Community mental health team review",
            f"{narratives[kind]}\n\nRisk: assessed as low to others and low to self at present.",
            (
                "Continue current treatment; physical health monitoring with the practice annually.",
                "Care coordinator to review fortnightly.",
                "Crisis plan shared with the patient and family.",
            ),
        )
        if self.anchor or rng.random() < 0.3:
            # A psychology report is shared only within the trust that wrote it.
            self.letter_to_gp(
                "ZZM",
                self.cmht,
                start + timedelta(days=60),
                "Psychology assessment",
                "Detailed psychological formulation discussed, including past trauma disclosed in confidence. "
                "The patient asked that details stay with the mental health team.",
                ("Offer 16 sessions of trauma-focused therapy.", "Review the formulation with the patient."),
                sensitive=True,
                role=Role.DOCTOR,
            )
        self.care_plan(
            "ZZM",
            start + timedelta(days=21),
            "Mental health care and crisis plan",
            "Early warning signs: poor sleep, withdrawing from friends, missing appointments.\n"
            "What helps: regular routine, contact with family, walking.\n"
            f"In a crisis: contact the care coordinator on {self.seeder.teams['ZZM', self.cmht].phone} (weekdays) "
            "or the 24-hour mental health crisis line via NHS 111, option 2.\n"
            "Medication: as prescribed; the practice issues repeat prescriptions.",
            status=CarePlan.Status.COMPLETED if ended else CarePlan.Status.ACTIVE,
        )

    def camhs(self):
        rng = self.rng
        kind = rng.choice(("anxiety", "adhd", "anorexia") if self.age >= 12 else ("anxiety", "adhd"))
        team = "Child and Adolescent Mental Health Service"
        start = self.days_ago(90, 2 * 365)
        ended = (
            None if rng.random() < 0.7 else self.day_between(start + timedelta(days=60), self.today - timedelta(days=5))
        )
        self.condition(kind, "ZZM", start + timedelta(days=rng.randint(0, 40)))
        self.involve(
            "ZZM", team, Involvement.Reason.REFERRAL, self.moment(start), self.moment(ended) if ended else None
        )
        self.events(CareEvent.Service.CAMHS, "ZZM", team, start, rng.randint(3, 6))
        self.care_plan(
            "ZZM",
            start + timedelta(days=14),
            "CAMHS care plan",
            "Goals agreed with the young person and family: attend school every day, use coping strategies when "
            "anxious, and tell a trusted adult if struggling.\nSupport: weekly sessions with the CAMHS nurse; "
            "school wellbeing mentor.\nIn a crisis: CAMHS duty line (weekdays), or NHS 111 option 2 at any time.",
            status=CarePlan.Status.COMPLETED if ended else CarePlan.Status.ACTIVE,
        )
        self.letter_to_gp(
            "ZZM",
            team,
            start + timedelta(days=20),
            "CAMHS assessment",
            "Seen with a parent. The assessment found a pattern consistent with the diagnosis below; school is "
            f"aware and supportive.\n\nDiagnosis: {CONDITIONS[kind][1]}",
            ("Weekly sessions for twelve weeks.", "Review with the family at the end of the block."),
        )
        if rng.random() < 0.25:
            self.add(
                Alert,
                self.council,
                self.moment(start),
                kind=Alert.Kind.SAFEGUARDING,
                text="Child in need plan in place: contact children's social care before sharing information.",
            )

    def addiction(self):
        rng, team = self.rng, "Drug and Alcohol Service"
        start = self.day_between(self.history_start, self.today - timedelta(days=60))
        ended = (
            None if rng.random() < 0.8 else self.day_between(start + timedelta(days=30), self.today - timedelta(days=5))
        )
        self.condition("alcohol" if self.substance == "alcohol" else "opioid", "ZZM", start)
        self.involve(
            "ZZM", team, Involvement.Reason.CASELOAD, self.moment(start), self.moment(ended) if ended else None
        )
        self.events(CareEvent.Service.ADDICTION, "ZZM", team, start, rng.randint(3, 6), sensitive_chance=0.3)
        self.care_plan(
            "ZZM",
            start + timedelta(days=7),
            "Recovery plan",
            "Goals: reduce and then stop use; rebuild contact with family; return to work or training.\n"
            "Support: fortnightly keyworker sessions, recovery group on Thursdays, mutual aid meetings.\n"
            "Harm reduction: naloxone kit supplied; safer-use advice given.",
            status=CarePlan.Status.COMPLETED if ended else CarePlan.Status.ACTIVE,
        )
        self.letter_to_gp(
            "ZZM",
            team,
            start + timedelta(days=10),
            "Drug and alcohol service assessment",
            "Assessment completed and a recovery plan agreed. Blood tests have been requested to check liver "
            "function and full blood count.",
            ("Keyworker sessions every two weeks.", "Please avoid prescribing benzodiazepines without discussion."),
        )
        if rng.random() < 0.2:
            self.add(
                Alert,
                "ZZM",
                self.moment(start),
                kind=Alert.Kind.RISK,
                text="Risk to staff: verbal aggression when intoxicated. Visit in pairs.",
            )

    def community_care(self):
        rng = self.rng
        nursing = "District Nursing Team"
        start = self.days_ago(30, 2 * 365)
        self.involve(self.community, nursing, Involvement.Reason.CASELOAD, self.moment(start))
        self.events(CareEvent.Service.COMMUNITY, self.community, nursing, start, rng.randint(2, 5))
        self.care_plan(
            self.community,
            start,
            "District nursing care plan",
            "Needs: wound care to the left lower leg, pressure area care, support with medicines.\n"
            "Visits: three times a week; key safe at the front door.\n"
            "Escalation: contact the GP if the wound shows signs of infection.",
        )
        if rng.random() < 0.6:
            self.involve(self.council, "Adult Social Care Team", Involvement.Reason.CASELOAD, self.moment(start))
            self.care_plan(
                self.council,
                start + timedelta(days=10),
                "Care and support plan",
                "Eligible needs under the Care Act 2014: personal care, meal preparation, managing medicines.\n"
                "Package: two carers visiting twice daily (morning and evening); day centre on Wednesdays.\n"
                "Carer's assessment offered to the family.",
                review_in=(90, 365),
            )
        if rng.random() < 0.4:
            self.add(
                Alert,
                self.practice,
                self.moment(start),
                kind=Alert.Kind.DNACPR,
                text="DNACPR decision in place; ReSPECT form at home. Discussed with the patient and family.",
            )
        self.add(
            Alert,
            self.community,
            self.moment(start),
            kind=Alert.Kind.CLINICAL,
            text="Lives alone. Key safe at the front door: code held by the district nursing team.",
        )

    def hospice(self):
        start = self.days_ago(30, 120)
        team = "Hospice at Home Team"
        self.involve("ZZH", team, Involvement.Reason.CASELOAD, self.moment(start))
        self.events(CareEvent.Service.COMMUNITY, "ZZH", team, start, 2)
        self.care_plan(
            "ZZH",
            start,
            "Advance care plan",
            "Preferred place of care and death: home.\nWishes: to stay comfortable and at home with family.\n"
            "Anticipatory medicines prescribed and at home.\nContacts: Hospice at Home team 24 hours a day.",
            review_in=(14, 45),
        )
        self.letter_to_gp(
            "ZZH",
            team,
            start + timedelta(days=3),
            "Hospice at Home assessment",
            "Symptoms reviewed at home: breathlessness on minimal exertion, pain controlled with regular "
            "analgesia. Advance care planning discussed with the patient and family.",
            ("Weekly visits from the clinical nurse specialist.", "Please keep anticipatory medicines up to date."),
        )
        self.add(
            Alert,
            "ZZH",
            self.moment(start),
            kind=Alert.Kind.DNACPR,
            text="DNACPR and ReSPECT form completed by the hospice team; original at home.",
        )

    def allergies(self):
        rng = self.rng
        if not (self.anchor or rng.random() < 0.35):
            return
        choices = ALLERGIES[:1] if self.anchor else rng.sample(ALLERGIES, 2 if rng.random() < 0.15 else 1)
        for code, substance, reaction, severity in choices:
            # Egg allergy is mostly outgrown in childhood: the demo shows a resolved allergy as such.
            outgrown = substance == "Egg"
            recorded = self.day_between(
                max(self.patient.date_of_birth, self.registered), self.today - timedelta(days=30)
            )
            self.add(
                Allergy,
                self.practice,
                self.moment(recorded),
                code_system=SNOMED,
                code=code,
                substance=substance,
                reaction=reaction,
                severity=severity,
                clinical_status=Allergy.ClinicalStatus.RESOLVED if outgrown else Allergy.ClinicalStatus.ACTIVE,
            )

    def alerts(self):
        rng = self.rng
        if self.anchor:
            self.add(
                Alert,
                self.practice,
                self.moment(self.days_ago(300, 900)),
                kind=Alert.Kind.CLINICAL,
                text="Needle phobia: offer anaesthetic cream and a lying-down position for blood tests.",
            )
        if rng.random() < 0.1:
            text = rng.choice(
                (
                    f"Needs a {rng.choice(LANGUAGES)} interpreter: book one for every appointment.",
                    "Hard of hearing: face the patient and speak clearly; hearing loop available.",
                    "British Sign Language user: book a BSL interpreter.",
                    "Learning disability: offer longer appointments and easy-read information.",
                )
            )
            self.add(
                Alert, self.practice, self.moment(self.days_ago(60, 2000)), kind=Alert.Kind.COMMUNICATION, text=text
            )

    def gp_appointments(self):
        rng = self.rng
        past = sorted(self.days_ago(7, 2 * 365) for _ in range(rng.randint(2, 5)))
        upcoming = [self.today + timedelta(days=rng.randint(3, 42))] if rng.random() < 0.4 else []
        for day in past + upcoming:
            nurse = rng.random() < 0.3
            service = "Practice nurse appointment" if nurse else "GP appointment"
            self.appointments(self.practice, "Practice team", service, [day], Role.NURSE if nurse else Role.GP)

    # --- immunisations (the GP practice's record) and procedures (the hospital's) ---

    def age_on(self, day):
        born = self.patient.date_of_birth
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

    def birthday(self, years):
        born = self.patient.date_of_birth
        try:
            return born.replace(year=born.year + years)
        except ValueError:  # 29 February
            return born.replace(year=born.year + years, day=28)

    def vaccinate(self, key, day, dose="", **fields):
        """A vaccination the practice recorded: given (dose, route, site and batch), unless `status` says not."""
        name, codings, route, site = VACCINES[key]
        system, code, _ = codings[0]
        given = fields.get("status", Immunisation.Status.COMPLETED) == Immunisation.Status.COMPLETED
        if given:
            batch = f"{self.rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}{self.rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}"
            fields = {
                "dose": dose,
                "route": route,
                "site": site,
                "lot_number": f"{batch}{self.rng.randint(1000, 9999)}",
            } | fields
        return self.add(
            Immunisation,
            self.practice,
            self.moment(day) if day else None,
            vaccine=name,
            code_system=system,
            code=code,
            codings=[{"system": s, "code": c, "display": d} for s, c, d in codings],
            **fields,
        )

    def immunisations(self):
        """The childhood schedule for children; for adults the yearly flu vaccine (65 and over, or a long-term
        condition), COVID-19 from 2021, pneumococcal and shingles by age; some declined, and an old BCG the
        patient reported at registration with no date."""
        if self.age < 18:
            self.childhood_immunisations()
        else:
            self.adult_immunisations()

    def childhood_immunisations(self):
        rng, born = self.rng, self.patient.date_of_birth
        for key, age_days, dose in CHILDHOOD_SCHEDULE:
            day = born + timedelta(days=age_days + rng.randint(0, 21))
            if day < self.today and rng.random() < 0.96:
                self.vaccinate(key, day, dose)
        for year in range(self.today.year - 3, self.today.year + 1):
            day = date(year, 9, 25) + timedelta(days=rng.randint(0, 60))
            if day >= self.today or not 2 <= self.age_on(day) <= 16:
                continue
            roll = rng.random()
            if roll < 0.05:
                self.vaccinate(
                    "nasal_flu", day, status=Immunisation.Status.NOT_DONE, reason_not_given="Parent declined"
                )
            elif roll < 0.7:
                self.vaccinate("nasal_flu", day)

    def adult_immunisations(self):
        rng, today = self.rng, self.today
        at_risk = self.anchor or bool(self.profiles & AT_RISK_PROFILES)
        if self.age >= 65 or at_risk:
            for year in range(max(self.history_start.year, today.year - 5), today.year + 1):
                day = date(year, 9, 20) + timedelta(days=rng.randint(0, 70))
                if day >= today:
                    continue
                roll = rng.random()
                if roll < 0.08 and not self.anchor:
                    self.vaccinate("flu", day, status=Immunisation.Status.NOT_DONE, reason_not_given="Patient declined")
                elif roll < 0.85 or self.anchor:
                    self.vaccinate("flu", day)
        self.covid_vaccinations(at_risk)
        if self.age >= 65:
            day = self.birthday(65) + timedelta(days=rng.randint(0, 500))
            if day < today:
                self.vaccinate("pneumococcal", day)
        elif at_risk and rng.random() < 0.5:
            self.vaccinate("pneumococcal", max(self.days_ago(60, 6 * 365), self.birthday(18)))
        if 70 <= self.age < 80:
            first = self.birthday(70) + timedelta(days=rng.randint(0, 300))
            second = first + timedelta(days=rng.randint(56, 180))
            for day, dose in ((first, "1 of 2"), (second, "2 of 2")):
                if day < today:
                    self.vaccinate("shingles", day, dose)
        if self.anchor or rng.random() < 0.1:
            registered = self.moment(self.registered)
            self.vaccinate(
                "bcg",
                None,
                recorded_at=registered,
                notes="Reported by the patient at registration (BCG scar seen); date not known.",
            )

    def covid_vaccinations(self, at_risk):
        rng, start = self.rng, date(2021, 1, 8)
        if self.age_on(start) < 18 or not (self.anchor or rng.random() < 0.85):
            return
        first = start + timedelta(days=rng.randint(0, 40 if self.age_on(start) >= 65 else 150))
        product = rng.choice(("covid_pfizer", "covid_az"))
        second = first + timedelta(days=rng.randint(56, 84))
        for day, dose in ((first, "1"), (second, "2")):
            if day < self.today:
                self.vaccinate(product, day, dose)
        for year, minimum_age in ((2021, 50), (2022, 50), (2023, 65), (2024, 75), (2025, 75)):
            day = date(year, 9, 15) + timedelta(days=rng.randint(0, 75))
            eligible = self.age_on(day) >= minimum_age or (at_risk and year <= 2022)
            if eligible and second < day < self.today and (self.anchor or rng.random() < 0.75):
                self.vaccinate(rng.choice(("covid_pfizer", "covid_moderna")), day, "Booster")

    def procedures(self):
        """Operations and procedures at the patient's hospital trust, by age and condition; a colonoscopy not done
        (and done later), and a second cataract still waiting (planned, not yet dated)."""
        rng, age, female = self.rng, self.age, self.sex == Sex.FEMALE
        plan = (
            ("appendicectomy", 0.06, 8, 99),
            ("tonsillectomy", 0.04, 4, 30),
            ("cholecystectomy", 0.05, 30, 99),
            ("hernia", 0.01 if female else 0.06, 30, 99),
            ("caesarean", 0.15 if female else 0, 22, 45),
            ("colonoscopy", 0.12, 50, 99),
            ("cataract", 1 if self.anchor else 0.25, 60 if not self.anchor else 50, 99),
            ("hip", 0.3 if "frailty" in self.profiles else 0.06, 60, 99),
            ("knee", 0.05, 60, 99),
            ("cardioversion", 0.3 if "cardiac" in self.profiles else 0, 40, 99),
        )
        for key, chance, minimum_age, maximum_age in plan:
            if age < minimum_age or rng.random() >= chance:
                continue
            earliest = max(self.birthday(minimum_age), self.today - timedelta(days=15 * 365))
            latest = min(self.birthday(maximum_age + 1), self.today - timedelta(days=20))
            if earliest < latest:
                self.procedure(key, self.day_between(earliest, latest))

    def procedure(self, key, day):
        rng = self.rng
        code, name, sites, outcomes, specialty = PROCEDURES[key]
        surgeon = f"{rng.choice(('Mr', 'Ms')) if 'surgeon' in specialty else 'Dr'} {self.seeder.fake.last_name()}"
        site = rng.choice(sites)
        fields = {"code_system": SNOMED, "code": code, "codings": [{"system": SNOMED, "code": code, "display": name}]}
        if key == "colonoscopy" and rng.random() < 0.2:
            self.add(
                Procedure,
                self.trust,
                self.moment(day - timedelta(days=rng.randint(20, 60))),
                name=name,
                status=Procedure.Status.NOT_DONE,
                body_site=site,
                notes="Not done because: bowel preparation incomplete. Rebooked.",
                **fields,
            )
        self.add(
            Procedure,
            self.trust,
            self.moment(day),
            name=name,
            status=Procedure.Status.COMPLETED,
            body_site=site,
            outcome=rng.choice(outcomes),
            performer=f"{surgeon}, Consultant {specialty}",
            **fields,
        )
        if key == "cataract" and (self.anchor or rng.random() < 0.3):
            other = next(s for s in sites if s != site)
            listed = min(day + timedelta(days=rng.randint(30, 90)), self.today - timedelta(days=1))
            self.add(
                Procedure,
                self.trust,
                None,
                name=name,
                status=Procedure.Status.PREPARATION,
                body_site=other,
                recorded_at=self.moment(listed),
                notes=f"On the waiting list for the {other.lower()}.",
                **fields,
            )

    # --- attendances, admissions and referrals (the appointments category), and a dispensing ---

    def encounters(self):
        """Each hospital stay as an admission (open while the patient is on the ward now), an emergency
        department visit now and then, and for the demo patient a referral and her last discharge medicine
        dispensed. The demo patient is on the Acute Medical Unit now, so every record page's banner says she is
        in hospital. Drawn from a generator of their own, so that nothing seeded before them changes."""
        saved, self.rng = self.rng, random.Random(f"{SEED}:encounters:{self.nhs_number}")
        try:
            if self.anchor:
                admitted = self.moment(self.today - timedelta(days=2), 0, 23)
                self.involve(self.trust, "Acute Medical Unit", Involvement.Reason.ADMISSION, admitted)
            for team, reason, started, ended, _ in list(self.involvements):
                if reason == Involvement.Reason.ADMISSION:
                    self.stay(team, started, ended)
            if self.age >= 18 and (self.anchor or self.rng.random() < 0.25):
                self.emergency_attendance()
            if self.anchor:
                self.referral()
                self.discharge_dispensing()
        finally:
            self.rng = saved

    def stay(self, team, started, ended):
        trust = team.organisation.ods_code
        consultant, _ = self.doctor(trust, team.name)
        self.add(
            Appointment,
            trust,
            started,
            kind=Appointment.Kind.ADMISSION,
            encounter_class="IMP",
            ends_at=ended,
            status=Appointment.Status.ATTENDED if ended else Appointment.Status.IN_PROGRESS,
            service=team.name,
            location=f"Bay {self.rng.randint(1, 6)}, bed {self.rng.randint(1, 6)}",
            clinician=consultant,
            description="Emergency admission",
        )

    def emergency_attendance(self):
        arrived = self.moment(self.days_ago(60, 700), 0, 22)
        complaint = self.rng.choice(EMERGENCY_COMPLAINTS)
        doctor, _ = self.doctor(self.trust, "Acute Medical Unit")
        self.add(
            Appointment,
            self.trust,
            arrived,
            kind=Appointment.Kind.ATTENDANCE,
            encounter_class="EMER",
            ends_at=arrived + timedelta(hours=self.rng.randint(2, 7), minutes=self.rng.choice((0, 15, 30, 45))),
            status=Appointment.Status.ATTENDED,
            service="Emergency department",
            location=self.rng.choice(("Majors", "Minors", "Resus")),
            clinician=doctor,
            description=complaint,
        )

    def referral(self):
        """The practice refers the demo patient to podiatry: to be seen within weeks, requested days ago."""
        gp, _ = self.staff(self.practice, "Practice team", Role.GP)
        self.add(
            Appointment,
            self.practice,
            self.moment(self.today + timedelta(days=28)),
            kind=Appointment.Kind.REFERRAL,
            recorded_at=self.moment(self.today - timedelta(days=10)),
            status=Appointment.Status.REQUESTED,
            service="Diabetic foot protection service",
            location="Community podiatry",
            clinician=f"Dr {gp}",
            description="Reduced sensation on monofilament testing: please assess and advise on footwear.",
        )

    def discharge_dispensing(self):
        """The hospital pharmacy's dispensing of the last past stay's antibiotic, at discharge: an event on the
        medications page, never a current medicine on the summary."""
        stays = [ended for _, why, _, ended, _ in self.involvements if why == Involvement.Reason.ADMISSION]
        discharges = [ended for ended in stays if ended]
        if not discharges:
            return
        code, name, dosage = MEDICINES["amoxicillin"]
        self.add(
            Medication,
            self.trust,
            max(discharges) - timedelta(hours=1),
            code_system=DMD,
            code=code,
            name=name,
            dosage=dosage,
            kind=Medication.Kind.HOSPITAL,
            event=Medication.Event.DISPENSED,
            status=Medication.Status.COMPLETED,
        )


EMERGENCY_COMPLAINTS = (
    "Fall at home: no fracture on X-ray, discharged home",
    "Chest pain: ECG and troponin normal, discharged with GP follow-up",
    "Laceration to the left hand: glued",
    "Shortness of breath: nebulised, discharged with a course of steroids",
    "Dizziness: observed, bloods normal, discharged",
)
