"""Property-based fuzzing of the MLLP listener (Hypothesis), over a real socket with the real pipeline and converters:
whatever a sending engine puts in a frame — random segments and fields, random encoding characters and separators,
escape sequences, NUL, line breaks, bytes that are no text, MSH-15/16 asking for any acknowledgement — each frame
gets only well-formed ACKs (MSA-1 AA/AE/AR, or CA/CE/CR in enhanced mode) and the message sent after it on the
same connection is answered; the connection is closed only when the frame's own bytes break MLLP framing (an
end-block inside it), and even then the listener answers the next connection.

Bounded as tests/test_fuzz.py is (profile `ci`, 200 examples, on the PostgreSQL run; HYPOTHESIS_PROFILE=dev for
25; `fuzz` for FUZZ_EXAMPLES), and skipped on SQLite, whose shared in-memory test database serialises everything.
"""

import asyncio
import os
import string

import hl7
import pytest
from hl7.mllp import open_hl7_connection
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from feeds.models import Feed
from tests.feeds import pipeline_helpers
from tests.feeds.mllp_helpers import WAIT, close, frame, run_async, serving, still_answers

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    "database": None,
    "print_blob": True,
}
settings.register_profile("ci", max_examples=200, derandomize=True, **_COMMON)
settings.register_profile("fuzz", max_examples=int(os.environ.get("FUZZ_EXAMPLES") or 5000), **_COMMON)
settings.register_profile("dev", max_examples=25, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

pytestmark = [
    pytest.mark.fuzz,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
        reason="fuzzing runs on the PostgreSQL run only (as tests/test_fuzz.py); `make fuzz` runs it longer",
    ),
]

CODES = {"AA", "AE", "AR", "CA", "CE", "CR"}
TYPES = ["ADT^A01", "ADT^A03", "ADT^A08", "ADT^A40", "ADT^A60", "ORU^R01", "ORM^O01", "ACK", "", "ADT", "^", "QRY^A19"]
NAMES = ["PID", "PV1", "PV2", "PD1", "EVN", "OBR", "OBX", "NTE", "ORC", "MRG", "NK1", "ZUK", "MSH", "ERR", "MSA"]
ACK_MODES = ["", "", "", "AL", "NE", "ER", "SU", "XX"]
PROBE = pipeline_helpers.message("PROBE-Q7Z", kind="ADT^A08")  # a good message: kept and ignored, AA
PROBE_ACK = b"\rMSA|AA|PROBE-Q7Z"

# Text as a sender might put it in a field: anything but surrogates, with HL7's own characters weighted up.
_text = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_categories=("Cs",)),
        st.sampled_from("|^~\\&#\r\n\x00\x0b\x1c .-/"),
        st.sampled_from(string.ascii_uppercase + string.digits),
    ),
    max_size=40,
)
_hl7ish = st.one_of(
    _text,
    st.sampled_from(['""', "\\.br\\", "\\X0D\\", "\\F\\", "\\E\\", "\\Xzz\\", "9434765919^^^NHS^NH", "19800101"]),
    st.sampled_from(["20240301101500", "2024", "20241301", "99999999999999", "20240301101500+0100", "-1"]),
)


@st.composite
def messages(draw) -> bytes:
    """An HL7-like message: an MSH (sometimes with broken separators) and random segments of random fields."""
    separator = draw(st.sampled_from("|||||#!*") | st.text(min_size=1, max_size=1))
    encoding = draw(st.sampled_from(["^~\\&"] * 4 + ["^~\\&#", "^~&", "", "^^\\&", "ab12", "^~\\&|"]) | _text)
    header = [
        "MSH" if draw(st.integers(0, 9)) else draw(st.sampled_from(["MSA", "msh", "", "FHS", "BHS", " MSH"])),
        encoding,
        draw(st.sampled_from(["EPIC", "WINPATH", ""]) | _hl7ish),
        draw(st.sampled_from(["UCLH", ""]) | _hl7ish),
        "CARERECORD",
        "LCR",
        draw(st.sampled_from(["20240301101500", ""]) | _hl7ish),
        draw(st.sampled_from(["", ""]) | _hl7ish),
        draw(st.sampled_from(TYPES) | _hl7ish),
        draw(st.sampled_from(["FUZZ-1", ""]) | _hl7ish),
        draw(st.sampled_from(["P", "T", ""])),
        draw(st.sampled_from(["2.4", "2.3", "2.5.1", "2.8", "", "3.0", "2.x"])),
        "",
        "",
        draw(st.sampled_from(ACK_MODES)),
        draw(st.sampled_from(ACK_MODES)),
    ]
    header = header[: draw(st.integers(2, len(header)))]
    lines = [header[0] + separator + separator.join(header[1:])]
    for _ in range(draw(st.integers(0, 6))):
        name = draw(st.sampled_from(NAMES) | st.text(max_size=4))
        fields = draw(st.lists(_hl7ish, max_size=12))
        lines.append(separator.join([name, *fields]))
    terminator = draw(st.sampled_from(["\r", "\r", "\n", "\r\n"]))
    text = terminator.join(lines) + draw(st.sampled_from(["", terminator]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "cp1252", "latin-1"]))
    return text.encode(encoding, errors="replace")


# Values inside a well-formed message: plain text, components and repetitions, HL7's escapes and nulls, and the
# values the converters read (NHS numbers valid and not, dates at every precision and none, numbers, codes).
_plain = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)
_value = st.one_of(
    _plain,
    st.lists(_plain, min_size=2, max_size=4).map("^".join),
    st.lists(_plain, min_size=2, max_size=3).map("~".join),
    st.sampled_from(['""', "\\.br\\", "\\F\\", "\\Xzz\\", "\\H\\bold\\N\\", "&&", "^^^^"]),
    st.sampled_from(["9434765919", "9434765918", "999999999", "9999999999", "0000000000"]).map(
        lambda nhs: f"{nhs}^^^NHS^NH~77000009^^^UCLH^MR"
    ),
    st.sampled_from(["19800101", "1980", "198013", "20240230", "20240301101500", "20240301101500.1234+0000", "x"]),
    st.sampled_from(["NM", "ST", "TX", "FT", "CE", "CWE", "SN", "ED", "H", "F", "C", "X", "D"]),
    st.sampled_from(["7.2", "<5", ">90", "-0", "1e400", "NaN", "3-7", "0.0001", "12345678901234567890"]),
)
_nhs = st.sampled_from(["9434765919", "9434765918", "999999999", "9999999999", "0000000000", ""])
_dob = st.sampled_from(["19800101", "1980", "198013", "20240230", "19800101101500", "21000101", "", '""'])
_SEGMENTS = {
    "EVN": 7,
    "PID": 30,
    "PD1": 4,
    "PV1": 45,
    "MRG": 7,
    "ORC": 12,
    "OBR": 26,
    "OBX": 15,
    "NTE": 4,
    "ZUK": 3,
}


@st.composite
def well_formed_messages(draw) -> bytes:
    """A message python-hl7 reads, of a type the converters take, with fuzzed values in the segments they read."""
    kind = draw(st.sampled_from(["ADT^A01", "ADT^A03", "ADT^A08", "ADT^A40", "ORU^R01", "ORU^R01", "ADT^A60"]))
    modes = draw(st.sampled_from(["", "", "", "|||AL|NE", "|||AL|AL", "|||NE|ER", "|||ER|SU"]))
    lines = [f"MSH|^~\\&|EPIC|UCLH|CARERECORD|LCR|20240301101500||{kind}|FUZZ-2|P|2.4{modes}"]
    if draw(st.booleans()):  # a PID the matching reads: identifiers, name, date of birth, sex, death
        identifiers = f"{draw(_nhs)}^^^NHS^{draw(st.sampled_from(['NH', 'HN', 'MR']))}~77000009^^^UCLH^MR"
        name, sex, died = draw(_value), draw(st.sampled_from("MFUOX")), draw(_dob)
        lines += ["EVN|A01|20240301101500", f"PID|1||{identifiers}||{name}||{draw(_dob)}|{sex}" + "|" * 21 + died]
    for name in draw(st.lists(st.sampled_from(sorted(_SEGMENTS)), max_size=8)):
        values = draw(st.lists(_value, max_size=_SEGMENTS[name]))
        lines.append("|".join([name, *values]))
    return "\r".join(lines).encode(draw(st.sampled_from(["utf-8", "cp1252"])), errors="replace")


frames = st.one_of(well_formed_messages(), well_formed_messages(), messages(), st.binary(max_size=300))


def well_formed(ack: bytes) -> str:
    """An ACK python-hl7 reads back, with its MSA-1 one of HL7 table 0008's codes; its MSA-1."""
    parsed = hl7.parse(ack.decode("utf-8"))
    assert str(parsed[0][0]) == "MSH", ack
    code = str(parsed.segment("MSA")[1])
    assert code in CODES, ack
    return code


async def exchange(port: int, content: bytes) -> tuple[list[bytes], bool]:
    """The fuzzed frame, then a good message on the same connection: the ACKs before the probe's, and whether the
    probe was answered (False: the connection closed first)."""
    reader, writer = await open_hl7_connection("127.0.0.1", port)
    acks = []
    try:
        writer.write(frame(content) + frame(PROBE))
        await writer.drain()
        while True:
            try:
                block = await asyncio.wait_for(reader.readblock(), WAIT)
            except (asyncio.IncompleteReadError, ConnectionError):
                return acks, False
            if PROBE_ACK in block:
                return acks, True
            acks.append(block)
    finally:
        await close(writer)


@pytest.fixture
def fuzz_feed(other_organisation):
    """The converters' types applied for real; anything else kept and ignored (so the probe, an A08, is AA)."""
    return Feed.objects.create(
        organisation=other_organisation,
        name="fuzzing engine",
        allowed_addresses="127.0.0.1",
        message_types="ADT^A01,ADT^A03,ADT^A40,ORU^R01",
        unaccepted=Feed.Unaccepted.IGNORE,
    )


@pytest.mark.hazard("H-13")
@pytest.mark.hazard("H-18")
def test_fuzz_every_frame_is_answered_or_the_connection_closed_for_framing(fuzz_feed):
    with serving(frame_timeout=5) as server:

        @given(content=frames)
        @example(content=b"MSH|^~\\&||EPIC|UCLH|CARERECORD|LCR|20240301101500|0")  # MSH-9 with no event component
        def check(content):
            acks, answered = run_async(exchange(server.port, content))
            codes = [well_formed(ack) for ack in acks]
            event(f"answered {'/'.join(codes) or 'nothing'}")
            assert len(acks) <= 2  # a commit ACK and an application ACK at most
            if b"\x1c\r" in content:  # the frame ended early: what followed is no frame, closing is right
                event("framing broken by the content")
            else:
                assert answered, (content, acks)
                # No ACK only when MSH-15/16 asked for none (NE), or only on error (ER) or success (SU).
                assert codes or any(mode in content for mode in (b"NE", b"ER", b"SU")), content
            if not answered:
                still_answers(server.port)

        check()
        still_answers(server.port)
