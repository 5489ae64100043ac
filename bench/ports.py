"""Loopback ports for what the benches start (listeners, gunicorn, PgBouncer, HAProxy, drill clusters)."""

import contextlib
import socket
import time


def free_port() -> int:
    """A port nothing listens on now (the kernel's choice), for a server about to start on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process, what: str, seconds: float = 120) -> None:
    """Until `process` listens on 127.0.0.1:`port`; RuntimeError if it exits first or takes over `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} on port {port} exited ({process.returncode})")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} on port {port} did not start")
