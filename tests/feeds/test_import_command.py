"""`manage.py import_hl7 FILE... --organisation ODS`: batch files and plain messages through the same pipeline as
the listener, the organisation's active feed applied (none: the supported types), and a summary per type."""

import io

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from feeds.models import Message
from patients.models import Observation, Patient
from tests import factories
from tests.feeds.pipeline_helpers import FIXTURES, stub_converter

pytestmark = pytest.mark.django_db
__all__ = ["stub_converter"]
Status = Message.Status
BATCH = FIXTURES / "synthetic" / "riverview-batch.hl7"
UCLH_A01 = FIXTURES / "uclh" / "Adt_generic_A01.txt"
UCLH_ORU = FIXTURES / "uclh" / "LabOrders_winpath_ORU_R01.txt"


@pytest.fixture
def riverview():
    return factories.OrganisationFactory(ods_code="RRV", name="Riverview Hospital", kind="acute")


def run(*paths, organisation="RRV", verbosity=1):
    out, err = io.StringIO(), io.StringIO()
    call_command("import_hl7", *map(str, paths), organisation=organisation, stdout=out, stderr=err, verbosity=verbosity)
    return out.getvalue(), err.getvalue()


def row(out: str, kind: str) -> list[int]:
    (line,) = [line for line in out.splitlines() if line.startswith(kind + " ")]
    return [int(n) for n in line.split()[1:]]


@pytest.mark.hazard("H-18")
def test_a_batch_file_is_split_kept_and_applied_with_a_summary_per_type(stub_converter, riverview):
    feed = factories.FeedFactory(organisation=riverview, name="Riverview engine")
    out, err = run(BATCH)
    assert "Applying feed 'Riverview engine'" in out
    assert out.splitlines()[1].split() == [
        "message",
        "type",
        "applied",
        "held",
        "ignored",
        "refused",
        "invalid",
        "failed",
    ]
    assert row(out, "ADT^A01") == [1, 0, 0, 0, 0, 0]
    assert row(out, "ORU^R01") == [1, 1, 0, 0, 0, 0]
    assert row(out, "SIU^S12") == [0, 0, 0, 1, 0, 0]
    assert row(out, "total") == [2, 1, 0, 1, 0, 0]
    kept = Message.objects.order_by("pk")
    assert [m.control_id for m in kept] == ["BATCH-1", "BATCH-2", "BATCH-3", "BATCH-4"]
    assert all(m.feed == feed and m.peer == f"file:{BATCH}" and "\n" not in m.raw for m in kept)
    assert "BATCH-3: held" in err and "BATCH-4: refused at MSH-9" in err
    assert Observation.objects.filter(patient__nhs_number="9434765919").count() == 2
    assert AuditEvent.objects.filter(action="hl7.message").count() == 4
    assert set(AuditEvent.objects.filter(action="fhir.submission").values_list("detail__endpoint", flat=True)) == {
        "file"
    }


@pytest.mark.hazard("H-18")
def test_plain_files_in_order_the_second_matching_by_what_the_first_taught(stub_converter, riverview):
    factories.FeedFactory(organisation=riverview)
    out, _ = run(UCLH_A01, UCLH_ORU)
    assert row(out, "total")[0] == 2
    patient = Patient.objects.get(nhs_number="9999999999")
    # the A01's one OBX and the WinPath report's five, which carries only the hospital number the A01 taught
    assert Observation.objects.filter(patient=patient).count() == 6


def test_importing_again_changes_nothing(stub_converter, riverview):
    factories.FeedFactory(organisation=riverview)
    run(BATCH)
    before = (Patient.objects.count(), Observation.objects.count())
    out, _ = run(BATCH)
    assert row(out, "total") == [2, 1, 0, 1, 0, 0]
    assert (Patient.objects.count(), Observation.objects.count()) == before
    assert Message.objects.count() == 8  # every message kept, each time it came


def test_with_no_active_feed_it_says_so_and_takes_the_supported_types(stub_converter, riverview):
    factories.FeedFactory(organisation=riverview, active=False)
    out, err = run(BATCH)
    assert "RRV has no active feed configured" in err
    assert row(out, "total") == [2, 1, 0, 1, 0, 0]
    assert not Message.objects.exclude(feed=None).exists()


def test_an_unreadable_file_is_reported_and_the_others_imported(stub_converter, riverview, tmp_path):
    bad = tmp_path / "bad.hl7"
    bad.write_text("PID|1||123\nOBX|1|NM|X||1\n")
    out, err = run(bad, UCLH_A01)
    assert f"{bad}: not read" in err
    assert row(out, "total")[0] == 1


def test_unknown_organisation_or_file_is_an_error(riverview):
    with pytest.raises(CommandError, match="No organisation"):
        run(BATCH, organisation="XXX")
    with pytest.raises(CommandError, match="No such file"):
        run(FIXTURES / "nothing-here.hl7")
