"""The bench dataset: a synthetic London in a PostgreSQL database of its own, built once per scale and reused.

Shape (default scale): 100,000 patients, each registered with one GP practice team (~5,000 a practice), some
also with hospital clinics and wards, community, mental health and social care teams; ~59 record entries a
patient on average across the eleven entry tables (about 6 million), ~3.5 observations per result; and one
"heavy patient" with thousands of results and hundreds of letters. Access is real: every current
involvement has its guardian grant (PatientGroupObjectPermission), every organisation has sharing
agreements, every professional a TOTP authenticator and the bench password.

How it is fast: organisations, teams and staff (hundreds of rows) go through the ORM; the millions of
patient-level rows stream through PostgreSQL COPY (psycopg 3 `cursor.copy()`), one connection and one open
COPY per table so that every table loads at once, with the tables' secondary indexes and foreign keys
dropped during the load and rebuilt after it (PostgreSQL's own advice for populating a database). Ids are
assigned here, so observations point at their results without a round trip. A marker table
(`bench_dataset`) records a finished build; anything less is dropped and built again.

    python -m bench.dataset --scale small [--rebuild]
"""

import argparse
import base64
import hashlib
import itertools
import json
import os
import random
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import nhs_number
import psycopg
from psycopg import sql
from tqdm import tqdm

from .config import BENCH_PASSWORD, ROOT, SCALES, Scale, database_name, database_url, server_url

# Bump when the dataset's shape changes: an older marker then means "build again".
# 5: apps re-cut (audit_*, directory_* tables), one initial migration per app; 6: the care-team grant is
# `read_shared_record` (it was Django's `view_patient`), so a version-5 database holds grants nothing reads.
# 9: procedures and immunisations, categories of their own (issue 13).
# 10: objections record how identity was checked and when (issue 18).
DATASET_VERSION = 11  # 11: the entry tables' (patient, created_at) index (patients 0007)

# NHS numbers 9000000000-9999999999 are never issued (synthetic and test patients); the demo and the tests
# use 999xxxxxxx, the bench 910xxxxxxx onwards, and FHIR ingest runs take fresh blocks from 980xxxxxxx.
PATIENT_STEM_START = 910_000_000
INGEST_STEM_START = 980_000_000
INGEST_BLOCK = 2_000

CHUNK = 2_000  # patients generated per round; every table's COPY gets each round's rows

# Mean items of each category per ordinary patient (the heavy patient has its own counts below).
MEAN_ENTRIES = {
    "appointment": 14.0,
    "condition": 5.0,
    "medication": 10.0,
    "alert": 0.5,
    "allergy": 1.2,
    "result": 12.0,
    "procedure": 1.5,
    "immunisation": 6.0,
    "letter": 5.0,
    "careplan": 0.8,
    "careevent": 3.0,
}
HEAVY_ENTRIES = {
    "appointment": 1_200,
    "condition": 120,
    "medication": 400,
    "alert": 25,
    "allergy": 12,
    "result": 2_400,
    "procedure": 80,
    "immunisation": 150,
    "letter": 250,
    "careplan": 60,
    "careevent": 400,
}

# Which of the patient's organisations records each category (weights over the patient's own providers).
SOURCES = {
    "appointment": {"gp": 6, "acute": 3, "community": 1},
    "condition": {"gp": 8, "acute": 2},
    "medication": {"gp": 17, "acute": 3},
    "alert": {"gp": 5, "acute": 3, "social": 2},
    "allergy": {"gp": 8, "acute": 2},
    "result": {"gp": 1, "acute": 1},
    "procedure": {"acute": 9, "gp": 1},
    "immunisation": {"gp": 9, "community": 1},
    "letter": {"acute": 8, "mh": 1, "community": 1},
    "careplan": {"gp": 3, "community": 4, "mh": 3},
    "careevent": {"community": 6, "mh": 3, "social": 1},
}
ENTRY_COLUMNS = (
    "id, patient_id, source_organisation_id, source_id, effective_at, source_updated_at, sensitive, "
    "entered_in_error, created_at"
)
TABLES = {
    "patient": (
        "patients_patient",
        "id, nhs_number, given_name, family_name, date_of_birth, date_of_death, sex, address, postcode, phone, "
        "email, created_at, updated_at, registered_gp_id",
    ),
    "appointment": ("patients_appointment", f"{ENTRY_COLUMNS}, service, location, clinician, status, description"),
    "condition": (
        "patients_condition",
        f"{ENTRY_COLUMNS}, code_system, code, name, clinical_status, resolved_on, notes",
    ),
    "medication": (
        "patients_medication",
        f"{ENTRY_COLUMNS}, code_system, code, name, dosage, kind, status, ended_on",
    ),
    "alert": ("patients_alert", f"{ENTRY_COLUMNS}, kind, text, active"),
    "allergy": ("patients_allergy", f"{ENTRY_COLUMNS}, code_system, code, substance, reaction, severity"),
    "result": ("patients_result", f"{ENTRY_COLUMNS}, code_system, code, name, status, conclusion"),
    "procedure": (
        "patients_procedure",
        f"{ENTRY_COLUMNS}, code_system, code, name, status, body_site, outcome, performer, notes",
    ),
    "immunisation": (
        "patients_immunisation",
        f"{ENTRY_COLUMNS}, code_system, code, vaccine, status, dose, site, route, lot_number, reason_not_given, notes",
    ),
    "observation": (
        "patients_observation",
        "id, result_id, patient_id, code_system, code, name, value, value_text, unit, reference_low, "
        "reference_high, flag, effective_at, source_id",
    ),
    "letter": ("patients_letter", f"{ENTRY_COLUMNS}, kind, title, author, body"),
    "careplan": ("patients_careplan", f"{ENTRY_COLUMNS}, title, status, description, review_on"),
    "careevent": ("patients_careevent", f"{ENTRY_COLUMNS}, service, title, description, practitioner"),
    "support": (
        "patients_supportperson",
        "id, patient_id, source_organisation_id, source_id, name, relationship, phone, notes, source_updated_at, "
        "sensitive, entered_in_error",
    ),
    "involvement": (
        "sharing_involvement",
        "id, patient_id, care_team_id, reason, started_at, ended_at, source_id, asserted_by, review_note",
    ),
    "grant": ("sharing_patientgroupobjectpermission", "content_object_id, group_id, permission_id"),
    "objection": (
        "optout_objection",
        "reference, status, source, received_at, nhs_number, given_name, family_name, date_of_birth, postcode, "
        "contact_email, contact_phone, region, reason, on_behalf_name, on_behalf_relationship, how_told, "
        "repeat_count, verified_at, identity_check, identity_check_note, decided_at, decision_reason, clinician_name, "
        "patient_id",
    ),
}
# Tables whose secondary indexes and foreign keys are dropped for the load and rebuilt after it.
BULK_TABLES = sorted({table for table, _ in TABLES.values()})


def totp_secret(email: str) -> str:
    """Each bench professional's TOTP secret, derived from the email so the load test can compute codes."""
    return base64.b32encode(hashlib.sha256(f"carerecord-bench:{email}".encode()).digest()[:20]).decode()


def copy_text(value: str) -> str:
    """Escape a value for COPY's text format."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


# --- the database ------------------------------------------------------------------------------------------------


def _admin_connection():
    return psycopg.connect(f"{server_url()}/postgres", autocommit=True)


def marker(scale: Scale) -> dict | None:
    """The finished build's marker row, or None if the database, the table or a current-version row is missing."""
    with _admin_connection() as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database_name(scale)]).fetchone()
    if not exists:
        return None
    with psycopg.connect(database_url(scale)) as conn:
        if not conn.execute("SELECT to_regclass('bench_dataset')").fetchone()[0]:
            return None
        row = conn.execute(
            "SELECT detail FROM bench_dataset WHERE scale = %s AND version = %s", [scale.name, DATASET_VERSION]
        ).fetchone()
    return row[0] if row else None


def ensure(scale: Scale, *, rebuild: bool = False) -> dict:
    """The dataset's marker, building the dataset first if it is missing, unfinished or out of date."""
    if not rebuild:
        found = marker(scale)
        if found:
            print(f"bench dataset {database_name(scale)}: reusing (built {found['built_at']})", flush=True)
            _migrate(scale)  # schema changes since the build (an index, say) apply to the data as it is
            return found
    return build(scale)


def _recreate_database(scale: Scale) -> None:
    name = database_name(scale)
    with _admin_connection() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def _migrate(scale: Scale) -> None:
    env = {**os.environ, "DATABASE_URL": database_url(scale)}
    subprocess.run(  # noqa: S603 - our own manage.py, with this interpreter
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--no-input", "-v", "0"], check=True, env=env, cwd=ROOT
    )


def _secondary_schema(conn) -> tuple[list[str], list[str]]:
    """(statements that drop, statements that rebuild) the bulk tables' secondary indexes and foreign keys."""
    tables = BULK_TABLES
    drops, creates, foreign = [], [], []
    constraints = conn.execute(
        """SELECT c.conrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid)
           FROM pg_constraint c WHERE c.conrelid::regclass::text = ANY(%s) AND c.contype IN ('f', 'u')
           ORDER BY c.contype DESC, 1, 2""",
        [tables],
    ).fetchall()
    backing = set()
    for table, name, kind, definition in constraints:
        drops.append(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        statement = f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
        (foreign if kind == "f" else creates).append(statement)
        if kind == "u":
            backing.add(name)
    indexes = conn.execute(
        """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
           WHERE i.indrelid::regclass::text = ANY(%s) AND NOT i.indisprimary ORDER BY 1""",
        [tables],
    ).fetchall()
    for name, definition in indexes:
        if name.strip('"') in backing:
            continue
        drops.append(f"DROP INDEX {name}")
        creates.append(definition)
    # Foreign keys last: each is checked against the rebuilt unique indexes with one anti-join.
    return drops, creates + foreign


# --- organisations, teams and staff (through the ORM: hundreds of rows) ------------------------------------------


REGIONS = ("NCL", "NEL", "NWL", "SEL", "SWL")
TEAM_PLANS = {
    # organisation kind -> [(team name, team kind, [(role, job title)] per member)]
    "gp": [("Practice team", "gp-practice", [("gp", "GP partner")] * 5 + [("nurse", "Practice nurse")] * 3)],
    "acute": [
        *[(f"Ward {n}", "ward", [("doctor", "Registrar"), ("nurse", "Ward sister")] * 2) for n in ("A1", "A2", "B4")],
        *[
            (name, "clinic", [("doctor", "Consultant"), ("nurse", "Clinical nurse specialist")] * 2)
            for name in ("Diabetes Clinic", "Renal Clinic", "Respiratory Clinic", "Cardiology Clinic")
        ],
    ],
    "mental-health": [
        ("North Community Mental Health Team", "mental-health", [("nurse", "Community mental health nurse")] * 4),
        ("South Community Mental Health Team", "mental-health", [("nurse", "Community mental health nurse")] * 4),
        ("CAMHS", "camhs", [("doctor", "Consultant child psychiatrist")] * 4),
    ],
    "community": [
        ("District Nursing", "community", [("nurse", "District nurse")] * 4),
        ("Community Matrons", "community", [("nurse", "Community matron")] * 4),
    ],
    "social-care": [
        ("Adult Social Care", "social-care", [("social-worker", "Social worker")] * 3),
        ("Children's Social Care", "social-care", [("social-worker", "Social worker")] * 3),
    ],
    "hospice": [("Hospice Team", "community", [("nurse", "Palliative care nurse")] * 3)],
}
TEAMLESS = {"ambulance": [("paramedic", "Paramedic")] * 10, "111": [("clinician-111", "NHS 111 clinician")] * 5}
NOT_SHARED = {"mental-health": {"letters"}, "social-care": {"medications"}}


@dataclass
class Directory:
    """What the patient generator needs to know about organisations and teams (ids only)."""

    by_kind: dict = field(default_factory=dict)  # kind -> [(org id, region)]
    teams: dict = field(default_factory=dict)  # org id -> {team name: (team id, group id)}
    permission_id: int = 0
    viewer_email: str = ""


def _organisations(scale: Scale) -> Directory:
    from allauth.mfa.models import Authenticator
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, Permission
    from django.db import transaction
    from django.utils import timezone

    from directory.models import CareTeam, CareTeamMembership, Organisation, Professional
    from patients.categories import Category
    from sharing.models import SharingAgreement

    User = get_user_model()
    plan = [
        ("gp", "ZZP", scale.practices, "Surgery"),
        ("acute", "ZZA", scale.acute, "Hospitals NHS Trust"),
        ("mental-health", "ZZM", scale.mental_health, "Mental Health NHS Trust"),
        ("community", "ZZC", scale.community, "Community Health NHS Trust"),
        ("social-care", "ZZK", scale.social_care, "Council Social Services"),
        ("hospice", "ZZH", scale.hospices, "Hospice"),
        ("ambulance", "ZZL", 1, "Ambulance Service"),
        ("111", "ZZT", 1, "NHS 111"),
    ]
    directory = Directory()
    today = timezone.localdate()
    since = today.replace(year=today.year - 2, day=1)
    password = make_password(BENCH_PASSWORD)  # one hash for all: hashing each would take minutes
    with transaction.atomic():
        organisations = []
        for kind, prefix, count, suffix in plan:
            for n in range(count):
                region = REGIONS[n % len(REGIONS)]
                organisations.append(
                    Organisation(
                        ods_code=f"{prefix}{n + 1:04d}",
                        name=f"Bench {region} {n + 1} {suffix}",
                        kind=kind,
                        region=region,
                        address="1 Bench Street\nLondon",
                    )
                )
        Organisation.objects.bulk_create(organisations)
        organisations = list(Organisation.objects.order_by("pk"))
        SharingAgreement.objects.bulk_create(
            SharingAgreement(
                organisation=organisation,
                category=category,
                shares=category.value not in NOT_SHARED.get(organisation.kind, ()),
                since=since,
            )
            for organisation in organisations
            for category in Category
        )
        teams, staff = [], []  # staff: (team or None, organisation, role, job title)
        for organisation in organisations:
            directory.by_kind.setdefault(organisation.kind, []).append((organisation.pk, organisation.region))
            for team_name, team_kind, members in TEAM_PLANS.get(organisation.kind, []):
                team = CareTeam(organisation=organisation, name=team_name, kind=team_kind, phone="020 7946 0000")
                teams.append(team)
                staff += [(team, organisation, role, title) for role, title in members]
            staff += [(None, organisation, role, title) for role, title in TEAMLESS.get(organisation.kind, [])]
        groups = Group.objects.bulk_create(Group(name=f"care-team:bench:{n}") for n in range(len(teams)))
        for team, group in zip(teams, groups, strict=True):
            team.group = group
        CareTeam.objects.bulk_create(teams)
        users, numbers = [], {}
        for _team, organisation, role, _title in staff:
            numbers[organisation.pk, role] = numbers.get((organisation.pk, role), 0) + 1
            email = f"{role}.{numbers[organisation.pk, role]}@{organisation.ods_code.lower()}.bench.carerecord.test"
            last = f"{organisation.ods_code.title()}{numbers[organisation.pk, role]:03d}"
            users.append(User(username=email, email=email, first_name=role.title(), last_name=last, password=password))
        users = User.objects.bulk_create(users)
        Professional.objects.bulk_create(
            Professional(user=user, organisation=organisation, role=role, job_title=title)
            for user, (_, organisation, role, title) in zip(users, staff, strict=True)
        )
        professionals = {p.user_id: p for p in Professional.objects.all()}
        Authenticator.objects.bulk_create(
            Authenticator(user=user, type=Authenticator.Type.TOTP, data={"secret": totp_secret(user.email)})
            for user in users
        )
        CareTeamMembership.objects.bulk_create(
            CareTeamMembership(team=team, professional=professionals[user.pk], role_in_team=title)
            for user, (team, _, _, title) in zip(users, staff, strict=True)
            if team is not None
        )
        User.groups.through.objects.bulk_create(
            User.groups.through(user_id=user.pk, group_id=team.group_id)
            for user, (team, *_) in zip(users, staff, strict=True)
            if team is not None
        )
    for team in CareTeam.objects.all():
        directory.teams.setdefault(team.organisation_id, {})[team.name] = (team.pk, team.group_id)
    directory.permission_id = Permission.objects.get(
        content_type__app_label="patients", codename="read_shared_record"
    ).pk
    # The viewer: the first GP of the first practice, where the heavy patient is registered.
    directory.viewer_email = "gp.1@zzp0001.bench.carerecord.test"
    return directory


# --- patients and their records (COPY) ---------------------------------------------------------------------------


class Stream:
    """One table's COPY, open for the whole load on a connection of its own."""

    def __init__(self, url: str, key: str):
        table, columns = TABLES[key]
        self.conn = psycopg.connect(url)
        self.conn.execute("SET synchronous_commit = off")
        self._copy_context = self.conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN")
        self.copy = self._copy_context.__enter__()
        self.lines: list[str] = []
        self.rows = 0

    def flush(self) -> None:
        if self.lines:
            self.copy.write("".join(self.lines))
            self.rows += len(self.lines)
            self.lines.clear()

    def close(self) -> None:
        self.flush()
        self._copy_context.__exit__(None, None, None)
        self.conn.commit()
        self.conn.close()


def _timestamps(rng: random.Random, now: datetime, years: int, size: int = 1 << 16) -> list[str]:
    span = years * 365 * 86400
    return [(now - timedelta(seconds=rng.randrange(span))).strftime("%Y-%m-%d %H:%M:%S+00") for _ in range(size)]


class Catalogue:
    """Pools of ready-made COPY fragments, so that a row costs a few random picks and one join."""

    def __init__(self, rng: random.Random, now: datetime):
        from faker.providers.person.en_GB import Provider as Names

        from demo import catalogue as demo

        self.now = now.strftime("%Y-%m-%d %H:%M:%S+00")
        self.times = _timestamps(rng, now, 12)
        self.recent = _timestamps(rng, now, 2)
        self.family = list(Names.last_names)
        self.family_weights = list(itertools.accumulate(Names.last_names.values()))
        self.female = list(Names.first_names_female)
        self.male = list(Names.first_names_male)
        self.districts = demo.POSTCODE_DISTRICTS
        self.streets = [f"{s} {t}" for s in demo._STREETS for t in demo._STREET_TYPES]
        esc = copy_text
        self.tails = {
            "appointment": [
                f"{esc(service)}\t{esc(location)}\t{esc(clinician)}\t{status}\t{esc(reason)}"
                for service, location in (
                    ("GP appointment", "Surgery"),
                    ("Practice nurse", "Treatment room"),
                    ("Diabetes clinic", "Outpatients, level 2"),
                    ("Renal clinic", "Outpatients, level 3"),
                    ("Physiotherapy", "Therapy suite"),
                )
                for clinician in ("Dr A Patel", "Dr B Okafor", "Nurse C Byrne", "")
                for status in ("attended", "attended", "attended", "booked", "cancelled", "noshow")
                for reason in demo.APPOINTMENT_REASONS
            ],
            "condition": [
                f"http://snomed.info/sct\t{code}\t{esc(name)}\t{status}\t{resolved}\t{esc(notes)}"
                for code, name in demo.CONDITIONS.values()
                for status, resolved in (("active", "\\N"), ("active", "\\N"), ("resolved", "2023-04-01"))
                for notes in ("", "Diagnosed in primary care.", "Confirmed by specialist review.")
            ],
            "medication": [
                f"https://dmd.nhs.uk\t{code}\t{esc(name)}\t{esc(dosage)}\t{kind}\t{status}\t{ended}"
                for code, name, dosage in demo.MEDICINES.values()
                for kind, status, ended in (
                    ("repeat", "active", "\\N"),
                    ("repeat", "active", "\\N"),
                    ("acute", "completed", "2024-02-10"),
                    ("hospital", "stopped", "2023-11-20"),
                )
            ],
            "alert": [
                f"{kind}\t{esc(text)}\t{active}"
                for kind, text in (
                    ("safeguarding", "Child protection plan in place: contact the social worker before discharge."),
                    ("dnacpr", "DNACPR decision recorded; ReSPECT form at home."),
                    ("risk", "Lone working risk: visit in pairs."),
                    ("communication", "Needs a Bengali interpreter."),
                    ("clinical", "Difficult airway: anaesthetic alert."),
                )
                for active in ("t", "t", "f")
            ],
            "allergy": [
                f"http://snomed.info/sct\t{code}\t{esc(substance)}\t{esc(reaction)}\t{severity.value}"
                for code, substance, reaction, severity in demo.ALLERGIES
            ],
            "careplan": [
                f"{esc(title)}\t{status}\t{esc(description)}\t{review}"
                for title in ("Diabetes care plan", "Falls prevention plan", "Crisis plan", "Advance care plan")
                for status, review in (("active", "2026-09-01"), ("completed", "\\N"), ("draft", "\\N"))
                for description in (
                    "Agreed goals, the support in place and who to contact, reviewed with the patient.",
                    "Plan shared with the patient and carer; copy held at home.",
                )
            ],
            "procedure": [
                f"http://snomed.info/sct\t{code}\t{esc(name)}\t{status}\t{esc(site)}\t{esc(outcome)}\t{esc(by)}\t"
                for code, name, sites, outcomes, specialty in demo.PROCEDURES.values()
                for site in sites
                for status, outcome in (("completed", outcomes[0]), ("completed", outcomes[-1]), ("preparation", ""))
                for by in (f"Ms A Khan, Consultant {specialty}", f"Mr B Osei, Consultant {specialty}")
            ],
            "immunisation": [
                f"{system}\t{code}\t{esc(name)}\t{status}\t{dose}\t{esc(site)}\t{esc(route)}\t{batch}\t{reason}\t"
                for name, [(system, code, _), *_], route, site in demo.VACCINES.values()
                for dose in ("1", "2 of 2", "Booster", "")
                for status, batch, reason in (
                    *(("completed", batch, "") for batch in ("FK8891", "AB1234", "RX2207", "PL6631")),
                    ("not-done", "", "Patient declined"),
                )
            ],
            "careevent": [
                f"{service.value}\t{esc(title)}\t{esc(description)}\t{esc(practitioner)}"
                for service, events in demo.CARE_EVENTS.items()
                for title, description in events
                for practitioner in ("J Smith", "K Mensah", "L Novak")
            ],
        }
        self.letters = []
        for clinic, (title, body, _tests, plans) in demo.CLINIC_LETTERS.items():
            for kind in ("clinic", "to-gp", "discharge"):
                for given in ("Amira", "Tom", "Grace", "Daniel"):
                    text = f"Dear Dr Practice,\n\nRe: {given}, seen in the {clinic}.\n\n{body.format(given=given)}\n\n"
                    text += "Plan:\n" + "\n".join(f"- {plan}" for plan in plans)
                    text += "\n\n" + body.format(given=given) * 2 + "\n\nYours sincerely,\n\nConsultant"
                    self.letters.append(f"{kind}\t{esc(title)}\tDr Consultant\t{esc(text)}")
        self.panels = []
        for name, code, tests in demo.PANELS.values():
            observations = []
            for test in tests:
                values = []
                for _ in range(32):
                    value = test.low + (test.high - test.low) * rng.uniform(-0.25, 1.25)
                    flag = "H" if value > test.high else "L" if value < test.low else ""
                    values.append(
                        f"http://loinc.org\t{test.code}\t{esc(test.name)}\t{value:.{test.places}f}\t\t"
                        f"{esc(test.unit)}\t{test.low}\t{test.high}\t{flag}\t"
                    )
                observations.append(values)
            tail = f"http://loinc.org\t{code}\t{esc(name)}\tfinal\t"
            self.panels.append((tail, observations))


class Generator:
    """Writes patients and everything about them into the open streams, one chunk of patients at a time."""

    def __init__(self, scale: Scale, directory: Directory, streams: dict[str, Stream], catalogue: Catalogue):
        self.scale, self.directory, self.streams, self.cat = scale, directory, streams, catalogue
        self.rng = random.Random(f"carerecord-bench:{scale.name}")
        self.ids = dict.fromkeys(TABLES, 0)
        self.stem = PATIENT_STEM_START
        self.counts = dict.fromkeys(TABLES, 0)
        self.regional = {
            kind: {region: [org for org, r in orgs if r == region] or [org for org, _ in orgs] for region in REGIONS}
            for kind, orgs in directory.by_kind.items()
        }
        self.source_slots = {
            category: [role for role, weight in weights.items() for _ in range(weight)]
            for category, weights in SOURCES.items()
        }
        self.heavy_patient_id = None

    def next_id(self, key: str) -> int:
        self.ids[key] += 1
        return self.ids[key]

    def nhs_number(self) -> str:
        while True:
            stem = str(self.stem)
            self.stem += 1
            check = nhs_number.calculate_checksum(stem)
            if check != 10:
                return f"{stem}{check}"

    def run(self, progress) -> None:
        for start in range(0, self.scale.patients, CHUNK):
            for index in range(start, min(start + CHUNK, self.scale.patients)):
                self.patient(index)
            for stream in self.streams.values():
                stream.flush()
            progress.update(min(CHUNK, self.scale.patients - start))

    def patient(self, index: int) -> None:
        rng, cat = self.rng, self.cat
        heavy = index == 0
        region = REGIONS[0] if heavy else rng.choice(REGIONS)
        orgs = {
            kind: (self.regional[key][region][0] if heavy else rng.choice(self.regional[key][region]))
            for kind, key in (
                ("gp", "gp"),
                ("acute", "acute"),
                ("mh", "mental-health"),
                ("community", "community"),
                ("social", "social-care"),
                ("hospice", "hospice"),
            )
        }
        patient_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if heavy:
            self.heavy_patient_id = patient_id
        female = rng.random() < 0.51
        given = rng.choice(cat.female if female else cat.male)
        family = rng.choices(cat.family, cum_weights=cat.family_weights)[0]
        age_days = rng.randrange(0, 95 * 365)
        born = (date.today() - timedelta(days=age_days)).isoformat()
        district = rng.choice(cat.districts[region])
        postcode = f"{district} {rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQ')}"
        address = f"{rng.randint(1, 240)} {rng.choice(cat.streets)}\\nLondon"
        number = self.nhs_number()
        email = f"{given.lower()}.{family.lower()}{index}@example.com" if rng.random() < 0.6 else ""
        self.streams["patient"].lines.append(
            f"{patient_id}\t{number}\t{given}\t{family}\t{born}\t\\N\t{'female' if female else 'male'}\t{address}\t"
            f"{postcode}\t07700 900{index % 1000:03d}\t{email}\t{cat.now}\t{cat.now}\t{orgs['gp']}\n"
        )
        self.counts["patient"] += 1
        if not heavy and rng.random() < 0.005:
            self.objection(patient_id, number, given, family, born, postcode, region)
        self.involvements(patient_id, orgs, heavy)
        self.support(patient_id, orgs["gp"], heavy)
        activity = rng.gammavariate(2.0, 0.5)  # mean 1: most patients have a little, a few a lot
        for category, mean in MEAN_ENTRIES.items():
            count = HEAVY_ENTRIES[category] if heavy else int(mean * activity + rng.random())
            if count:
                self.entries(category, count, patient_id, orgs)

    def objection(self, patient_id, number, given, family, born, postcode, region) -> None:
        n = self.next_id("objection")
        self.streams["objection"].lines.append(
            f"BX{n:010d}\tupheld\tweb-form\t{self.cat.now}\t{number}\t{given}\t{family}\t{born}\t{postcode}\t\t\t"
            f"{region}\t\t\t\t\t0\t{self.cat.now}\tcall-back\t\t{self.cat.now}\tVerified and upheld.\t\t{patient_id}\n"
        )
        self.counts["objection"] += 1

    def involvements(self, patient_id: str, orgs: dict, heavy: bool) -> None:
        """Registration with the practice; some hospital, community, mental health and social care teams."""
        rng, times, teams = self.rng, self.cat.times, self.directory.teams
        current = []  # (team name at org, reason)
        current.append((orgs["gp"], "Practice team", "registration"))
        ended = []
        if heavy:
            for name in teams[orgs["acute"]]:
                current.append((orgs["acute"], name, "referral"))
            for kind in ("mh", "community", "social", "hospice"):
                for name in teams[orgs[kind]]:
                    current.append((orgs[kind], name, "caseload"))
        else:
            r = rng.random
            if r() < 0.15:
                other = rng.choice(self.regional["gp"][rng.choice(REGIONS)])
                if other != orgs["gp"]:
                    ended.append((other, "Practice team", "registration"))
            if r() < 0.25:
                clinic = rng.choice(("Diabetes Clinic", "Renal Clinic", "Respiratory Clinic", "Cardiology Clinic"))
                current.append((orgs["acute"], clinic, "referral"))
            if r() < 0.08:
                ward = rng.choice(("Ward A1", "Ward A2", "Ward B4"))
                (current if r() < 0.2 else ended).append((orgs["acute"], ward, "admission"))
            if r() < 0.04:
                current.append((orgs["community"], rng.choice(("District Nursing", "Community Matrons")), "caseload"))
            if r() < 0.03:
                team = rng.choice(("North Community Mental Health Team", "South Community Mental Health Team", "CAMHS"))
                current.append((orgs["mh"], team, "caseload"))
            if r() < 0.02:
                current.append((orgs["social"], "Adult Social Care", "caseload"))
        lines, grants = self.streams["involvement"].lines, self.streams["grant"].lines
        granted = set()
        for org, name, reason in current:
            team_id, group_id = teams[org][name]
            n = self.next_id("involvement")
            lines.append(f"{n}\t{patient_id}\t{team_id}\t{reason}\t{times[rng.getrandbits(16)]}\t\\N\tbench-{n}\t\t\n")
            if group_id not in granted:  # one grant per team and patient, however many involvements
                granted.add(group_id)
                grants.append(f"{patient_id}\t{group_id}\t{self.directory.permission_id}\n")
        for org, name, reason in ended:
            team_id, _ = teams[org][name]
            n = self.next_id("involvement")
            start, end = sorted((times[rng.getrandbits(16)], times[rng.getrandbits(16)]))
            lines.append(f"{n}\t{patient_id}\t{team_id}\t{reason}\t{start}\t{end}\tbench-{n}\t\t\n")
        self.counts["involvement"] += len(current) + len(ended)
        self.counts["grant"] += len(granted)

    def support(self, patient_id: str, gp: int, heavy: bool) -> None:
        rng = self.rng
        count = 6 if heavy else (1 if rng.random() < 0.3 else 0)
        for k in range(count):
            n = self.next_id("support")
            relationship = ("next-of-kin", "carer", "partner", "parent", "child", "lpa")[k % 6]
            self.streams["support"].lines.append(
                f"{n}\t{patient_id}\t{gp}\tbench-{n}\tSupport Person {n}\t{relationship}\t020 7946 0{n % 1000:03d}\t"
                f"\t{self.cat.now}\tf\tf\n"
            )
        self.counts["support"] += count

    def entries(self, category: str, count: int, patient_id: str, orgs: dict) -> None:
        rng, cat = self.rng, self.cat
        random_, bits, choice = rng.random, rng.getrandbits, rng.choice
        times, now, slots = cat.times, cat.now, self.source_slots[category]
        lines = self.streams[category].lines
        if category == "result":
            obs_lines = self.streams["observation"].lines
            panels = cat.panels
        else:
            tails = cat.letters if category == "letter" else cat.tails[category]
        n = self.ids[category]
        for _ in range(count):
            n += 1
            org = orgs[choice(slots)]
            when = times[bits(16)]
            roll = random_()
            sensitive = "t" if roll < 0.02 else "f"
            withdrawn = "t" if roll > 0.997 else "f"
            head = f"{n}\t{patient_id}\t{org}\tbench-{n}\t{when}\t{when}\t{sensitive}\t{withdrawn}\t{now}\t"
            if category == "result":
                tail, observations = choice(panels)
                lines.append(f"{head}{tail}\n")
                o = self.ids["observation"]
                for values in observations:
                    o += 1
                    # Observations arrive as FHIR resources: each keeps its "Observation/<id>", as imports store it.
                    obs_lines.append(f"{o}\t{n}\t{patient_id}\t{values[bits(5)]}{when}\tObservation/bench-{o}\n")
                self.counts["observation"] += o - self.ids["observation"]
                self.ids["observation"] = o
            else:
                lines.append(f"{head}{choice(tails)}\n")
        self.counts[category] += count
        self.ids[category] = n


def _load(scale: Scale, directory: Directory) -> Generator:
    url = database_url(scale)
    streams = {key: Stream(url, key) for key in TABLES}
    catalogue = Catalogue(random.Random("carerecord-bench:catalogue"), datetime.now(UTC))
    generator = Generator(scale, directory, streams, catalogue)
    with tqdm(total=scale.patients, unit=" patients", desc="COPY", mininterval=1.0) as progress:
        generator.run(progress)
    for stream in tqdm(streams.values(), desc="commit", unit=" tables", leave=False):
        stream.close()
    return generator


def _finish(scale: Scale, rebuild_statements: list[str]) -> None:
    """Rebuild indexes and foreign keys, reset sequences past the ids assigned here, and analyse."""
    with psycopg.connect(database_url(scale), autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        for statement in tqdm(rebuild_statements, desc="indexes and keys", unit=" statements"):
            conn.execute(statement)
        for key, (table, _) in TABLES.items():
            if key not in ("patient", "grant", "objection"):
                query = (
                    "SELECT setval(pg_get_serial_sequence({name}, 'id'), GREATEST((SELECT max(id) FROM {table}), 1))"
                )
                conn.execute(sql.SQL(query).format(name=sql.Literal(table), table=sql.Identifier(table)))
        for table in tqdm(BULK_TABLES, desc="vacuum analyse", unit=" tables"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
        # And the small tables the ORM filled (sharing agreements, teams...): without statistics the planner
        # guesses one sharing agreement per category and picks 50 ms plans that a production database,
        # analysed by autovacuum, would not.
        conn.execute("ANALYZE")


def build(scale: Scale) -> dict:
    from django.db import connection

    began = time.perf_counter()
    print(f"bench dataset {database_name(scale)}: building {scale.patients:,} patients", flush=True)
    connection.close()
    _recreate_database(scale)
    _migrate(scale)
    directory = _organisations(scale)
    with psycopg.connect(database_url(scale), autocommit=True) as conn:
        drops, rebuilds = _secondary_schema(conn)
        for statement in drops:
            conn.execute(statement)
    loaded_at = time.perf_counter()
    generator = _load(scale, directory)
    copied_at = time.perf_counter()
    _finish(scale, rebuilds)
    finished_at = time.perf_counter()
    entries = sum(generator.counts[key] for key in MEAN_ENTRIES)
    detail = {
        "scale": scale.name,
        "version": DATASET_VERSION,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "patients": scale.patients,
        "entries": entries,
        "rows": generator.counts,
        "heavy_patient_id": generator.heavy_patient_id,
        "viewer_email": directory.viewer_email,
        "ingest_organisation": "ZZA0001",
        "build_seconds": round(finished_at - began, 1),
        "copy_seconds": round(copied_at - loaded_at, 1),
        "index_seconds": round(finished_at - copied_at, 1),
    }
    with psycopg.connect(database_url(scale)) as conn:
        conn.execute(
            """CREATE TABLE IF NOT EXISTS bench_dataset (scale text PRIMARY KEY, version int NOT NULL,
                   detail jsonb NOT NULL, built_at timestamptz NOT NULL)"""
        )
        conn.execute("CREATE SEQUENCE IF NOT EXISTS bench_ingest_run")
        conn.execute(
            "INSERT INTO bench_dataset VALUES (%s, %s, %s, now())",
            [scale.name, DATASET_VERSION, json.dumps(detail)],
        )
    size = _database_size(scale)
    detail["database_size"] = size
    print(
        f"built {entries:,} record entries ({generator.counts['observation']:,} observations, "
        f"{generator.counts['grant']:,} grants) in {detail['build_seconds']} s "
        f"(COPY {detail['copy_seconds']} s, indexes {detail['index_seconds']} s); database {size}",
        flush=True,
    )
    return detail


def _database_size(scale: Scale) -> str:
    with psycopg.connect(database_url(scale)) as conn:
        return conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]


def next_ingest_block(scale: Scale) -> int:
    """The first NHS-number stem of a block no earlier ingest run has used (so each run creates, not updates)."""
    with psycopg.connect(database_url(scale)) as conn:
        run = conn.execute("SELECT nextval('bench_ingest_run')").fetchone()[0]
    return INGEST_STEM_START + run * INGEST_BLOCK


def main() -> None:
    from .config import setup_django

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=SCALES, default=os.environ.get("BENCH_SCALE", "default"))
    parser.add_argument("--rebuild", action="store_true", help="drop and build again even if a build is marked")
    args = parser.parse_args()
    scale = SCALES[args.scale]
    setup_django(scale)
    print(json.dumps(ensure(scale, rebuild=args.rebuild), indent=2))


if __name__ == "__main__":
    main()
