"""The listener's tests' engines and listener: a Listener served on a free loopback port from its own event loop in
a thread (as `manage.py hl7_listen` serves it, less the signals), sending engines played by python-hl7's asyncio
MLLP client, misbehaving ones by raw sockets. Shared by test_listener.py and test_fuzz_listener.py."""

import asyncio
import concurrent.futures
import contextlib
import ssl
import threading

from django.db import connection
from hl7.mllp import open_hl7_connection

from feeds.listener import Listener
from tests.feeds import pipeline_helpers

WAIT = 30  # seconds a test waits for an answer before failing (never reached when all is well)
START, END = b"\x0b", b"\x1c\r"


def field(ack: str, segment: str, number: int) -> str:
    """A field of an ACK's segment, numbered as HL7 numbers them (MSH-1 is the separator)."""
    return pipeline_helpers.segments_of(ack)[segment][number]


def run_async(coroutine):
    """asyncio.run in a thread of its own: a Playwright browser test earlier on this worker leaves an event loop
    running in the main thread, where asyncio.run refuses to start (CI runs the browser journeys beside these)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@contextlib.contextmanager
def main_thread_free_of_event_loops():
    """For code that must own the main thread's event loop (the command's loop installs signal handlers, which
    only the main thread may): the loop a Playwright test left marked as running here is set aside meanwhile."""
    left = asyncio.events._get_running_loop()
    asyncio.events._set_running_loop(None)
    try:
        yield
    finally:
        asyncio.events._set_running_loop(left)


def frame(message: str | bytes) -> bytes:
    return START + (message.encode() if isinstance(message, str) else message) + END


@contextlib.contextmanager
def serving(**options):
    """A running Listener (keyword arguments go to it), stopped gracefully on the way out."""
    # SQLite's shared in-memory test database locks whole tables: one applying thread there, two on PostgreSQL.
    options.setdefault("workers", 1 if connection.vendor == "sqlite" else 2)
    server = Listener("127.0.0.1", 0, **options)
    loop = asyncio.new_event_loop()
    started = concurrent.futures.Future()

    def serve():
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # reported to the test
            started.set_exception(exc)
            return
        started.set_result(server)
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=serve, name="hl7-listener", daemon=True)
    thread.start()
    started.result(timeout=WAIT)
    try:
        yield server
    finally:
        if not server.stopping:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=WAIT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=WAIT)


def on(server: Listener, coroutine) -> concurrent.futures.Future:
    """Run a coroutine on the listener's own loop (to stop it while a test's engine is mid-conversation)."""
    return asyncio.run_coroutine_threadsafe(coroutine, server.server.get_loop())


async def close(writer) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        await writer.wait_closed()


async def conversation(port: int, messages, *, acks_each: int = 1, **connect) -> list[list[str]]:
    """One engine: connect, send each message and read its ACK(s) before the next, as original mode does."""
    reader, writer = await open_hl7_connection("127.0.0.1", port, encoding="utf-8", **connect)
    answers = []
    try:
        for message in messages:
            writer.writeblock(message.encode() if isinstance(message, str) else message)
            await writer.drain()
            answers.append([(await asyncio.wait_for(reader.readblock(), WAIT)).decode() for _ in range(acks_each)])
    finally:
        await close(writer)
    return answers


def send(port: int, *messages, acks_each: int = 1, **connect) -> list[str]:
    """The first ACK each message got (or all of them, acks_each > 1: flattened)."""
    answers = run_async(conversation(port, messages, acks_each=acks_each, **connect))
    return [ack for each in answers for ack in each]


async def until_closed(reader) -> bytes:
    """Everything the listener sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), WAIT)


def raw_exchange(port: int, data: bytes) -> bytes:
    """A misbehaving engine: write raw bytes, read until the listener closes the connection."""

    async def go():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(data)
        await writer.drain()
        try:
            return await until_closed(reader)
        finally:
            await close(writer)

    return run_async(go())


def still_answers(port: int) -> None:
    """The listener keeps accepting and answering after whatever came before."""
    (ack,) = send(port, pipeline_helpers.message("STILL-THERE", kind="ADT^A08"))
    assert field(ack, "MSA", 1) == "AA"
    assert field(ack, "MSA", 2) == "STILL-THERE"
