"""Synthetic test data, all in one place (factory-boy + Faker en_GB). NHS numbers come from the 999 test range."""

import datetime
import itertools
import time
from decimal import Decimal

import factory
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, hotp_value
from django.contrib.auth import get_user_model
from django.utils import timezone
from factory.django import DjangoModelFactory

from directory import actions as directory_actions
from directory import models as directory_models
from patients import models as patient_models
from patients.categories import Category
from patients.nhs_numbers import test_range_numbers
from sharing import actions
from sharing import models as sharing_models

factory.Faker._DEFAULT_LOCALE = "en_GB"

_nhs_numbers = test_range_numbers(start=500_000)
_ods_codes = itertools.count(1)
PASSWORD = "correct-horse-battery-staple"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def totp_code(secret: str = TOTP_SECRET) -> str:
    """The code an authenticator app would show now (for signing in in browser tests). Near the end of its
    30-second window, wait for the next: a code typed as its window closes is refused, as it should be."""
    if 30 - time.time() % 30 < 5:
        time.sleep(30 - time.time() % 30 + 0.1)
    counter = int(time.time()) // 30
    return format_hotp_value(hotp_value(secret, counter))


class OrganisationFactory(DjangoModelFactory):
    ods_code = factory.LazyFunction(lambda: f"T{next(_ods_codes):05d}")
    name = factory.Faker("company")
    kind = directory_models.Organisation.Kind.GP_PRACTICE
    region = directory_models.Region.SEL

    class Meta:
        model = directory_models.Organisation
        django_get_or_create = ["ods_code"]
        skip_postgeneration_save = True

    @factory.post_generation
    def shares(self, create, extracted, **kwargs):
        """Shares every category unless told which (shares=[] for none)."""
        if create:
            for category in Category if extracted is None else extracted:
                sharing_models.SharingAgreement.objects.update_or_create(
                    organisation=self, category=category, defaults={"shares": True}
                )


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@test.carerecord.test")
    username = factory.SelfAttribute("email")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def totp(self, create, extracted, **kwargs):
        """Everyone has an authenticator app by default, as the service requires (pass totp=False for none)."""
        if create and extracted is not False:
            TOTP.activate(self, TOTP_SECRET)


class ProfessionalFactory(DjangoModelFactory):
    class Meta:
        model = directory_models.Professional

    user = factory.SubFactory(UserFactory)
    organisation = factory.SubFactory(OrganisationFactory)
    role = directory_models.Professional.Role.DOCTOR
    job_title = factory.Faker("job")
    registration_number = factory.Sequence(lambda n: f"GMC{7000000 + n}")


class CareTeamFactory(DjangoModelFactory):
    class Meta:
        model = directory_models.CareTeam
        skip_postgeneration_save = True

    organisation = factory.SubFactory(OrganisationFactory)
    name = factory.Sequence(lambda n: f"Care team {n}")
    kind = directory_models.CareTeam.Kind.GP_PRACTICE

    @factory.post_generation
    def members(self, create, extracted, **kwargs):
        for professional in extracted or []:
            directory_actions.add_team_member(by=None, team=self, professional=professional)


class PatientFactory(DjangoModelFactory):
    class Meta:
        model = patient_models.Patient

    nhs_number = factory.LazyFunction(lambda: next(_nhs_numbers))
    given_name = factory.Faker("first_name")
    family_name = factory.Faker("last_name")
    date_of_birth = factory.Faker("date_of_birth", minimum_age=1, maximum_age=95)
    sex = patient_models.Sex.FEMALE
    address = factory.Faker("street_address")
    postcode = factory.Faker("postcode")
    phone = factory.Faker("phone_number")
    registered_gp = factory.SubFactory(OrganisationFactory)


class InvolvementFactory(DjangoModelFactory):
    """Created through the action, so the care team's access is granted exactly as in the app."""

    class Meta:
        model = sharing_models.Involvement

    patient = factory.SubFactory(PatientFactory)
    care_team = factory.SubFactory(CareTeamFactory)
    reason = sharing_models.Involvement.Reason.REGISTRATION

    @classmethod
    def _create(cls, model_class, **kwargs):
        return actions.start_involvement(by=None, **kwargs)


class SupportPersonFactory(DjangoModelFactory):
    class Meta:
        model = patient_models.SupportPerson

    patient = factory.SubFactory(PatientFactory)
    source_organisation = factory.SubFactory(OrganisationFactory)
    source_id = factory.Sequence(lambda n: f"rp-{n}")
    name = factory.Faker("name")
    relationship = patient_models.SupportPerson.Relationship.NEXT_OF_KIN
    phone = factory.Faker("phone_number")


class EntryFactory(DjangoModelFactory):
    """What every record entry needs; subclasses add their own fields."""

    patient = factory.SubFactory(PatientFactory)
    source_organisation = factory.SubFactory(OrganisationFactory)
    source_id = factory.Sequence(lambda n: f"src-{n}")
    effective_at = factory.Faker("date_time_between", start_date="-5y", end_date="now", tzinfo=datetime.UTC)
    source_updated_at = factory.LazyFunction(timezone.now)


class AppointmentFactory(EntryFactory):
    class Meta:
        model = patient_models.Appointment

    service = "Diabetes clinic"
    location = factory.Faker("street_name")


class ConditionFactory(EntryFactory):
    class Meta:
        model = patient_models.Condition

    name = "Type 2 diabetes mellitus"
    code_system = "http://snomed.info/sct"
    code = "44054006"


class MedicationFactory(EntryFactory):
    class Meta:
        model = patient_models.Medication

    name = "Metformin 500mg modified-release tablets"
    dosage = "One tablet twice a day"
    kind = patient_models.Medication.Kind.REPEAT


class AlertFactory(EntryFactory):
    class Meta:
        model = patient_models.Alert

    kind = patient_models.Alert.Kind.CLINICAL
    text = "Lives alone; key safe by front door"


class AllergyFactory(EntryFactory):
    class Meta:
        model = patient_models.Allergy

    substance = "Penicillin"
    reaction = "Urticaria"
    severity = patient_models.Allergy.Severity.MODERATE


class ResultFactory(EntryFactory):
    class Meta:
        model = patient_models.Result

    name = "HbA1c"


class ObservationFactory(DjangoModelFactory):
    class Meta:
        model = patient_models.Observation

    result = factory.SubFactory(ResultFactory)
    patient = factory.SelfAttribute("result.patient")
    effective_at = factory.SelfAttribute("result.effective_at")
    code_system = "http://loinc.org"
    code = "4548-4"
    name = "Haemoglobin A1c"
    value = Decimal("48")
    unit = "mmol/mol"
    reference_low = Decimal("20")
    reference_high = Decimal("41")
    flag = patient_models.Observation.Flag.HIGH


class LetterFactory(EntryFactory):
    class Meta:
        model = patient_models.Letter

    kind = patient_models.Letter.Kind.DISCHARGE
    title = "Discharge summary"
    author = factory.Faker("name")
    body = factory.Faker("paragraph", nb_sentences=6)


class CarePlanFactory(EntryFactory):
    class Meta:
        model = patient_models.CarePlan

    title = "Diabetes care plan"
    description = factory.Faker("paragraph")


class CareEventFactory(EntryFactory):
    class Meta:
        model = patient_models.CareEvent

    service = patient_models.CareEvent.Service.COMMUNITY
    title = "District nurse visit"


ENTRY_FACTORIES = {
    patient_models.Appointment: AppointmentFactory,
    patient_models.Condition: ConditionFactory,
    patient_models.Medication: MedicationFactory,
    patient_models.Alert: AlertFactory,
    patient_models.Allergy: AllergyFactory,
    patient_models.Result: ResultFactory,
    patient_models.Letter: LetterFactory,
    patient_models.CarePlan: CarePlanFactory,
    patient_models.CareEvent: CareEventFactory,
}


class SourceDemographicsFactory(DjangoModelFactory):
    """One source's copy of a patient's demographics: by default it agrees with the patient's row."""

    class Meta:
        model = patient_models.SourceDemographics

    patient = factory.SubFactory(PatientFactory)
    organisation = factory.SubFactory(OrganisationFactory)
    resource_id = factory.Sequence(lambda n: f"Patient/sd-{n}")
    given_name = factory.LazyAttribute(lambda o: o.patient.given_name)
    family_name = factory.LazyAttribute(lambda o: o.patient.family_name)
    date_of_birth = factory.LazyAttribute(lambda o: o.patient.date_of_birth)
    sex = factory.LazyAttribute(lambda o: o.patient.sex)
    address = factory.LazyAttribute(lambda o: o.patient.address)
    postcode = factory.LazyAttribute(lambda o: o.patient.postcode)
    phone = factory.LazyAttribute(lambda o: o.patient.phone)
    email = factory.LazyAttribute(lambda o: o.patient.email)
    registered_gp = factory.LazyAttribute(lambda o: o.patient.registered_gp)
    source_updated_at = factory.LazyFunction(timezone.now)


# Issue 13: procedures and immunisations, each a category of its own (appended: this file is shared).
class ProcedureFactory(EntryFactory):
    class Meta:
        model = patient_models.Procedure

    name = "Total replacement of hip"
    code_system = "http://snomed.info/sct"
    code = "52734007"
    body_site = "Left hip"
    outcome = "Uncomplicated"
    performer = "Mr A Surgeon"


class ImmunisationFactory(EntryFactory):
    class Meta:
        model = patient_models.Immunisation

    vaccine = "Influenza vaccine (inactivated) 0.5ml injection"
    code_system = "http://snomed.info/sct"
    code = "836377006"
    dose = "1"
    site = "Left upper arm"
    route = "Intramuscular"
    lot_number = "FL2291"


ENTRY_FACTORIES[patient_models.Procedure] = ProcedureFactory
ENTRY_FACTORIES[patient_models.Immunisation] = ImmunisationFactory


# Issue 15: HL7 v2 feeds (appended: this file is shared).
class FeedFactory(DjangoModelFactory):
    """A configured HL7 v2 connection: active, the supported types, refusing others; no address, certificate or
    secret (add them per test)."""

    class Meta:
        model = "feeds.Feed"

    organisation = factory.SubFactory(OrganisationFactory, kind=directory_models.Organisation.Kind.ACUTE_TRUST)
    name = factory.Sequence(lambda n: f"Test hospital feed {n}")


# Issue 16: launch in context (appended: this file is shared).
_launch_keys = {}


def launch_private_key():
    """The RSA key LaunchPartnerFactory's partners sign with unless told otherwise (one per run: ~0.1 s to make)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    if "rsa" not in _launch_keys:
        _launch_keys["rsa"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _launch_keys["rsa"]


def public_pem(private_key) -> str:
    from cryptography.hazmat.primitives import serialization

    public = private_key.public_key()
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class LaunchPartnerFactory(DjangoModelFactory):
    """A clinical system registered to launch in context: RS256, with `launch_private_key()`'s public key."""

    class Meta:
        model = "identity.LaunchPartner"

    name = factory.Sequence(lambda n: f"Clinical system {n}")
    organisation = factory.SubFactory(OrganisationFactory)
    issuer = factory.Sequence(lambda n: f"https://clinical-system-{n}.test.carerecord.test")
    algorithm = "RS256"
    public_key = factory.LazyFunction(lambda: public_pem(launch_private_key()))


def entry_problem(*, patient, reporter, source, status=sharing_models.EntryProblem.Status.OPEN):
    """A problem reported with one of `source`'s entries by `reporter` (a user with a professional profile), stored
    as the report action leaves it; `status` as IG have since set it."""
    professional = reporter.professional
    return sharing_models.EntryProblem.objects.create(
        patient=patient,
        source_organisation=source,
        entry_model="patients.condition",
        entry_id="1",
        entry_summary="Asthma",
        reported_by=reporter,
        reporter_name=professional.name,
        reporter_organisation_code=professional.organisation.ods_code,
        what_is_wrong="Not this patient's",
        status=status,
    )


def break_glass(*, patient, user, started_at=None, outcome=sharing_models.BreakGlass.Outcome.PENDING, code=None):
    """An emergency access by `user` (with a professional profile), started at `started_at` and reviewed as
    `outcome`, kept as values as the break-glass action keeps them."""
    started_at = started_at or timezone.now()
    return sharing_models.BreakGlass.objects.create(
        user=user,
        patient=patient,
        professional_name=user.professional.name,
        organisation_code=code or user.professional.organisation.ods_code,
        reason_code="emergency",
        started_at=started_at,
        expires_at=started_at + datetime.timedelta(hours=4),
        review_outcome=outcome,
    )
