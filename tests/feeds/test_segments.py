"""Reading HL7 v2: framing made regular, encoding characters checked, values by position (absent is "", escapes
undone), Europe/London times, FHIR partial dates at the precision sent, and batch files split into messages."""

import datetime

import pytest

from feeds import segments
from feeds.convert import Invalid
from tests.feeds.pipeline_helpers import FIXTURES, message

A01 = FIXTURES / "uclh" / "Adt_generic_A01.txt"


def test_a_uclh_file_with_newlines_parses_as_one_message_with_its_header():
    msg = segments.parse(A01.read_bytes())
    header = segments.header(msg)
    assert (header.sending_application, header.sending_facility, header.control_id) == ("EPIC", "UCLH", "31644")
    assert (header.message_type, header.version, header.accept_ack, header.application_ack) == (
        "ADT^A01",
        "2.4",
        "AL",
        "NE",
    )
    assert [str(segment[0]) for segment in msg] == ["MSH", "EVN", "PID", "PD1", "PV1", "PV2", "OBX"]


def test_values_by_position_repetition_and_component():
    msg = segments.parse(A01.read_text())
    assert segments.text(msg, "PID.5.1") == "ORANGE"
    assert segments.text(msg, "PID-5.2") == "BLOOD"
    assert segments.text(msg, "PID.5") == "ORANGE"  # a field read whole gives its first component
    assert segments.text(msg, "PID.3[2].1") == "9999999999"
    assert segments.text(msg, "PID.3[2].4") == "NHS"
    pid = segments.segment(msg, "PID")
    assert [(segments.text(r, "1"), segments.text(r, "5")) for r in segments.repetitions(pid, "3")] == [
        ("40800000", "MEDREC"),
        ("9999999999", "HN"),
    ]
    assert segments.text(msg, "MSH.2") == "^~\\&"  # the encoding characters themselves, never unescaped


def test_absent_is_empty_never_an_error():
    msg = segments.parse(A01.read_text())
    assert segments.text(msg, "PID.29") == ""  # beyond the last field
    assert segments.text(msg, "PID.5.9") == ""  # beyond the last component
    assert segments.text(msg, "PID.3[7].1") == ""  # beyond the last repetition
    assert segments.text(msg, "ZZZ.1") == ""  # no such segment
    assert segments.text(msg, "PD1.3") == ""  # an empty segment
    assert segments.repetitions(msg, "PD1.3") == []
    assert segments.segment(msg, "OBR") is None and segments.segments(msg, "OBR") == []


def test_the_nth_segment_and_subcomponents():
    msg = segments.parse(message(obx=["140", "150"], extra="PV1|1|I|WARD^BAY^BED^RRV&1.2.3&ISO"))
    assert segments.text(msg, "OBX[2].5") == "150"
    assert segments.text(msg, "PV1.3.4.1") == "RRV"
    assert segments.text(msg, "PV1.3.4.2") == "1.2.3"
    assert segments.text(msg, "PV1.3.4") == "RRV"


def test_escape_sequences_are_undone_and_line_breaks_kept():
    msg = segments.parse(message(extra="NTE|1||Fasting \\T\\ repeat\\.br\\Ratio 1\\S\\2 \\F\\ done\\E\\"))
    assert segments.text(msg, "NTE.3") == "Fasting & repeat\nRatio 1^2 | done\\"


def test_hl7_explicit_null_is_told_apart_from_absent():
    msg = segments.parse(message(extra='PD1|||""'))
    assert segments.text(msg, "PD1.3") == ""
    assert segments.is_null(msg, "PD1.3")
    assert not segments.is_null(msg, "PD1.4")


def test_other_encoding_characters_are_honoured():
    msg = segments.parse("MSH#$*/%#A#B#C#D#20240301##ADT$A01#1#P#2.4\rPID#1##123$$$RRV*456$$$NHS")
    assert segments.message_type(msg) == "ADT^A01"
    assert segments.text(msg, "PID.3[2].1") == "456"
    assert segments.text(msg, "PID.3.4") == "RRV"


@pytest.mark.parametrize(
    ("raw", "location"),
    [
        ("PID|1||123", "MSH"),  # no MSH first
        ("", "MSH"),
        ("MSH|^~\\|A|B", "MSH-2"),  # three encoding characters
        ("MSH|^^\\&|A|B", "MSH-2"),  # not distinct
        ("MSH|^~\\&X|A|B", "MSH-2"),  # a letter
        ("MSH|^~\\&|A|B|||2024||ADT^A01|1|P|2.4\rpid|1", "segment 2"),  # not a segment name
        ("MSH|^~\\&|A|B|||2024||ADT^A01|1|P|2.4\rPID|1\rMSH|^~\\&|A", "MSH[2]"),  # two messages in one frame
    ],
)
def test_what_cannot_be_read_is_invalid_naming_where(raw, location):
    with pytest.raises(Invalid) as raised:
        segments.parse(raw)
    assert raised.value.location == location
    assert raised.value.reason


def test_five_encoding_characters_from_v2_7_are_accepted():
    msg = segments.parse("MSH|^~\\&#|A|B|||20240301||ORU^R01|1|P|2.7\rPID|1||123")
    assert segments.text(msg, "MSH.12") == "2.7"
    assert segments.text(msg, "PID.3") == "123"


def test_bytes_in_windows_1252_are_not_lost():
    raw = message(family="MÜLLER").encode("cp1252")
    assert segments.text(segments.parse(raw), "PID.5.1") == "MÜLLER"


@pytest.mark.hazard("H-09")
def test_times_are_london_local_and_aware():
    summer = segments.timestamp("20240701101500")
    assert summer.tzinfo is not None and summer.utcoffset() == datetime.timedelta(hours=1)
    assert summer.hour == 10
    winter = segments.timestamp("202401011015")
    assert winter.utcoffset() == datetime.timedelta(0)
    offset = segments.timestamp("20240701101500-0500")  # an offset, when sent, is honoured
    assert offset.astimezone(datetime.UTC).hour == 15


@pytest.mark.hazard("H-09")
def test_a_date_only_value_is_a_date_never_given_a_made_up_time():
    assert segments.timestamp("20240701") is None
    assert segments.date("20240701") == datetime.date(2024, 7, 1)
    assert segments.date("202407") is None
    assert segments.partial_date("20240701") == "2024-07-01"
    assert segments.partial_date("202407") == "2024-07"
    assert segments.partial_date("2024") == "2024"


@pytest.mark.hazard("H-09")
def test_partial_dates_keep_the_precision_sent():
    assert segments.partial_date("20240701101552") == "2024-07-01T10:15:52+01:00"
    assert segments.partial_date("202401011015") == "2024-01-01T10:15:00+00:00"
    assert segments.partial_date("20240701101552.25") == "2024-07-01T10:15:52.250+01:00"
    assert segments.partial_date("") is None


@pytest.mark.hazard("H-09")
@pytest.mark.parametrize("value", ["20241301", "20240230", "2024-07-01", "yesterday", "20240701256000"])
def test_a_value_that_is_no_date_is_invalid_at_its_field(value):
    with pytest.raises(Invalid) as raised:
        segments.partial_date(value, "PID-7")
    assert raised.value.location == "PID-7"


def test_message_type_from_msh_9_or_evn_1():
    assert segments.message_type(segments.parse(message(kind="ADT^A08^ADT_A01"))) == "ADT^A08"
    old = segments.parse("MSH|^~\\&|A|B|||2024||ADT|1|P|2.2\rEVN|A03|2024")
    assert segments.message_type(old) == "ADT^A03"
    assert segments.message_type(segments.parse("MSH|^~\\&|A|B|||2024||ACK|1|P|2.4\rMSA|AA|1")) == "ACK"


def test_a_batch_file_splits_into_its_messages():
    batch = "\n".join(
        [
            "FHS|^~\\&|WINPATH|RRV",
            "BHS|^~\\&|WINPATH|RRV",
            message("B1", kind="ORU^R01").replace("\r", "\n"),
            message("B2", kind="ORU^R01", obx=["140"]).replace("\r", "\n"),
            "BTS|2",
            "FTS|1",
        ]
    )
    found = segments.split(batch)
    assert [segments.text(segments.parse(m), "MSH.10") for m in found] == ["B1", "B2"]
    assert all("\n" not in m and m.startswith("MSH") for m in found)


def test_plain_concatenated_messages_split_too():
    plain = message("P1") + "\r" + message("P2") + "\n\n"
    assert len(segments.split(plain)) == 2
    with pytest.raises(Invalid):
        segments.split("PID|1\r" + message("P3"))
