"""A command's `--wait`: the job's progress as a bar until it ends (done, dead, cancelled), read from its row."""

import sys
import time

from tqdm import tqdm

from .models import Job


def follow(job: Job, *, quiet: bool = False, every: float = 0.5, timeout: float | None = None) -> Job:
    started = time.monotonic()
    with tqdm(total=job.total or None, desc=job.get_kind_display(), file=sys.stderr, disable=quiet) as bar:
        while True:
            job.refresh_from_db()
            bar.total = job.total or None
            bar.n = job.done
            bar.set_postfix_str(job.get_status_display().lower())
            if job.status not in Job.OPEN:
                return job
            if timeout is not None and time.monotonic() - started > timeout:
                return job
            time.sleep(every)


def announce(command, job: Job, created: bool, described: str, *, wait: bool, quiet: bool) -> None:
    """What a command that queued a job prints: its id, and with `--wait` how it ended (a failure fails it)."""
    from django.core.management.base import CommandError

    command.stdout.write(f"{'Queued' if created else 'Already submitted as'} job {job.pk} ({described}).")
    if not wait:
        return
    job = follow(job, quiet=quiet)
    command.stdout.write(f"Job {job.pk}: {job.get_status_display().lower()}. {job.result.get('summary', '')}")
    if job.status != Job.Status.DONE:
        raise CommandError(job.last_error or "The job did not finish.")
