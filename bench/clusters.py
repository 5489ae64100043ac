"""PostgreSQL clusters of the benches' own (the restore drill's, the read replica's): Debian's server binaries,
run as the postgres user when we are root, on a spare port with their own socket folder."""

import contextlib
import glob
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path


def pg_bin() -> Path:
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if not found:
        raise SystemExit("No PostgreSQL server binaries (/usr/lib/postgresql/*/bin): set PG_BIN.")
    return Path(found[-1])


def as_postgres(command: list) -> list:
    return ["runuser", "-u", "postgres", "--", *map(str, command)] if os.geteuid() == 0 else list(map(str, command))


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(as_postgres(command), capture_output=True, text=True, **kwargs)  # noqa: S603
    if done.returncode:
        raise RuntimeError(f"{' '.join(map(str, command))} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done


def size_of(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@dataclass
class Cluster:
    """A PostgreSQL cluster of the drill's own: its data directory under the drill's folder, a spare port."""

    data: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgres://root@127.0.0.1:{self.port}/{database}"

    def configure(self, settings: dict) -> None:
        with open(self.data / "postgresql.auto.conf", "a") as conf:
            for key, value in settings.items():
                conf.write(f"{key} = '{value}'\n" if isinstance(value, str) else f"{key} = {value}\n")

    def start(self) -> None:
        try:
            run([pg_bin() / "pg_ctl", "-D", self.data, "-l", self.data / "server.log", "-w", "-t", "3600", "start"])
        except RuntimeError as error:  # the server's own words say why (the folder is removed afterwards)
            log = (
                (self.data / "server.log").read_text(errors="replace")[-3000:]
                if (self.data / "server.log").exists()
                else ""
            )
            raise RuntimeError(f"{error}\n{log}") from error

    def reload(self) -> None:
        run([pg_bin() / "pg_ctl", "-D", self.data, "reload"])

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(RuntimeError):
            run([pg_bin() / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop"])

    def sql(self, query: str, database: str = "postgres", params=None):
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            return conn.execute(query, params).fetchall()


def common_settings(port: int, sockets: Path) -> dict:
    return {
        "port": port,
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": str(sockets),
        "shared_buffers": "256MB",
        "maintenance_work_mem": "256MB",
        "autovacuum": "on",
    }
