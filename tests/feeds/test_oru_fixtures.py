"""Every laboratory message in tests/fixtures/hl7v2/ (UCLH's WinPath suite and the generic ORU examples) through the
pipeline (feeds.receive): applied, held or refused with its reason, then sent again with nothing changed (H-18).

The WinPath messages carry only the hospital number (MRENTR); the record learns it from a message that carries it
with an NHS number, as a hospital's ADT feed would teach it first. Messages whose PID gives no date of birth stay
held: a hospital number alone, with no date of birth to confirm it, is never enough (H-06).
"""

from pathlib import Path

import pytest

from directory.models import Organisation
from feeds import segments
from feeds.models import Feed, Message
from feeds.receive import receive
from fhirapi.models import ReceivedResource
from patients.models import Observation, Patient, Result, SourcePatientId
from tests import factories

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hl7v2"
APPLIED, HELD, REFUSED, INVALID = (Message.Status.APPLIED, Message.Status.HELD, Message.Status.REFUSED,
                                   Message.Status.INVALID)  # fmt: skip
# The patients UCLH's test messages are about, as an ADT feed would introduce them: hospital number, NHS number,
# name and date of birth (from the fixtures' own PID segments).
KNOWN = [
    ("40800000", "9997000005", "ORANG^BLOD", "19890909"),
    ("90000000", "9997000013", "LASTNAME^FIRSTNAME", "19010101"),
    ("11111111110", "9997000021", "TEDDY^BEAR", "19390412"),
]
# file → what becomes of each message in it, in order (an invalid one with the segment and field its AE names)
EXPECTED = {
    "uclh/LabOrders_winpath_ORU_R01.txt": [APPLIED],
    "uclh/LabOrders_winpath_Incremental.txt": [HELD, HELD],  # no date of birth to confirm the hospital number
    "uclh/LabOrders_winpath_LabDuplicateResultSegment.txt": [APPLIED, APPLIED],
    "uclh/LabOrders_winpath_Sensitivity.txt": [HELD],
    "uclh/LabOrders_winpath_cancel_orders_01_orm_o01_nw_fbc_mg.txt": [REFUSED],  # orders: not taken (AR)
    "uclh/LabOrders_winpath_cancel_orders_02_orm_o01_ca_fbc.txt": [REFUSED],
    "uclh/LabOrders_winpath_cancel_orders_03_orm_o01_sn_fbcc.txt": [REFUSED],
    "uclh/LabOrders_winpath_cancel_orders_04_orr_o02_cr_fbc.txt": [REFUSED],
    "uclh/LabOrders_winpath_cancel_orders_05_orr_o02_na_fbcc.txt": [REFUSED],
    "uclh/LabOrders_winpath_cancel_orders_06_oru_r01_fbcc.txt": [APPLIED],
    "uclh/LabOrders_winpath_incremental_orders_01_orm_o01_nw.txt": [REFUSED],
    "uclh/LabOrders_winpath_incremental_orders_02_orm_o01_sc_mg.txt": [REFUSED],
    "uclh/LabOrders_winpath_incremental_orders_03_orm_o01_sn_telh.txt": [REFUSED],
    "uclh/LabOrders_winpath_incremental_orders_04_orr_o02_telh.txt": [REFUSED],
    "uclh/LabOrders_winpath_incremental_orders_05_oru_r01.txt": [APPLIED],
    "uclh/LabOrders_winpath_isolate_child_no_epic_id.txt": [HELD],
    "uclh/LabOrders_winpath_isolate_clinical_notes.txt": [HELD],
    "uclh/LabOrders_winpath_isolate_culture_type.txt": [HELD],
    "uclh/LabOrders_winpath_isolate_inc_1.txt": [HELD],
    "uclh/LabOrders_winpath_isolate_inc_2.txt": [HELD],
    "uclh/LabOrders_winpath_isolate_multiple_orders.txt": [HELD],
    "uclh/LabOrders_winpath_isolate_no_growth.txt": [APPLIED],
    "uclh/LabOrders_winpath_isolate_quantity.txt": [HELD],
    "uclh/LabOrders_winpath_isolate_sensitivity.txt": [HELD],
    "uclh/LabOrders_winpath_mistmatch_epic_order_id.txt": [(INVALID, "OBR[1]-2")],  # OBR-2 is not ORC-2
    "uclh/LabOrders_winpath_non_isolate_ce.txt": [APPLIED],
    "uclh/LabOrders_winpath_not_allowed_order_control_id.txt": [(INVALID, "ORC[1]-1")],
    "uclh/LabOrders_winpath_orm_o01_ca.txt": [REFUSED],
    "uclh/LabOrders_winpath_orm_o01_nw.txt": [REFUSED],
    "uclh/LabOrders_winpath_orm_o01_oc.txt": [REFUSED],
    "uclh/LabOrders_winpath_orm_o01_questions.txt": [REFUSED],
    "uclh/LabOrders_winpath_orm_o01_sc.txt": [REFUSED],
    "uclh/LabOrders_winpath_orm_o01_sn.txt": [REFUSED],
    "uclh/LabOrders_winpath_orr_o01_na.txt": [REFUSED],
    "uclh/LabOrders_winpath_orr_o02_cr.txt": [REFUSED],
    "uclh/LabOrders_winpath_oru_ro1_numeric.txt": [(INVALID, "OBX[4]-5")],  # "?7" as a number
    "uclh/LabOrders_winpath_oru_ro1_text.txt": [(INVALID, "OBX[4]-11")],  # result status "?"
    "uclh/LabOrders_winpath_patient_repeats.txt": [APPLIED, APPLIED],  # the same message twice
    "uclh/LabOrders_winpath_subid_no_isolate.txt": [APPLIED],
    "examples/hl7-v2.3-oru-r01-1.hl7": [(INVALID, "OBR[1]-3")],  # no order number
    "examples/hl7-v2.3-oru-r01-2.hl7": [(INVALID, "OBR[1]-2")],
    "examples/hl7-v2.3-oru-r01-3.hl7": [(INVALID, "PID-7")],  # "01/10/1948" is no HL7 date
    "examples/hl7-v2.3.1-oru-r01-1.hl7": [(INVALID, "OBR")],  # a PID and nothing else
    "examples/hl7-v2.4-oru-r01-2.hl7": [(INVALID, "OBR[1]-4")],  # OBR broken across two lines
    "examples/hl7-v2.5.1-oru-r01-1.hl7": [(INVALID, "OBR[1]-22")],  # "20080818300700": hour 30
    "examples/hl7-v2.8-oru-r01-1.hl7": [(INVALID, "OBR[1]-4")],
    # examples/hl7-v2.4-oru-r01-1.hl7 is an ADT^A04, whatever its name: tests/feeds/test_adt_fixtures.py
}


@pytest.fixture
def feed():
    lab = factories.OrganisationFactory(ods_code="RRV", name="UCLH pathology", kind=Organisation.Kind.ACUTE_TRUST)
    feed = Feed.objects.create(organisation=lab, name="WinPath")
    for number, (hospital_number, nhs, name, born) in enumerate(KNOWN, 1):
        teach = "\r".join(
            [
                f"MSH|^~\\&|WinPath|UCH|EPIC|UCH|20130101000000||ORU^R01|TEACH{number}|P|2.3",
                f"PID|1||{hospital_number}^^^MRENTR^MEDREC~{nhs}^^^NHS^NH||{name}||{born}|F",
                f"OBR|1|T{number}|T{number}|REG^Registration check^WinPath||201301010000|||||||||||||||"
                "201301010000||CC|F",
                "OBX|1|ST|REG^Registered^Winpath||Yes||||||F",
            ]
        )
        assert receive(teach, feed=feed, peer="test").message.status == APPLIED
    return feed


def test_every_laboratory_fixture_is_listed():
    found = {str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("uclh/LabOrders_*")}
    found |= {str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("examples/*oru*")} - {
        "examples/hl7-v2.4-oru-r01-1.hl7"
    }
    assert found == set(EXPECTED)


def counts() -> tuple:
    return tuple(model.objects.count() for model in (Patient, SourcePatientId, Result, Observation, ReceivedResource))


@pytest.mark.hazard("H-18")
@pytest.mark.hazard("H-14")
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_fixture_is_applied_held_or_refused_then_again_changes_nothing(feed, name):
    messages = segments.split((FIXTURES / name).read_bytes())
    assert len(messages) == len(EXPECTED[name])
    for raw, expected in zip(messages, EXPECTED[name], strict=True):
        status, location = expected if isinstance(expected, tuple) else (expected, "")
        reply = receive(raw, feed=feed, peer=name)
        row = reply.message
        assert (row.status, row.error_location if location else "") == (status, location), row.reason
        assert row.reason or status == APPLIED  # held or refused: always with its reason
        assert reply.code == {APPLIED: "AA", HELD: "AA", REFUSED: "AR", INVALID: "AE"}[status]
        before = counts()
        again = receive(raw, feed=feed, peer=name)
        assert again.message.status == status
        assert counts() == before
