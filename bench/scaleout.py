"""Two app instances behind HAProxy, both through PgBouncer (issue 20), for `make loadtest LOADTEST_TOPOLOGY=two`.

- PgBouncer (Debian's package) in transaction pooling mode on a spare loopback port, in front of the cluster the
  bench database lives on: every app process connects to it, it keeps a small pool of server connections. The
  app is told (`DATABASE_POOLER=pgbouncer`, carerecord/settings.py) so it uses no server-side cursors and no
  prepared statements — PgBouncer 1.18 hands each transaction to any server connection, and neither survives
  that — and keeps its connections to PgBouncer, which are cheap.
- Two gunicorn instances (each half the workers one instance would have), each its own process group.
- HAProxy (Debian's package) on a spare port, round robin with no stickiness, so consecutive requests of one
  clinician land on either instance; it appends the client's address to X-Forwarded-For (the app trusts one
  proxy: BEHIND_PROXY, TRUSTED_PROXY_COUNT=1), so sign-in rate limits still count each desk's address. Sessions
  are cached_db (Redis in front, PostgreSQL behind) and rate limits live in Redis: nothing depends on which
  instance answered before.

Everything runs as the postgres user when started as root (PgBouncer refuses root), in a temporary folder, and is
stopped here.
"""

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from .config import database_url
from .loadtest import start_gunicorn, stop
from .ports import free_port, wait_for_port


def _as_postgres(command: list) -> list:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def start_pgbouncer(folder: Path, scale, port: int, pool_size: int) -> subprocess.Popen:
    server = urlsplit(database_url(scale))
    ini = folder / "pgbouncer.ini"
    users = folder / "userlist.txt"
    users.write_text('"root" ""\n')
    ini.write_text(
        "[databases]\n"
        f"* = host={server.hostname} port={server.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {users}\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {pool_size}\nmax_client_conn = 1000\n"
        "server_reset_query =\nignore_startup_parameters = extra_float_digits,options\n"
        # After PostgreSQL restarts, try again within a second (the default waits 15 s after a failed login,
        # so every request failed for 15 s after the database was back).
        "server_login_retry = 1\n"
        f"logfile = {folder / 'pgbouncer.log'}\n"
    )
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        for path in (ini, users):
            shutil.chown(path, "postgres")
    process = subprocess.Popen(  # noqa: S603 - Debian's pgbouncer
        _as_postgres(["pgbouncer", str(ini)]), start_new_session=True
    )
    wait_for_port(port, process, "pgbouncer", 30)
    return process


def start_haproxy(folder: Path, port: int, backends: list[int]) -> subprocess.Popen:
    config = folder / "haproxy.cfg"
    servers = "\n".join(
        f"    server app{n} 127.0.0.1:{backend} check inter 2s" for n, backend in enumerate(backends, 1)
    )
    config.write_text(
        "global\n    maxconn 2000\n"
        "defaults\n    mode http\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n"
        "    option http-keep-alive\n"
        f"frontend carerecord\n    bind 127.0.0.1:{port}\n    option forwardfor\n    default_backend apps\n"
        "backend apps\n    balance roundrobin\n    option httpchk GET /healthz\n"
        "    http-check send hdr Host 127.0.0.1\n"
        f"{servers}\n"
    )
    process = subprocess.Popen(["haproxy", "-db", "-f", str(config)], start_new_session=True)  # noqa: S603, S607
    wait_for_port(port, process, "haproxy", 30)
    return process


@contextlib.contextmanager
def two_instances(scale, workers: int):
    """PgBouncer, two gunicorns through it and HAProxy in front: yields HAProxy's base URL."""

    missing = [tool for tool in ("pgbouncer", "haproxy") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(
            f"LOADTEST_TOPOLOGY=two needs Debian's {' and '.join(missing)}: apt-get install {' '.join(missing)}"
        )
    folder = Path(tempfile.mkdtemp(prefix="carerecord-scaleout-"))
    started = []
    try:
        bouncer_port = free_port()
        started.append(start_pgbouncer(folder, scale, bouncer_port, pool_size=max(workers, 4)))
        database = urlsplit(database_url(scale)).path.lstrip("/")
        through_bouncer = {
            "DATABASE_URL": f"postgres://root@127.0.0.1:{bouncer_port}/{database}",
            "DATABASE_POOLER": "pgbouncer",
            "BEHIND_PROXY": "1",
            "TRUSTED_PROXY_COUNT": "1",
            # One deployment: both instances sign sessions and CSRF tokens with the same key.
            "SECRET_KEY": os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(50),
        }
        backends = []
        for _ in range(2):
            port = free_port()
            started.append(start_gunicorn(scale, port, max(workers // 2, 1), extra_env=through_bouncer))
            backends.append(port)
        front = free_port()
        started.append(start_haproxy(folder, front, backends))
        yield f"http://127.0.0.1:{front}"
    finally:
        for process in reversed(started):
            stop(process)
        shutil.rmtree(folder, ignore_errors=True)
