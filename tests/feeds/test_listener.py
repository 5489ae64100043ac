"""The MLLP listener end to end, over real TCP sockets on loopback: a listener started in the test (its own event loop
in a thread, the database shared through `transaction=True`), engines played by python-hl7's asyncio MLLP client,
and bad ones by raw sockets (tests/feeds/mllp_helpers.py). What each connection gets is feeds/listener.py's
docstring; these prove it."""

import asyncio
import contextlib
import datetime
import ssl
import threading
from pathlib import Path

import hl7
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hl7.mllp import open_hl7_connection

from feeds import listener as listener_module
from feeds.listener import Listener, tls_context
from feeds.models import Feed, Message
from patients.models import Appointment, Patient, Result
from tests.feeds import pipeline_helpers
from tests.feeds.mllp_helpers import (
    END,
    WAIT,
    close,
    conversation,
    field,
    frame,
    main_thread_free_of_event_loops,
    on,
    raw_exchange,
    run_async,
    send,
    serving,
    still_answers,
    until_closed,
)

pytestmark = pytest.mark.django_db(transaction=True)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hl7v2"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text().replace("\n", "\r").strip("\r")


@pytest.fixture
def listen():
    """Start a listener on a free loopback port (keyword arguments go to Listener); stopped at the end."""
    with contextlib.ExitStack() as stack:
        yield lambda **options: stack.enter_context(serving(**options))


@pytest.fixture
def feed(other_organisation):
    return Feed.objects.create(
        organisation=other_organisation,
        name="UCLH integration engine",
        allowed_addresses="127.0.0.1\n::1",
        message_types="ADT^A01,ADT^A03,ADT^A08,ORU^R01",
    )


@pytest.fixture
def stub_converter(monkeypatch):
    """The pipeline's stand-in converter (tests/feeds/pipeline_helpers.py) where a test is about the wire."""
    monkeypatch.setattr("feeds.receive.converter", lambda message_type: pipeline_helpers.stub_convert)


# --- messages in, ACKs out ----------------------------------------------------------------------------------------


@pytest.mark.hazard("H-18")
def test_each_message_is_kept_applied_and_acknowledged(listen, feed, stub_converter):
    server = listen()
    first = pipeline_helpers.message("WIRE-1", nhs="9997700015", mrn="77000002")
    second = pipeline_helpers.message("WIRE-2", kind="ADT^A08", nhs="9997700015", mrn="77000002", family="SMITH")
    acks = send(server.port, first, second)
    assert [field(ack, "MSA", 1) for ack in acks] == ["AA", "AA"]
    assert [field(ack, "MSA", 2) for ack in acks] == ["WIRE-1", "WIRE-2"]
    assert field(acks[0], "MSH", 9) == "ACK^A01^ACK"
    assert field(acks[0], "MSH", 5) == "EPIC"  # the sender's application, swapped
    rows = list(Message.objects.order_by("pk"))
    assert [(row.control_id, row.status, row.ack_code) for row in rows] == [
        ("WIRE-1", "applied", "AA"),
        ("WIRE-2", "applied", "AA"),
    ]
    assert rows[0].raw == first and rows[0].feed == feed and rows[0].organisation == feed.organisation
    assert rows[0].peer.startswith("127.0.0.1:")
    assert Patient.objects.get(nhs_number="9997700015").family_name.upper() == "SMITH"


def test_an_admission_and_a_result_by_hospital_number_alone(listen, feed):
    """The real converters: an A01 teaches the hospital number, the ORU^R01 (20 OBX) carrying only that number
    lands on the same patient."""
    server = listen()
    admit, result = fixture("synthetic/wire_adt_a01.hl7"), fixture("synthetic/wire_oru_r01.hl7")
    acks = send(server.port, admit, result)
    assert [field(ack, "MSA", 1) for ack in acks] == ["AA", "AA"], acks
    assert list(Message.objects.order_by("pk").values_list("status", flat=True)) == ["applied", "applied"]
    patient = Patient.objects.get(nhs_number="9997700007")
    assert patient.date_of_birth == datetime.date(1961, 9, 23)
    report = Result.objects.get(patient=patient)
    assert report.observations.count() == 20
    assert Appointment.objects.filter(patient=patient, kind="admission").exists()
    # The same again, nothing changed: acknowledged, nothing new on the record.
    assert [field(ack, "MSA", 1) for ack in send(server.port, admit, result)] == ["AA", "AA"]
    assert Result.objects.get(patient=patient).observations.count() == 20


def test_the_uclh_epic_admission_in_enhanced_mode_gets_its_commit_ack(listen, feed, stub_converter):
    """Adt_generic_A01.txt asks for an accept ACK always (MSH-15 AL) and no application ACK (MSH-16 NE)."""
    server = listen()
    (ack,) = send(server.port, fixture("uclh/Adt_generic_A01.txt"))
    assert field(ack, "MSA", 1) == "CA"
    assert field(ack, "MSA", 2) == "31644"
    assert Message.objects.get().control_id == "31644"


def test_enhanced_mode_commit_then_application_ack_on_the_same_connection(listen, feed, stub_converter):
    server = listen()
    message = pipeline_helpers.message("ENH-1", accept_ack="AL", application_ack="AL")
    commit, application = send(server.port, message, acks_each=2)
    assert (field(commit, "MSA", 1), field(application, "MSA", 1)) == ("CA", "AA")
    assert field(commit, "MSA", 2) == field(application, "MSA", 2) == "ENH-1"


def test_enhanced_mode_asking_for_nothing_gets_nothing_and_the_next_message_is_answered(listen, feed, stub_converter):
    server = listen()
    silent = pipeline_helpers.message("ENH-NE", accept_ack="NE", application_ack="NE")

    async def go():
        reader, writer = await open_hl7_connection("127.0.0.1", server.port)
        writer.writeblock(silent.encode())
        writer.writeblock(pipeline_helpers.message("ORIG-1", kind="ADT^A08").encode())
        await writer.drain()
        ack = (await asyncio.wait_for(reader.readblock(), WAIT)).decode()
        await close(writer)
        return ack

    ack = run_async(go())
    assert field(ack, "MSA", 2) == "ORIG-1"  # the first asked for no ACK, and got none
    assert set(Message.objects.values_list("control_id", flat=True)) == {"ENH-NE", "ORIG-1"}


def test_content_errors_are_answered_by_the_pipeline(listen, feed, stub_converter):
    server = listen()
    no_birth_date = pipeline_helpers.message("BAD-DOB", dob="")
    malformed = pipeline_helpers.message("BAD-SEG", extra="this is no segment")
    unknown_type = pipeline_helpers.message("A60-1", kind="ADT^A60")
    orders = pipeline_helpers.message("ORM-1", kind="ORM^O01")
    acks = send(server.port, no_birth_date, malformed, unknown_type, orders)
    assert [field(ack, "MSA", 1) for ack in acks] == ["AE", "AE", "AR", "AR"]
    assert "PID" in pipeline_helpers.segments_of(acks[0])["ERR"][1]
    statuses = dict(Message.objects.values_list("control_id", "status"))
    assert statuses == {"BAD-DOB": "invalid", "BAD-SEG": "invalid", "A60-1": "refused", "ORM-1": "refused"}


def test_wrong_encoding_characters_are_refused(listen, feed):
    server = listen()
    (ack,) = send(server.port, "MSH|^~|EPIC|RRV|CARERECORD|LCR|20240301101500||ADT^A01|ENC-1|P|2.4\rPID|1")
    assert field(ack, "MSA", 1) in ("AR", "AE")
    assert Message.objects.get().status == "invalid"


# --- connections --------------------------------------------------------------------------------------------------


@pytest.mark.hazard("H-13")
def test_two_connections_at_once_one_stalled_mid_frame(listen, feed, stub_converter):
    """One engine's half-sent frame holds up no one else; when it finishes, it is answered too."""
    server = listen()
    slow = frame(pipeline_helpers.message("SLOW-1", kind="ADT^A08"))

    async def go():
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(slow[:40])
        await writer.drain()
        others = await asyncio.gather(
            conversation(server.port, [pipeline_helpers.message(f"FAST-{n}", kind="ADT^A08") for n in range(3)]),
            conversation(server.port, [pipeline_helpers.message(f"ALSO-{n}", kind="ADT^A08") for n in range(3)]),
        )
        writer.write(slow[40:])
        await writer.drain()
        block = await asyncio.wait_for(reader.readuntil(END), WAIT)
        await close(writer)
        return others, block.decode()

    others, slow_ack = run_async(go())
    assert [field(ack[0], "MSA", 2) for ack in others[0]] == ["FAST-0", "FAST-1", "FAST-2"]
    assert [field(ack[0], "MSA", 2) for ack in others[1]] == ["ALSO-0", "ALSO-1", "ALSO-2"]
    assert field(slow_ack.strip("\x0b\x1c\r"), "MSA", 2) == "SLOW-1"
    assert Message.objects.count() == 7


@pytest.mark.hazard("H-18")
def test_a_stalled_frame_is_closed_after_the_timeout_and_nothing_of_it_kept(listen, feed, stub_converter):
    server = listen(frame_timeout=1)

    async def go():
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(frame(pipeline_helpers.message("STALLED", kind="ADT^A08"))[:60])
        await writer.drain()
        meanwhile = await conversation(server.port, [pipeline_helpers.message("MEANWHILE", kind="ADT^A08")])
        closed_with = await until_closed(reader)
        await close(writer)
        return meanwhile, closed_with

    meanwhile, closed_with = run_async(go())
    assert field(meanwhile[0][0], "MSA", 1) == "AA"
    assert closed_with == b""  # no ACK: the engine still holds the message and sends it again
    assert list(Message.objects.values_list("control_id", flat=True)) == ["MEANWHILE"]
    still_answers(server.port)


def test_a_connection_idle_between_messages_stays_open(listen, feed, stub_converter):
    """Engines keep connections open for hours: idle for longer than the frame timeout is not an error."""
    server = listen(frame_timeout=0.5)

    async def go():
        reader, writer = await open_hl7_connection("127.0.0.1", server.port)
        writer.writeblock(pipeline_helpers.message("BEFORE", kind="ADT^A08").encode())
        await writer.drain()
        first = await asyncio.wait_for(reader.readblock(), WAIT)
        await asyncio.sleep(2)  # four frame timeouts with nothing sent
        writer.writeblock(pipeline_helpers.message("AFTER", kind="ADT^A08").encode())
        await writer.drain()
        second = await asyncio.wait_for(reader.readblock(), WAIT)
        await close(writer)
        return first.decode(), second.decode()

    first, second = run_async(go())
    assert (field(first, "MSA", 2), field(second, "MSA", 2)) == ("BEFORE", "AFTER")


def test_line_breaks_between_frames_are_ignored(listen, feed, stub_converter):
    server = listen(frame_timeout=1)

    async def go():
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(frame(pipeline_helpers.message("LF-1", kind="ADT^A08")) + b"\r\n")
        writer.write(b"\n" + frame(pipeline_helpers.message("LF-2", kind="ADT^A08")) + b"\n")
        await writer.drain()
        acks = [await asyncio.wait_for(reader.readuntil(END), WAIT) for _ in range(2)]
        await asyncio.sleep(1.5)  # the trailing newline alone is no frame begun: not closed for it
        writer.write(frame(pipeline_helpers.message("LF-3", kind="ADT^A08")))
        await writer.drain()
        acks.append(await asyncio.wait_for(reader.readuntil(END), WAIT))
        await close(writer)
        return [ack.decode().strip("\x0b\x1c\r") for ack in acks]

    assert [field(ack, "MSA", 2) for ack in run_async(go())] == ["LF-1", "LF-2", "LF-3"]


@pytest.mark.hazard("H-18")
def test_an_oversize_frame_is_refused_and_the_connection_closed(listen, feed, stub_converter):
    server = listen(max_bytes=20_000)
    huge = pipeline_helpers.message("HUGE-1", kind="ORU^R01", extra="NTE|1||" + "x" * 50_000)
    answered = raw_exchange(server.port, frame(huge)).decode()
    ack = answered.strip("\x0b\x1c\r")
    assert (field(ack, "MSA", 1), field(ack, "MSA", 2)) == ("AR", "HUGE-1")
    assert "larger than 20000 bytes" in ack
    assert not Message.objects.exists()  # never read whole, so never kept: the engine holds it, and its AR says why
    still_answers(server.port)


@pytest.mark.hazard("H-13")
def test_garbage_bytes_close_the_connection_and_the_listener_keeps_answering(listen, feed, stub_converter):
    server = listen(frame_timeout=1)
    for garbage in [
        b"GET / HTTP/1.1\r\nHost: carerecord\r\n\r\n",  # no frame end: closed by the frame timeout
        b"hello there\x1c\r",  # a frame end with no start
        b"\x00\xff\xfe" * 100 + b"\x1c\r",
        b"\x0b",  # a start block, then nothing
        b"\x1c\r\x1c\r",
    ]:
        assert raw_exchange(server.port, garbage) == b"", garbage
    assert not Message.objects.exists()
    still_answers(server.port)


def test_a_frame_cut_off_by_the_peer_leaves_nothing(listen, feed, stub_converter):
    server = listen()

    async def go():
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(frame(pipeline_helpers.message("CUT", kind="ADT^A08"))[:-30])
        await writer.drain()
        await close(writer)
        await writer.wait_closed()

    run_async(go())
    still_answers(server.port)
    assert list(Message.objects.values_list("control_id", flat=True)) == ["STILL-THERE"]


@pytest.mark.hazard("H-17")
def test_an_unknown_peer_is_refused_and_nothing_kept(listen, feed):
    feed.allowed_addresses = "10.9.9.9"
    feed.save()
    server = listen(frame_timeout=1)

    async def go():
        reader, writer = await open_hl7_connection("127.0.0.1", server.port)
        writer.writeblock(pipeline_helpers.message("WHO-1", kind="ADT^A08").encode())
        await writer.drain()
        ack = (await asyncio.wait_for(reader.readblock(), WAIT)).decode()
        closed_with = await until_closed(reader)  # idle, and unknown: not kept open for hours
        await close(writer)
        return ack, closed_with

    ack, closed_with = run_async(go())
    assert (field(ack, "MSA", 1), field(ack, "MSA", 2)) == ("AR", "WHO-1")
    assert "No configured feed" in ack
    assert closed_with == b""
    assert not Message.objects.exists()


def test_an_inactive_feed_is_refused_and_its_messages_kept(listen, feed):
    feed.active = False
    feed.save()
    server = listen()
    (ack,) = send(server.port, pipeline_helpers.message("OFF-1", kind="ADT^A08"))
    assert field(ack, "MSA", 1) == "AR"
    row = Message.objects.get()
    assert (row.status, row.feed) == ("refused", feed)


@pytest.mark.hazard("H-18")
def test_a_message_that_could_not_be_taken_in_is_not_acknowledged(listen, feed, stub_converter):
    """receive() raising (it cannot store the message): no ACK at all, the connection closed, so the engine keeps
    the message and sends it again."""

    def broken(raw, **kwargs):
        raise RuntimeError("database unavailable")

    server = listen(receive=broken)

    async def go():
        reader, writer = await open_hl7_connection("127.0.0.1", server.port)
        writer.writeblock(pipeline_helpers.message("LOST?", kind="ADT^A08").encode())
        await writer.drain()
        closed_with = await until_closed(reader)
        await close(writer)
        return closed_with

    assert run_async(go()) == b""
    server.receive = None
    still_answers(server.port)


@pytest.mark.hazard("H-18")
def test_stopping_finishes_the_message_in_flight(listen, feed, stub_converter):
    """SIGTERM's path: no new connections, the message being applied is finished and answered, then closed."""
    applying, release = threading.Event(), threading.Event()

    def slow_receive(raw, **kwargs):
        from feeds.receive import receive

        applying.set()
        release.wait(WAIT)
        return receive(raw, **kwargs)

    server = listen(receive=slow_receive)

    async def go():
        reader, writer = await open_hl7_connection("127.0.0.1", server.port)
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.writeblock(pipeline_helpers.message("IN-FLIGHT", kind="ADT^A08").encode())
        await writer.drain()
        await asyncio.get_running_loop().run_in_executor(None, applying.wait, WAIT)
        stopped = on(server, server.stop())
        idle_closed = await until_closed(idle_reader)  # an idle connection is closed at once
        await close(idle_writer)
        release.set()
        ack = (await asyncio.wait_for(reader.readblock(), WAIT)).decode()
        closed_with = await until_closed(reader)
        await close(writer)
        await asyncio.wrap_future(stopped)
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", server.port)
        return idle_closed, ack, closed_with

    idle_closed, ack, closed_with = run_async(go())
    assert idle_closed == b"" and closed_with == b""
    assert field(ack, "MSA", 2) == "IN-FLIGHT"
    assert Message.objects.get().status == "applied"


# --- TLS ----------------------------------------------------------------------------------------------------------


def _certificates(tmp_path):
    """A CA, the listener's certificate for 127.0.0.1 and an engine's client certificate, all signed by the CA."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def issue(name, issuer_key=None, issuer=None, *, ca=False, server=False):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer or subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
            )
        certificate = builder.sign(issuer_key or key, hashes.SHA256())
        return key, certificate

    def write(name, key, certificate):
        (tmp_path / f"{name}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (tmp_path / f"{name}.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return certificate.fingerprint(hashes.SHA256()).hex()

    ca_key, ca = issue("carerecord test CA", ca=True)
    write("ca", ca_key, ca)
    write("server", *issue("127.0.0.1", ca_key, ca.subject, server=True))
    return write("engine", *issue("UCLH Rhapsody", ca_key, ca.subject)), tmp_path


@pytest.mark.hazard("H-17")
def test_tls_with_a_client_certificate_names_the_feed(listen, feed, stub_converter, tmp_path):
    fingerprint, path = _certificates(tmp_path)
    feed.allowed_addresses, feed.client_certificate_sha256 = "", fingerprint
    feed.save()
    server = listen(tls=tls_context(str(path / "server.pem"), str(path / "server.key"), str(path / "ca.pem")))
    client = ssl.create_default_context(cafile=str(path / "ca.pem"))
    client.load_cert_chain(str(path / "engine.pem"), str(path / "engine.key"))
    (ack,) = send(server.port, pipeline_helpers.message("TLS-1", kind="ADT^A08"), ssl=client)
    assert field(ack, "MSA", 1) == "AA"
    assert Message.objects.get().feed == feed

    anonymous = ssl.create_default_context(cafile=str(path / "ca.pem"))
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
        send(server.port, pipeline_helpers.message("TLS-2", kind="ADT^A08"), ssl=anonymous)
    assert Message.objects.count() == 1


# --- the command --------------------------------------------------------------------------------------------------


def test_the_command_builds_the_listener_it_is_asked_for(monkeypatch, tmp_path):
    built = []
    monkeypatch.setattr("feeds.management.commands.hl7_listen.run", built.append)
    call_command("hl7_listen", "--host", "0.0.0.0", "--port", "3575", "--workers", "3")  # noqa: S104
    (server,) = built
    assert (server.host, server.port, server.workers, server.tls) == ("0.0.0.0", 3575, 3, None)  # noqa: S104
    with pytest.raises(CommandError, match="need --tls-cert"):
        call_command("hl7_listen", "--tls-key", "key.pem")
    with pytest.raises(CommandError, match="TLS"):
        call_command("hl7_listen", "--tls-cert", str(tmp_path / "missing.pem"))
    with pytest.raises(CommandError, match="workers"):
        call_command("hl7_listen", "--workers", "0")


def test_run_serves_until_interrupted_then_stops(feed, stub_converter):
    """The command's loop: SIGINT (as SIGTERM) stops it gracefully."""
    import os
    import signal

    server = Listener("127.0.0.1", 0, workers=1)
    answers = []

    def engine():
        for _ in range(200):
            if server.server is not None and server.server.is_serving():
                break
            threading.Event().wait(0.05)
        answers.extend(send(server.port, pipeline_helpers.message("RUN-1", kind="ADT^A08")))
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=engine)
    thread.start()
    with main_thread_free_of_event_loops():
        listener_module.run(server)
    thread.join(WAIT)
    assert field(answers[0], "MSA", 2) == "RUN-1"
    assert server.stopping and not server.server.is_serving()


def test_hl7_parse_of_the_ack_round_trips(listen, feed, stub_converter):
    """What the listener writes is an HL7 message python-hl7 reads back (an engine's own parser)."""
    server = listen()
    (ack,) = send(server.port, pipeline_helpers.message("PARSE-1", kind="ADT^A08"))
    parsed = hl7.parse(ack)
    assert str(parsed.segment("MSA")[1]) == "AA"


def test_the_listener_collects_cycles_less_often_and_never_scans_what_it_loaded_at_start():
    """hl7_listen's process (tune_gc, called by run): the young generation collected every GC_YOUNG_THRESHOLD
    allocations instead of CPython's 700, what was loaded frozen out of the scans; the older thresholds kept."""
    import gc

    before = gc.get_threshold()
    try:
        assert listener_module.tune_gc() == before
        assert gc.get_threshold() == (listener_module.GC_YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
