"""What each kind of job does, registered by the app that knows how (fhirapi, feeds: in their AppConfig.ready),
so the queue's bookkeeping never imports the work it runs. A runner is given the claimed job and returns its
result (JSON); it calls `actions.advance` after each part so that a retry resumes after the parts it finished,
and raises to fail: a database that cannot be reached is retried with back-off, anything else is a dead letter."""

from collections.abc import Callable

from .models import Job

Runner = Callable[[Job], dict]
RUNNERS: dict[str, Runner] = {}


def register(kind: str, runner: Runner) -> None:
    RUNNERS[kind] = runner
