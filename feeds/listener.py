"""The MLLP listener (`manage.py hl7_listen`): hospital integration engines connect over TCP (or TLS), send HL7 v2
messages framed by MLLP, and wait for each one's ACK before sending the next.

asyncio with python-hl7's MLLP protocol, reader and writer; each connection is one task, so one connection's slow
or bad input never holds up another. A message is applied off the event loop, in a thread pool (`workers`), by
`feeds.receive.receive`, which stores it before applying it and answers its ACK; Django's database connections are
checked before and after each use (`close_old_connections`), as a request would.

What a connection gets, and why (H-18: nothing acknowledged that was not stored, nothing dropped silently):
- **Idle** is normal: engines keep connections open for hours between messages, so no timeout runs between frames.
- **A frame begun** must end within `HL7_FRAME_TIMEOUT_SECONDS` (a truncated or stalled half-sent frame), else the
  connection is closed; nothing of the partial frame is stored or acknowledged, so the engine sends it again.
- **A frame over `HL7_MAX_MESSAGE_BYTES`** is refused: AR (naming the message when its MSH arrived) and closed,
  since the rest of the frame cannot be told from the next one's start. Not stored: it was never read whole.
- **Bytes that are not MLLP** (no start block before a frame's end): closed. Whitespace between frames is ignored.
- **No configured feed fits** (address, client certificate, MSH-8 secret; `feeds.identify`) or several
  organisations' do: each message answered AR, with no row kept (no organisation to keep it under); the connection
  stays open so the engine's log shows the reason, but until its address, certificate or a message has named a feed
  it is closed after `HL7_FRAME_TIMEOUT_SECONDS` idle. An inactive feed's messages reach receive(), which keeps and
  refuses them (AR).
- **receive() raising** (the message could not be stored: the database is down) → no ACK, connection closed, so
  the engine keeps the message and sends it again; logged.
- SIGTERM / SIGINT: stop accepting, close idle connections, let each in-flight message finish and be answered.
"""

import asyncio
import contextlib
import gc
import hashlib
import logging
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections, connections
from hl7.mllp import HL7StreamProtocol, HL7StreamReader, InvalidBlockError

from . import ack, identify, segments

logger = logging.getLogger(__name__)

HEAD_BYTES = 4096  # what is kept of an oversize frame: enough for its MSH, so its AR can name it
BETWEEN_FRAMES = b" \t\r\n"


class FrameReader(HL7StreamReader):
    """python-hl7's MLLP reader, and two things it cannot say: when a frame has begun (the frame timeout runs from a
    frame's first byte, never while a connection is idle) and how an oversize frame began (for its AR)."""

    head = b""

    async def frame_started(self) -> bool:
        """Wait, for as long as it takes, for the first byte of the next frame (whitespace between frames skipped:
        some engines send CR LF after the trailer); False at the end of the stream."""
        while True:
            kept = self._buffer.lstrip(BETWEEN_FRAMES)
            if len(kept) != len(self._buffer):
                del self._buffer[: len(self._buffer) - len(kept)]
            if self._buffer:
                return True
            if self.exception() is not None:
                raise self.exception()
            if self._eof:
                return False
            await self._wait_for_data("frame_started")

    async def readuntil(self, separator=b"\n"):
        try:
            return await super().readuntil(separator)
        except asyncio.LimitOverrunError:
            self.head = bytes(self._buffer[:HEAD_BYTES])
            raise


def certificate_sha256(writer) -> str | None:
    """The SHA-256 fingerprint of the TLS client certificate the peer presented, or None (no TLS, none sent)."""
    tls = writer.get_extra_info("ssl_object")
    der = tls.getpeercert(binary_form=True) if tls is not None else None
    return hashlib.sha256(der).hexdigest() if der else None


def tls_context(cert: str, key: str | None = None, client_ca: str | None = None) -> ssl.SSLContext:
    """A server context (TLS 1.2 or later). With a client CA, a client certificate it signed is required: the
    fingerprint that names the feed then comes from a certificate the CA vouches for."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def refusal(raw: bytes, reason: str) -> list[str]:
    """The AR (enhanced mode: CR, if asked for) for a message no feed can be named for, or one too large to read:
    nothing is stored, there being no organisation to keep it under, or no whole message."""
    return ack.acknowledgements(
        ack.sent_from_text(segments.decode(raw)), ack.Answer(ack.REJECT, reason, at_commit=True)
    )


class Oversize(Exception):
    """A frame longer than HL7_MAX_MESSAGE_BYTES (python-hl7's reader says so with a ValueError)."""


@dataclass
class Connection:
    peer: str
    state: str = "idle"  # idle (between frames) | reading | applying | writing
    messages: int = 0


class Listener:
    """One MLLP server. `await start()`, then `await stop()` (from a signal handler, or a test's teardown)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 2575,
        *,
        tls: ssl.SSLContext | None = None,
        workers: int = 4,
        frame_timeout: float | None = None,
        max_bytes: int | None = None,
        receive=None,
    ):
        self.host, self.port, self.tls, self.workers = host, port, tls, workers
        self.receive = receive  # feeds.receive.receive unless given (the bench's floor: no database at all)
        self.frame_timeout = frame_timeout or settings.HL7_FRAME_TIMEOUT_SECONDS
        self.max_bytes = max_bytes or settings.HL7_MAX_MESSAGE_BYTES
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hl7-apply")
        self.connections: dict[asyncio.Task, Connection] = {}
        self.server = None
        self.stopping = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        # start_hl7_server with our reader: python-hl7's protocol and writer, its reader told about frames.
        def protocol():
            return HL7StreamProtocol(FrameReader(limit=self.max_bytes, loop=loop), self._connected, loop=loop)

        self.server = await loop.create_server(protocol, self.host, self.port, ssl=self.tls, reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]
        logger.info(
            "HL7 MLLP listener on %s:%s%s (%s workers, frame timeout %ss, at most %s bytes a message)",
            self.host,
            self.port,
            " (TLS)" if self.tls else "",
            self.workers,
            self.frame_timeout,
            self.max_bytes,
        )

    async def stop(self) -> None:
        """Graceful: no new connections; idle ones closed; in-flight messages finish and are answered (every step
        of a connection is bounded: a frame by the frame timeout, a write likewise, applying by the database)."""
        self.stopping = True
        if self.server is not None:
            self.server.close()
        for task, connection in list(self.connections.items()):
            if connection.state == "idle":
                task.cancel()
        if self.connections:
            await asyncio.wait(list(self.connections))
        if self.server is not None:
            await self.server.wait_closed()
        await asyncio.get_running_loop().run_in_executor(None, self._shut_pool)
        logger.info("HL7 MLLP listener on %s:%s stopped", self.host, self.port)

    def _shut_pool(self) -> None:
        """Close each worker thread's database connection (one task per thread, held at a barrier so that every
        thread takes one), then end the pool."""
        barrier = threading.Barrier(self.workers, timeout=5)

        def close():
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
            connections.close_all()

        for future in [self.pool.submit(close) for _ in range(self.workers)]:
            future.result()
        self.pool.shutdown(wait=True)

    # --- one connection ---

    def _connected(self, reader: FrameReader, writer) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        address = writer.get_extra_info("peername") or ("", 0)
        self.connections[task] = Connection(peer=f"{address[0]}:{address[1]}" if address[0] else "")
        task.add_done_callback(self.connections.pop)
        return task

    async def _serve(self, reader: FrameReader, writer) -> None:
        """Read frame, apply, answer, until the peer closes, a frame goes wrong, or the listener stops."""
        loop = asyncio.get_running_loop()
        connection = self.connections[asyncio.current_task()]
        address = (writer.get_extra_info("peername") or ("",))[0]
        try:
            fingerprint = certificate_sha256(writer)
            known = await loop.run_in_executor(self.pool, self._identify, address, fingerprint)
            if not known:
                logger.warning("HL7 connection from %s: no feed is named by its address or certificate", address)
            while not self.stopping:
                connection.state = "idle"
                async with asyncio.timeout(None if known else self.frame_timeout):
                    if not await reader.frame_started():
                        break
                connection.state = "reading"
                try:
                    async with asyncio.timeout(self.frame_timeout):
                        block = await reader.readblock()
                except ValueError:  # python-hl7's reader: the frame exceeds the limit
                    raise Oversize from None
                connection.state = "applying"
                acks, named = await loop.run_in_executor(
                    self.pool, self._apply, block, address, fingerprint, connection.peer
                )
                known = known or named
                connection.state = "writing"
                for text in acks:
                    writer.writeblock(text.encode("utf-8"))
                async with asyncio.timeout(self.frame_timeout):
                    await writer.drain()
                connection.messages += 1
        except TimeoutError:
            what = {"idle": "no message from an unknown peer", "reading": "a frame not completed"}
            logger.warning(
                "HL7 connection %s: %s within %ss: closed",
                connection.peer,
                what.get(connection.state, "ACK not taken"),
                self.frame_timeout,
            )
        except Oversize:
            logger.warning(
                "HL7 connection %s: a frame over %s bytes: refused (AR), closed", connection.peer, self.max_bytes
            )
            await self._refuse_oversize(reader, writer)
        except InvalidBlockError:
            logger.warning("HL7 connection %s: bytes that are not an MLLP frame: closed", connection.peer)
        except asyncio.IncompleteReadError:
            logger.warning("HL7 connection %s: closed by the peer in the middle of a frame", connection.peer)
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            logger.info("HL7 connection %s: %s", connection.peer, exc)
        except asyncio.CancelledError:
            if not self.stopping:
                raise
        except Exception:  # receive() could not store it, or anything else: no ACK, the engine sends it again
            logger.exception("HL7 connection %s: message not acknowledged, connection closed", connection.peer)
        finally:
            logger.info("HL7 connection %s closed after %s messages", connection.peer, connection.messages)
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await writer.wait_closed()

    async def _refuse_oversize(self, reader: FrameReader, writer) -> None:
        """The AR, then the rest of what the peer sends read and dropped until it closes (at most a frame timeout):
        closing with its bytes unread would reset the connection and could lose the AR on the way."""
        head = reader.head.lstrip(BETWEEN_FRAMES).removeprefix(b"\x0b")
        with contextlib.suppress(Exception):
            for text in refusal(head, f"Message larger than {self.max_bytes} bytes: refused."):
                writer.writeblock(text.encode("utf-8"))
            async with asyncio.timeout(self.frame_timeout):
                await writer.drain()
                if writer.can_write_eof():
                    writer.write_eof()
                while await reader.read(65536):
                    pass

    # --- in the worker threads ---

    def _identify(self, address: str, fingerprint: str | None) -> bool:
        """Whether the connection itself (address, certificate) names a feed: then it may stay idle for hours."""
        close_old_connections()
        try:
            feed = identify.feed_for(address, fingerprint)
            return feed is not None and identify.conditions(feed) > 0
        finally:
            close_old_connections()

    def _apply(self, raw: bytes, address: str, fingerprint: str | None, peer: str) -> tuple[list[str], bool]:
        """The ACKs to send for one message (none when enhanced mode asks for none), and whether a feed was named."""
        receive = self.receive
        if receive is None:
            from .receive import receive
        close_old_connections()
        try:
            feed = identify.feed_for(address, fingerprint, raw)
            if feed is None:
                return refusal(raw, "No configured feed accepts messages from this connection."), False
            return acks_of(receive(raw, feed=feed, organisation=feed.organisation, peer=peer)), True
        finally:
            close_old_connections()


def acks_of(reply) -> list[str]:
    """What receive() answered, in order: the ACK (original mode), or the commit ACK then the application ACK
    (enhanced mode), each only if asked for."""
    found = getattr(reply, "acks", None)
    if found is None:
        found = [reply.ack]
    return [text for text in found if text]


# Net container allocations between young-generation collections (CPython's default is 700).
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> tuple[int, ...]:
    """A message allocates tens of thousands of short-lived objects (FHIR models, ORM rows), nearly all freed by
    reference counting at once; at CPython's default threshold the cyclic collector still ran four times a message,
    ~1.7 ms of ~35 (bench.hl7, 2026-12-07). What the process loaded at start (Django, the FHIR model classes) is
    frozen out of the collector's scans, and the young generation is collected every GC_YOUNG_THRESHOLD net
    allocations: cycles are still collected, less often. Returns the thresholds it replaced."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *before[1:])
    return before


def run(listener: Listener) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully (the management command's loop)."""
    import signal

    tune_gc()

    async def main():
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopped.set)
        await listener.start()
        await stopped.wait()
        logger.info("HL7 MLLP listener: stopping (in-flight messages finish)")
        await listener.stop()

    asyncio.run(main())
