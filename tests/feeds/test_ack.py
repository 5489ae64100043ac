"""Acknowledgements as HL7 v2 says: original mode AA/AE/AR, enhanced mode's commit and application ACKs as
MSH-15/16 ask, the ERR segment of the message's version, and an MSH that answers the sender."""

import datetime

import pytest

from feeds import ack, segments
from tests.feeds.pipeline_helpers import FIXTURES, message, segments_of

NOW = datetime.datetime(2024, 7, 1, 9, 30, tzinfo=datetime.UTC)


def sent(raw: str) -> ack.Sent:
    return ack.sent_from_message(segments.parse(raw))


def only(acks: list[str]) -> dict:
    assert len(acks) == 1
    return segments_of(acks[0])


def test_original_mode_aa_swaps_sender_and_receiver_and_keeps_id_and_version():
    found = only(ack.acknowledgements(sent(message("CTRL-9", version="2.4")), ack.Answer(ack.ACCEPT), now=NOW))
    msh, msa = found["MSH"], found["MSA"]
    assert (msh[3], msh[4], msh[5], msh[6]) == ("CARERECORD", "LCR", "EPIC", "RRV")
    assert msh[7] == "20240701103000"  # London local time (BST)
    assert (msh[9], msh[11], msh[12]) == ("ACK^A01^ACK", "P", "2.4")
    assert msh[10] and msh[10] != "CTRL-9"  # the ACK's own control id
    assert len(msh) == 13  # no MSH-15/16 in original mode
    assert msa[1:] == ["AA", "CTRL-9"]
    assert "ERR" not in found


def test_an_unnamed_receiver_is_answered_as_carerecord():
    raw = "MSH|^~\\&|WINPATH|RRV LAB|||20240301||ORU^R01|77|T|2.3\rPID|1||123"
    msh = only(ack.acknowledgements(sent(raw), ack.Answer(ack.ACCEPT), now=NOW))["MSH"]
    assert (msh[3], msh[5], msh[6], msh[9], msh[11]) == ("CARERECORD", "WINPATH", "RRV LAB", "ACK^R01", "T")


@pytest.mark.hazard("H-18")
@pytest.mark.parametrize("version", ["2.3", "2.3.1", "2.4"])
def test_ae_up_to_2_4_names_the_field_in_err_1_and_says_why_in_msa_3(version):
    answer = ack.Answer(ack.ERROR, "PID-7 is not a date: 19801301", "PID-7", ack.DATA_TYPE_ERROR)
    found = only(ack.acknowledgements(sent(message(version=version)), answer, now=NOW))
    assert found["MSA"][1:3] == ["AE", "MSG0001"]
    assert found["MSA"][3] == "PID-7 is not a date: 19801301"
    assert found["ERR"][1] == "PID^1^7^102&Data type error&HL70357"


@pytest.mark.hazard("H-18")
@pytest.mark.parametrize("version", ["2.5", "2.5.1", "2.6", "2.8"])
def test_ae_from_2_5_uses_err_2_3_4_and_8(version):
    answer = ack.Answer(ack.ERROR, "Result value missing", "OBX[3]-5", ack.REQUIRED_FIELD_MISSING)
    found = only(ack.acknowledgements(sent(message(version=version)), answer, now=NOW))
    assert len(found["MSA"]) == 3  # no MSA-3 text message
    err = found["ERR"]
    assert err[1] == ""
    assert err[2] == "OBX^3^5"
    assert err[3] == "101^Required field missing^HL70357"
    assert err[4] == "E"
    assert err[8] == "Result value missing"


def test_err_locations_with_repetition_and_component():
    answer = ack.Answer(ack.ERROR, "bad", "PID-3[2].4", ack.TABLE_VALUE_NOT_FOUND)
    assert only(ack.acknowledgements(sent(message(version="2.5")), answer))["ERR"][2] == "PID^1^3^2^4"


@pytest.mark.parametrize(
    ("error_code", "text"),
    [
        (ack.SEGMENT_SEQUENCE, "Segment sequence error"),
        (ack.UNSUPPORTED_MESSAGE_TYPE, "Unsupported message type"),
        (ack.UNSUPPORTED_EVENT, "Unsupported event code"),
        (ack.UNKNOWN_KEY, "Unknown key identifier"),
        (ack.INTERNAL_ERROR, "Application internal error"),
    ],
)
def test_error_codes_are_table_0357s(error_code, text):
    answer = ack.Answer(ack.REJECT, "no", "MSH-9", error_code)
    assert only(ack.acknowledgements(sent(message(version="2.5")), answer))["ERR"][3] == f"{error_code}^{text}^HL70357"


def test_an_error_with_no_code_is_an_internal_error():
    err = only(ack.acknowledgements(sent(message(version="2.5")), ack.Answer(ack.ERROR, "boom")))["ERR"]
    assert err[3].startswith("207^")


def test_the_reason_is_escaped_in_the_ack():
    answer = ack.Answer(ack.ERROR, "A|B^C&D~E\\F\nG", "PID-5", ack.DATA_TYPE_ERROR)
    err = only(ack.acknowledgements(sent(message(version="2.5")), answer))["ERR"]
    assert err[8] == "A\\F\\B\\S\\C\\T\\D\\R\\E\\E\\F\\.br\\G"
    assert "\n" not in ack.acknowledgements(sent(message(version="2.5")), answer)[0]


@pytest.mark.hazard("H-18")
@pytest.mark.parametrize(
    ("accept", "application", "answer", "expected"),
    [
        ("AL", "AL", ack.Answer(ack.ACCEPT), ["CA", "AA"]),
        ("AL", "NE", ack.Answer(ack.ACCEPT), ["CA"]),  # as the UCLH messages ask
        ("NE", "AL", ack.Answer(ack.ACCEPT), ["AA"]),
        ("NE", "NE", ack.Answer(ack.ACCEPT), []),
        ("AL", "ER", ack.Answer(ack.ACCEPT), ["CA"]),
        ("AL", "ER", ack.Answer(ack.ERROR, "bad", "PID-7"), ["CA", "AE"]),
        ("ER", "AL", ack.Answer(ack.ERROR, "bad", "PID-7"), ["AE"]),  # stored fine: no commit ACK on ER
        ("SU", "SU", ack.Answer(ack.ACCEPT), ["CA", "AA"]),
        ("SU", "SU", ack.Answer(ack.ERROR, "bad"), ["CA"]),
        ("AL", "AL", ack.Answer(ack.REJECT, "not taken", "MSH-9", ack.UNSUPPORTED_EVENT, at_commit=True), ["CR"]),
        ("ER", "AL", ack.Answer(ack.REJECT, "not taken", "MSH-9", at_commit=True), ["CR"]),
        ("SU", "AL", ack.Answer(ack.REJECT, "not taken", "MSH-9", at_commit=True), []),
        ("AL", "AL", ack.Answer(ack.ERROR, "not stored", at_commit=True), ["CE"]),
        ("AL", "", ack.Answer(ack.ACCEPT), ["CA"]),  # one field empty in enhanced mode: never
    ],
)
def test_enhanced_mode_sends_what_msh_15_and_16_ask_commit_first(accept, application, answer, expected):
    acks = ack.acknowledgements(sent(message(accept_ack=accept, application_ack=application)), answer, now=NOW)
    assert [segments_of(a)["MSA"][1] for a in acks] == expected
    for text in acks:
        msh = segments_of(text)["MSH"]
        assert (msh[15], msh[16]) == ("NE", "NE")  # no acknowledgement of our acknowledgement
        assert segments_of(text)["MSA"][2] == "MSG0001"
    assert len({segments_of(a)["MSH"][10] for a in acks}) == len(acks)  # each ACK its own control id


def test_a_commit_reject_carries_its_err():
    answer = ack.Answer(ack.REJECT, "SIU^S12 is not accepted", "MSH-9", ack.UNSUPPORTED_MESSAGE_TYPE, at_commit=True)
    (only_ack,) = ack.acknowledgements(sent(message(accept_ack="AL", application_ack="AL", version="2.5")), answer)
    assert segments_of(only_ack)["ERR"][3].startswith("200^")


def test_a_message_with_no_readable_msh_gets_an_ar_with_what_can_be_said():
    (reply,) = ack.acknowledgements(ack.sent_from_text("garbage\rPID|1"), ack.Answer(ack.REJECT, "no MSH", "MSH"))
    found = segments_of(reply)
    assert found["MSA"][1:3] == ["AR", ""]
    assert found["MSH"][3] == "CARERECORD" and found["MSH"][12] == ack.DEFAULT_VERSION
    salvaged = ack.sent_from_text("MSH|^~\\&|LAB|RRV|||2024||ORU^R01|C55|P|2.3\rOBX|broken")
    (reply,) = ack.acknowledgements(salvaged, ack.Answer(ack.ERROR, "bad OBX", "segment 2", ack.SEGMENT_SEQUENCE))
    assert segments_of(reply)["MSA"][1:3] == ["AE", "C55"]
    assert segments_of(reply)["MSH"][5] == "LAB"


def test_every_example_version_gets_a_parseable_ack_naming_its_control_id():
    for path in sorted((FIXTURES / "examples").glob("*.hl7")):
        raw = path.read_text()
        parsed = segments.parse(segments.split(raw)[0])
        header = ack.sent_from_message(parsed)
        acks = ack.acknowledgements(header, ack.Answer(ack.ERROR, "x", "PID-3"))
        assert acks or (header.field(15), header.field(16)) == ("NE", "NE"), path.name
        for reply in acks:
            answer = segments.parse(reply)
            assert segments.text(answer, "MSA.2") == segments.text(parsed, "MSH.10"), path.name
            assert segments.text(answer, "MSH.12") == segments.text(parsed, "MSH.12"), path.name
