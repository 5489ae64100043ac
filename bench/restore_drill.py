"""`make restore-drill` (issue 21): back up a live carerecord, lose it, restore it to a chosen moment, and prove
nothing written before that moment is missing — on PostgreSQL clusters of the drill's own, never the shared one.

1. A source cluster (initdb on a spare port, in DRILL_DIR) with continuous WAL archiving as the README's production
   section sets it (`archive_mode = on`, `archive_command` copying each finished segment to the archive,
   `archive_timeout`), holding the bench dataset (BENCH_SCALE, default "default": 100,000 patients).
2. A workload writes while the drill runs, as the app does: pathology reports through the HL7 pipeline (record
   entries, kept resources, audit rows), looks at records (AccessEvents) and the sealer every second.
3. An online base backup with `pg_basebackup` (tar, lz4, WAL streamed): its time and size.
4. The chosen moment T: the workload pauses for a moment; in that pause a REPEATABLE READ snapshot of the source is
   opened, so it holds exactly what was committed at T, and then the workload goes on. Every table's row count
   and a checksum of its rows (md5 of each row's text, summed) are read in that snapshot.
5. Point-in-time recovery: the base backup restored into a new cluster with `restore_command` from the archive and
   `recovery_target_time = T`, promoted; the recovery time measured from unpacking to accepting writes. Every
   table's count and checksum must equal the snapshot's: nothing committed before T is missing or different.
   `verify_audit` on the restored copy (intact), then one audit row deleted by hand (past the triggers, as a
   superuser could) and `verify_audit` again: it must exit 1 and name the row.
6. The crash: after the workload has gone on for DRILL_AFTER_SECONDS, the source is stopped as by a power cut
   (`pg_ctl stop -m immediate`) and treated as lost; the base backup is restored again to the end of the archive.
   The recovery point: how many seconds of committed writes were lost (the last workload commit before the crash
   against the last one the restored copy holds), and how many transactions.

Environment: BENCH_SCALE; DRILL_DIR (default /var/tmp/carerecord-drill); DRILL_ARCHIVE_TIMEOUT (15 s);
DRILL_AFTER_SECONDS (25); PG_BIN (default: the newest /usr/lib/postgresql/*/bin). Run as root, the PostgreSQL
tools run as the postgres user (initdb refuses root). Figures go to bench/results/restore-drill-<scale>-*.json.
"""

import datetime
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from .clusters import Cluster, as_postgres, common_settings, pg_bin, run, size_of
from .config import RESULTS, ROOT, database_name, production_environment, scale_from_env
from .ports import free_port

CHECKSUM = """SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint::numeric), 0)
              FROM public.{table} t"""


def archive_command(archive: Path) -> str:
    """Each finished WAL segment copied to the archive, never over one already there (README's production)."""
    return f"test ! -f {archive}/%f && cp %p {archive}/%f"


def make_source(folder: Path, archive_timeout: int) -> Cluster:
    """Archiving on from the start (archive_mode needs a restart), the command a no-op until the dataset is
    loaded: the drill's backup starts after it, so the load's WAL need not be kept."""
    cluster = Cluster(folder / "source", free_port())
    run([pg_bin() / "initdb", "-D", cluster.data, "-U", "root", "--auth=trust", "--encoding=UTF8", "--no-instructions"])
    cluster.configure(
        {
            **common_settings(cluster.port, folder),
            # Continuous archiving, as README's production section, a segment finished at least every
            # archive_timeout seconds.
            "wal_level": "replica",
            "archive_mode": "on",
            "archive_command": "/bin/true",
            "archive_timeout": archive_timeout,
            "max_wal_senders": 4,
        }
    )
    cluster.start()
    return cluster


def archived(source: Cluster, seconds: float = 120) -> None:
    """The WAL written so far finished and archived (`pg_switch_wal`, then the archiver's progress): recovery to a
    moment needs the segment holding it in the archive, which `archive_timeout` alone may not have put there yet."""
    segment = source.sql("SELECT pg_walfile_name(pg_switch_wal())")[0][0]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        last = source.sql("SELECT last_archived_wal FROM pg_stat_archiver")[0][0] or ""
        if last[:24] >= segment:
            return
        time.sleep(0.2)
    raise RuntimeError(f"WAL segment {segment} was not archived within {seconds:g} s")


def restore(
    folder: Path, name: str, backup: Path, archive: Path, target_time: str | None, streamed: Path | None = None
) -> tuple[Cluster, float]:
    """The base backup unpacked into a new cluster, recovered from the archive (to target_time, or to the end of
    the WAL it has: the archive, and with `streamed` what pg_receivewal received, its unfinished segment too) and
    promoted: the cluster and the seconds from unpacking to accepting writes."""
    began = time.perf_counter()
    cluster = Cluster(folder / name, free_port())
    cluster.data.mkdir(mode=0o700)
    shutil.chown(cluster.data, "postgres", "postgres") if os.geteuid() == 0 else None
    run(["tar", "-I", "lz4", "-xf", backup / "base.tar.lz4", "-C", cluster.data])
    wal = cluster.data / "pg_wal"
    run(["mkdir", "-p", wal])
    for packed in sorted(backup.glob("pg_wal.tar*")):  # the WAL streamed during the backup (not compressed)
        run(["tar", *(["-I", "lz4"] if packed.suffix == ".lz4" else []), "-xf", packed, "-C", wal])
    restore_command = f"cp {archive}/%f %p"
    if streamed is not None:
        restore_command += f" || cp {streamed}/%f %p"
        for partial in streamed.glob("*.partial"):  # the segment being received when the source was lost
            run(["cp", partial, wal / partial.name.removesuffix(".partial")])
    settings = {
        **common_settings(cluster.port, folder),
        "archive_mode": "off",
        "restore_command": restore_command,
        "recovery_target_action": "promote",
    }
    if target_time:
        settings["recovery_target_time"] = target_time
    cluster.configure(settings)
    run(["touch", cluster.data / "recovery.signal"])
    cluster.start()
    while cluster.sql("SELECT pg_is_in_recovery()")[0][0]:
        time.sleep(0.2)
    return cluster, time.perf_counter() - began


# --- the workload -------------------------------------------------------------------------------------------


class Workload(threading.Thread):
    """What the app writes, in this process through Django against the source: a pathology report through the
    HL7 pipeline, a look at a record, and the sealer every second; each its own transaction. `commits` holds
    (sequence number, the wall time its COMMIT returned) for each look, whose request_id carries the number."""

    def __init__(self, people):
        super().__init__(daemon=True)
        self.people = people
        self.running, self.paused, self.idle = threading.Event(), threading.Event(), threading.Event()
        self.running.set()
        self.commits: list[tuple[int, float]] = []
        self.messages = 0
        self.error: BaseException | None = None

    def run(self):
        from django.db import connection

        from audit import seals
        from audit.models import AccessEvent
        from bench import hl7
        from feeds.receive import receive

        feed = hl7.bench_feed()
        batch = hl7.messages(self.people, len(self.people), "d")
        sealed_at = 0.0
        n = 0
        try:
            while self.running.is_set():
                if self.paused.is_set():
                    self.idle.set()
                    time.sleep(0.01)
                    continue
                self.idle.clear()
                n += 1
                reply = receive(batch[n % len(batch)], feed=feed, organisation=feed.organisation, peer="drill")
                self.messages += reply.code == "AA"
                AccessEvent.objects.create(
                    user_email="drill@bench.carerecord.test",
                    outcome="allowed",
                    basis="care-team",
                    page="summary",
                    request_id=f"drill-{n}",
                )
                self.commits.append((n, time.time()))
                if time.monotonic() - sealed_at >= 1:
                    seals.seal()
                    sealed_at = time.monotonic()
        except BaseException as error:
            self.error = error
        finally:
            self.idle.set()
            connection.close()

    def pause(self) -> None:
        self.idle.clear()
        self.paused.set()
        if not self.idle.wait(60):
            raise RuntimeError("the workload did not pause")

    def resume(self) -> None:
        self.paused.clear()

    def stop(self) -> None:
        self.running.clear()
        self.join(60)


# --- the proof ----------------------------------------------------------------------------------------------


def tables(conn) -> list[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename").fetchall()
    return [row[0] for row in rows]


def checksums(conn, only=None) -> dict[str, tuple[int, str]]:
    """Each table's row count and a checksum of its rows (their text's md5, summed: order does not count)."""
    from psycopg import sql

    out = {}
    for table in only or tables(conn):
        count, total = conn.execute(sql.SQL(CHECKSUM.replace("{table}", "{}")).format(sql.Identifier(table))).fetchone()
        out[table] = (count, str(total))
    return out


def verify_audit(url: str, scale) -> subprocess.CompletedProcess:
    env = {**os.environ, **production_environment(scale), "DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "manage.py", "verify_audit", "--operator", "restore-drill"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


def main() -> None:
    import psycopg

    scale = scale_from_env()
    folder = Path(os.environ.get("DRILL_DIR", "/var/tmp/carerecord-drill"))  # noqa: S108 - a drill folder
    archive_timeout = int(os.environ.get("DRILL_ARCHIVE_TIMEOUT", "15"))
    after = float(os.environ.get("DRILL_AFTER_SECONDS", "25"))
    if folder.exists():
        for data in folder.glob("*/postmaster.pid"):
            Cluster(data.parent, 0).stop("immediate")
        shutil.rmtree(folder)
    archive, backup = folder / "archive", folder / "backup"
    for path in (folder, archive):
        path.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")
    figures: dict = {"scale": scale.name, "archive_timeout_seconds": archive_timeout}
    clusters: list[Cluster] = []
    receiver = None
    ok = True
    try:
        print(f"== source cluster, with WAL archiving (archive_timeout {archive_timeout} s)", flush=True)
        source = make_source(folder, archive_timeout)
        clusters.append(source)
        os.environ["BENCH_PG"] = source.url("").rstrip("/")
        database = database_name(scale)
        subprocess.run([sys.executable, "-m", "bench.dataset"], cwd=ROOT, check=True, env=os.environ)
        source.configure({"archive_command": archive_command(archive)})
        source.reload()
        # WAL streamed as it is written, to a second place (README: pg_receivewal beside the archive).
        streamed = folder / "streamed"
        run(["mkdir", "-p", streamed])
        receive_wal = [pg_bin() / "pg_receivewal", "-h", "127.0.0.1", "-p", source.port, "-U", "root"]
        run([*receive_wal, "--slot", "drill", "--create-slot"])
        receiver = subprocess.Popen(  # noqa: S603 - PostgreSQL's own tool
            as_postgres([*receive_wal, "-D", streamed, "--slot", "drill", "--synchronous", "--no-loop"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        from .config import setup_django

        setup_django(scale)
        from audit import seals

        seals.seal(batch_rows=100_000)  # the dataset's audit rows
        with psycopg.connect(source.url(database), autocommit=True) as conn:
            from bench import hl7

            people = hl7.patients(conn, 500)
            figures["database_bytes"] = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]

        workload = Workload(people)
        workload.start()
        time.sleep(3)

        print("== base backup (pg_basebackup, tar, lz4, WAL streamed), under the workload", flush=True)
        began = time.perf_counter()
        backup.mkdir()
        if os.geteuid() == 0:
            shutil.chown(backup, "postgres", "postgres")
        run(
            [
                pg_bin() / "pg_basebackup",
                "-h",
                "127.0.0.1",
                "-p",
                source.port,
                "-U",
                "root",
                "-D",
                backup,
                "-Ft",
                "-Z",
                "lz4",
                "-X",
                "stream",
                "-c",
                "fast",
            ]
        )
        figures["backup_seconds"] = round(time.perf_counter() - began, 1)
        figures["backup_bytes"] = size_of(backup)
        time.sleep(5)

        print("== the chosen moment: a snapshot of what was committed then", flush=True)
        workload.pause()
        time.sleep(0.2)
        chosen = datetime.datetime.now(datetime.UTC)
        snapshot = psycopg.connect(source.url(database), autocommit=True)
        snapshot.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        snapshot.execute("SELECT 1")  # the snapshot is taken here, in the pause
        time.sleep(0.2)
        committed_before = len(workload.commits)
        workload.resume()
        expected = checksums(snapshot)
        snapshot.execute("ROLLBACK")
        snapshot.close()
        figures["chosen_time"] = chosen.isoformat()
        figures["tables"] = len(expected)
        figures["rows_before_chosen_time"] = sum(count for count, _ in expected.values())
        archived(source)  # the segment holding the moment, archived: otherwise recovery stops short of it

        print("== point-in-time recovery to the chosen moment", flush=True)
        pitr, seconds = restore(folder, "restored-pitr", backup, archive, chosen.isoformat())
        clusters.append(pitr)
        figures["pitr_recovery_seconds"] = round(seconds, 1)
        with psycopg.connect(pitr.url(database), autocommit=True) as conn:
            found = checksums(conn)
        differing = sorted(t for t in expected if found.get(t) != expected[t]) + sorted(set(found) - set(expected))
        figures["pitr_tables_differing"] = differing
        figures["pitr_every_row_back"] = not differing
        ok &= not differing
        # The comparison can fail: the source itself, written to since the moment, no longer matches it.
        with psycopg.connect(source.url(database), autocommit=True) as conn:
            moved_on = checksums(conn, only=("audit_accessevent",))
        figures["proof_can_fail"] = moved_on["audit_accessevent"] != expected["audit_accessevent"]
        ok &= figures["proof_can_fail"]
        intact = verify_audit(pitr.url(database), scale)
        figures["pitr_verify_audit"] = {"exit": intact.returncode, "says": intact.stdout.strip().splitlines()[-1:]}
        ok &= intact.returncode == 0
        victim = pitr.sql(
            """SELECT max(id) FROM audit_accessevent
               WHERE id <= (SELECT max(last_id) FROM audit_auditseal WHERE "table" = 'accessevent')""",
            database,
        )[0][0]
        # As a superuser past the triggers would: the row simply removed.
        with psycopg.connect(pitr.url(database), autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")
            conn.execute("DELETE FROM audit_accessevent WHERE id = %s", [victim])
        tampered = verify_audit(pitr.url(database), scale)
        named = f"id {victim}." in tampered.stdout
        figures["tampered_verify_audit"] = {"deleted_id": victim, "exit": tampered.returncode, "named_it": named}
        ok &= tampered.returncode == 1 and named
        pitr.stop()

        print(f"== the crash: {after:g} s more writes, then the source stopped as by a power cut", flush=True)
        time.sleep(after)
        if workload.error is not None:
            raise RuntimeError(f"the workload failed: {workload.error!r}")
        last_before_crash = workload.commits[-1]
        logging.getLogger("feeds.receive").disabled = True  # the write the crash cuts off is logged: expected
        source.stop("immediate")
        crashed_at = time.time()
        workload.stop()
        figures["workload_commits"] = len(workload.commits)
        figures["workload_messages_applied"] = workload.messages
        receiver.wait(timeout=60)  # pg_receivewal ends with its server
        commit_times = dict(workload.commits)
        for key, streamed_dir in (("archive_only", None), ("archive_and_stream", streamed)):
            latest, seconds = restore(folder, f"restored-{key}", backup, archive, None, streamed_dir)
            clusters.append(latest)
            held = (
                latest.sql(
                    "SELECT max(substr(request_id, 7)::int) FROM audit_accessevent WHERE request_id LIKE 'drill-%'",
                    database,
                )[0][0]
                or 0
            )
            lost_seconds = last_before_crash[1] - commit_times[held] if held in commit_times else None
            figures[f"recovery_point_{key}"] = {
                "recovery_seconds": round(seconds, 1),
                "last_commit_before_crash": last_before_crash[0],
                "last_commit_restored": held,
                "transactions_lost": last_before_crash[0] - held,
                "seconds_of_writes_lost": round(lost_seconds, 2) if lost_seconds is not None else None,
            }
            ok &= held >= committed_before  # at least everything up to the chosen moment
            latest.stop()
        figures["crash_after_last_commit_seconds"] = round(crashed_at - last_before_crash[1], 2)
    finally:
        if receiver is not None and receiver.poll() is None:
            receiver.terminate()
        for cluster in clusters:
            cluster.stop("immediate")
        figures["archive_bytes"] = size_of(archive) if archive.exists() else 0
        if os.environ.get("DRILL_KEEP") != "1":
            shutil.rmtree(folder, ignore_errors=True)
    figures["passed"] = bool(ok)
    report(figures)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"restore-drill-{scale.name}-{datetime.datetime.now(datetime.UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(figures, indent=2, default=str))
    print(f"written {out.relative_to(ROOT)}")
    if not ok:
        sys.exit(1)


def report(f: dict) -> None:
    gib = 1024**3
    differing = f.get("pitr_tables_differing")
    print()
    print(f"restore drill, {f['scale']} dataset ({f.get('database_bytes', 0) / gib:.2f} GiB):")
    print(f"  base backup: {f.get('backup_seconds')} s, {f.get('backup_bytes', 0) / gib:.2f} GiB (lz4)")
    print(
        f"  point-in-time recovery to {f.get('chosen_time')}: {f.get('pitr_recovery_seconds')} s; "
        f"{f.get('rows_before_chosen_time', 0):,} rows in {f.get('tables')} tables compared, "
        + ("every one back and unchanged" if f.get("pitr_every_row_back") else f"DIFFERING: {differing}")
    )
    print(f"  the same comparison against the source, written to since: differs = {f.get('proof_can_fail')}")
    print(f"  verify_audit on the restored copy: {f.get('pitr_verify_audit')}")
    print(f"  verify_audit after one audit row deleted by hand: {f.get('tampered_verify_audit')}")
    for key, words in (
        ("archive_only", f"the archive alone (archive_timeout {f['archive_timeout_seconds']} s)"),
        ("archive_and_stream", "the archive and pg_receivewal's stream"),
    ):
        point = f.get(f"recovery_point_{key}", {})
        print(
            f"  crash, restored from {words}: {point.get('recovery_seconds')} s; recovery point "
            f"{point.get('seconds_of_writes_lost')} s of writes lost ({point.get('transactions_lost')} transactions)"
        )
    print(f"  WAL archived: {f.get('archive_bytes', 0) / 1024**2:.0f} MiB")
    print("PASSED" if f.get("passed") else "FAILED")


if __name__ == "__main__":
    main()
