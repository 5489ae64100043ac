"""`make replica` / `make replica-stop`: a streaming hot standby of the local PostgreSQL cluster, for the replica
tests and the bench (issue 20; carerecord/replicas.py).

`start` takes an online base backup of the cluster at BENCH_PG (postgres://root@127.0.0.1:5432) with Debian's
`pg_basebackup` (WAL streamed, standby configuration written), gives it a configuration of its own (the port
REPLICA_PORT, default 5433, its own socket folder, hot standby with feedback) and starts it as a second cluster
in REPLICA_DIR (/var/tmp/carerecord-replica), then waits until it has replayed the primary's current position.
It prints the replica's address for DATABASE_REPLICA_URLS. A running replica is reused. The primary must accept
replication connections from loopback: when its pg_hba.conf has no such line, `start` adds one (trust, from
127.0.0.1 only, as its other lines on these machines) and reloads it, and says so. No replication slot: a
stopped replica costs the primary nothing, and one left behind simply stops being usable (the router checks).

`stop` stops the replica and removes its folder.
"""

import os
import shutil
import sys
import time
from pathlib import Path

from .clusters import Cluster, pg_bin, run
from .config import server_url

FOLDER = Path(os.environ.get("REPLICA_DIR", "/var/tmp/carerecord-replica"))  # noqa: S108 - a cluster folder
PORT = int(os.environ.get("REPLICA_PORT", "5433"))
HBA_LINE = "host    replication     all             127.0.0.1/32            trust"
# A hot standby refuses to start with fewer of these than its primary has.
MATCH_PRIMARY = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)


def primary_sql(query: str, params=None):
    import psycopg

    with psycopg.connect(f"{server_url()}/postgres", autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def allow_replication() -> None:
    if primary_sql("SELECT count(*) FROM pg_hba_file_rules WHERE 'replication' = ANY(database)")[0][0]:
        return
    [(hba_file,)] = primary_sql("SHOW hba_file")
    with open(hba_file, "a") as hba:
        hba.write(
            f"\n# carerecord's make replica: a streaming standby on this machine (bench/replica.py)\n{HBA_LINE}\n"
        )
    primary_sql("SELECT pg_reload_conf()")
    print(f"added to {hba_file}: {HBA_LINE}", flush=True)


def replica() -> Cluster:
    return Cluster(FOLDER / "data", PORT)


def running(cluster: Cluster) -> bool:
    try:
        return bool(cluster.sql("SELECT pg_is_in_recovery()")[0][0])
    except Exception:  # not up, whatever the reason
        return False


def wait_caught_up(cluster: Cluster, seconds: float = 120) -> None:
    [(position,)] = primary_sql("SELECT pg_current_wal_lsn()::text")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cluster.sql("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", params=[position])[0][0]:
            return
        time.sleep(0.2)
    raise SystemExit(f"the replica did not reach the primary's position {position} within {seconds:.0f} s")


def start() -> None:
    cluster = replica()
    if running(cluster):
        print(f"replica already running: {cluster.url('')}", flush=True)
        return
    stop(quiet=True)
    allow_replication()
    sockets = FOLDER / "sockets"
    sockets.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:  # the server runs as postgres
        for path in (FOLDER, sockets):
            shutil.chown(path, "postgres")
    began = time.perf_counter()
    primary = server_url().removeprefix("postgres://")
    user, _, address = primary.partition("@")
    host, _, port = address.partition(":")
    run(
        [
            pg_bin() / "pg_basebackup",
            "-h",
            host,
            "-p",
            port or "5432",
            "-U",
            user,
            "-D",
            cluster.data,
            "-X",
            "stream",
            "-R",
            "-c",
            "fast",
        ]
    )
    copied = time.perf_counter() - began
    matched = {name: primary_sql(f"SHOW {name}")[0][0] for name in MATCH_PRIMARY}
    (cluster.data / "postgresql.conf").write_text(
        "".join(f"{name} = {value}\n" for name, value in matched.items())
        + f"port = {PORT}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{sockets}'\n"
        "hot_standby = on\nhot_standby_feedback = on\nmax_standby_streaming_delay = 30s\n"
        "shared_buffers = 128MB\nfsync = on\n"
    )
    (cluster.data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    (cluster.data / "pg_ident.conf").write_text("")
    if os.geteuid() == 0:
        for path in (cluster.data / "postgresql.conf", cluster.data / "pg_hba.conf", cluster.data / "pg_ident.conf"):
            shutil.chown(path, "postgres")
    cluster.start()
    wait_caught_up(cluster)
    print(f"replica running, caught up ({copied:.1f} s to copy): {cluster.url('')}", flush=True)


def stop(quiet: bool = False) -> None:
    cluster = replica()
    if (cluster.data / "postmaster.pid").exists():
        cluster.stop("fast")
    if FOLDER.exists():
        shutil.rmtree(FOLDER)
        if not quiet:
            print(f"replica stopped, {FOLDER} removed", flush=True)


if __name__ == "__main__":
    {"start": start, "stop": stop}[sys.argv[1] if len(sys.argv) > 1 else "start"]()
