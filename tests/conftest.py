"""Actors every access test starts from (after healthchecks' alice/bob/charlie and job-server's conftest).

`patient` is in the care of `care_team` (at `organisation`); `clinician` is a member of that team.
Everyone else is outside it in a different way.
"""

import pytest

from directory.actions import add_team_member
from directory.models import Organisation, Professional

from . import factories


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing(django_test_environment):
    """Passwords hash with MD5 in tests: PBKDF2 at a million rounds cost every factory user ~0.3 s, about half
    the suite's time. Production keeps Django's default; the hasher is not what these tests are about."""
    from django.test.utils import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(autouse=True, scope="session")
def _fhir_output_verified(django_test_environment):
    """Every FHIR resource and Bundle the API writes in a test is also validated by its R4B model and compared
    with it (fhirapi.resource): the fast JSON path may not say anything the model would not (H-10)."""
    from django.test.utils import override_settings

    with override_settings(FHIR_VERIFY_OUTPUT=True):
        yield


@pytest.fixture(autouse=True, scope="session")
def _test_database_can_be_dropped(django_db_setup, django_db_blocker):
    """At the end, end any connection a thread left open on the PostgreSQL test database (a live server's
    request thread, a race test's worker), so dropping the database never fails the run. Set up after the
    database, so it is torn down before it."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def _agreements_read_per_decision(request, monkeypatch):
    """Each access decision reads the sharing agreements afresh, as on SQLite: the per-process copy PostgreSQL keeps
    (sharing/agreements.py) would make a request's query count depend on which test ran before it. Its own tests
    (tests/sharing/test_agreements.py, marked `agreements_cache`) keep it."""
    from django.utils import timezone

    from sharing import agreements

    agreements.forget()
    if not request.node.get_closest_marker("agreements_cache"):
        monkeypatch.setattr(agreements, "in_force", lambda version: agreements.load(timezone.localdate()))


@pytest.fixture
def organisation():
    return factories.OrganisationFactory(name="Riverside Medical Centre", kind=Organisation.Kind.GP_PRACTICE)


@pytest.fixture
def other_organisation():
    return factories.OrganisationFactory(name="St Elsewhere NHS Foundation Trust", kind=Organisation.Kind.ACUTE_TRUST)


@pytest.fixture
def care_team(organisation):
    return factories.CareTeamFactory(organisation=organisation, name="Riverside practice team")


@pytest.fixture
def patient(organisation, care_team):
    patient = factories.PatientFactory(given_name="Ada", family_name="Testperson", registered_gp=organisation)
    factories.InvolvementFactory(patient=patient, care_team=care_team)
    return patient


@pytest.fixture
def clinician(organisation, care_team):
    professional = factories.ProfessionalFactory(organisation=organisation, role=Professional.Role.GP)
    add_team_member(by=None, team=care_team, professional=professional)
    return professional.user


@pytest.fixture
def outsider(organisation):
    """Same organisation as the care team, but not in it."""
    return factories.ProfessionalFactory(organisation=organisation).user


@pytest.fixture
def clinician_other_org(other_organisation):
    return factories.ProfessionalFactory(organisation=other_organisation).user


@pytest.fixture
def ig_officer(organisation):
    """Staff with admin rights, no care relationship: admin is not a licence to read records."""
    user = factories.UserFactory(is_staff=True, is_superuser=True)
    factories.ProfessionalFactory(user=user, organisation=organisation, role=Professional.Role.IG_OFFICER)
    return user


@pytest.fixture
def deactivated(organisation, care_team):
    professional = factories.ProfessionalFactory(organisation=organisation)
    add_team_member(by=None, team=care_team, professional=professional)
    professional.user.is_active = False
    professional.user.save()
    return professional.user


@pytest.fixture
def no_profile_user():
    return factories.UserFactory()


@pytest.fixture
def full_record(patient, organisation, other_organisation):
    """One entry of every category from another organisation, so the record shows shared data."""
    entries = {}
    for model, entry_factory in factories.ENTRY_FACTORIES.items():
        entries[model] = entry_factory(patient=patient, source_organisation=other_organisation)
    factories.ObservationFactory(result=entries[next(m for m in entries if m.__name__ == "Result")])
    factories.SupportPersonFactory(patient=patient, source_organisation=organisation, name="Bernard Testperson")
    return entries


@pytest.fixture
def admin_settings(settings):
    settings.SECURE_SSL_REDIRECT = False
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def ig_user(organisation):
    """Like the demo IG officer: staff, not superuser, permissions only through the IG group."""
    from demo.accounts import information_governance_group

    user = factories.UserFactory(is_staff=True, email="ig.officer@test.carerecord.test")
    factories.ProfessionalFactory(user=user, organisation=organisation, role=Professional.Role.IG_OFFICER)
    user.groups.add(information_governance_group())
    return user


@pytest.fixture
def ig_client(client, ig_user):
    client.force_login(ig_user)
    return client


@pytest.fixture
def inactive_professional(organisation, care_team):
    """In the care team, account still active, but the professional profile is switched off."""
    professional = factories.ProfessionalFactory(organisation=organisation, active=False)
    add_team_member(by=None, team=care_team, professional=professional)
    return professional.user


@pytest.fixture
def inactive_organisation():
    return factories.OrganisationFactory(name="Closed Lane Surgery", kind=Organisation.Kind.GP_PRACTICE, active=False)


@pytest.fixture
def professional_at_inactive_organisation(inactive_organisation, patient):
    """In a care team involved with the patient, account and profile active, but their organisation (the
    team's: members work for their team's organisation) is no longer active."""
    team = factories.CareTeamFactory(organisation=inactive_organisation, name="Closed Lane practice team")
    factories.InvolvementFactory(patient=patient, care_team=team)
    professional = factories.ProfessionalFactory(organisation=inactive_organisation)
    add_team_member(by=None, team=team, professional=professional)
    return professional.user


@pytest.fixture
def queue_on(settings):
    """The bulk-load queue configured (bulk.actions.enabled); nothing is sent while a test's transaction is open."""
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/3"
