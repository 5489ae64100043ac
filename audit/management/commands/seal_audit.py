"""Seal the audit trail: `manage.py seal_audit` once, or `--every 5` as a long-running service (audit/seals.py).

Run it beside the app (one instance is enough; a second waits its turn): every few seconds it seals the rows
committed since its last run. `--sweep` also looks under every earlier seal for rows that committed late (a
long transaction): run it nightly. Sealing never blocks an insert; stopping the sealer only delays sealing.
"""

import signal
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from audit import seals


class Command(BaseCommand):
    help = "Seal the audit rows committed since the last seal (once, or every N seconds)."

    def add_arguments(self, parser):
        parser.add_argument("--every", type=float, default=0, help="Seconds between runs; 0 (default): run once.")
        parser.add_argument("--sweep", action="store_true", help="Look for late-committed rows under every seal.")
        parser.add_argument("--batch-rows", type=int, default=seals.BATCH_ROWS, help="At most this many a seal.")

    def handle(self, *args, every, sweep, batch_rows, **options):
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        while True:
            made = self._run_until_caught_up(sweep=sweep, batch_rows=batch_rows)
            if made and options["verbosity"] > 0:
                self.stdout.write(
                    f"sealed {sum(s.row_count for s in made):,} rows in {len(made)} seal(s); head {made[-1].hash}"
                )
            if not every or stopping:
                return
            sweep = False  # a sweep is asked for once
            close_old_connections()
            deadline = time.monotonic() + every
            while time.monotonic() < deadline and not stopping:
                time.sleep(min(0.5, every))
            if stopping:
                return

    def _run_until_caught_up(self, *, sweep: bool, batch_rows: int) -> list:
        made = []
        while True:
            batch = seals.seal(batch_rows=batch_rows, sweep=sweep)
            made += batch
            sweep = False
            if not any(s.row_count >= batch_rows for s in batch):
                return made
