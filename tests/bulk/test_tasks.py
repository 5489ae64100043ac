"""The task's rules, run in-process (Celery's apply): a job claimed once whatever copies of its message come,
a database failure retried with back-off up to BULK_MAX_ATTEMPTS then dead-lettered, any other failure
dead-lettered at once with its error kept without patient identifiers, and a retry resuming after the parts done."""

import datetime

import pytest
from django.db import OperationalError
from django.utils import timezone

from audit.models import AuditEvent
from audit.names import Action
from bulk import actions, runners, tasks
from bulk.models import Job

pytestmark = pytest.mark.django_db
KIND = Job.Kind.HL7_REPLAY
BY = actions.Requester(email="command:test@ops")


@pytest.fixture
def runner(monkeypatch):
    """The replay runner replaced by one the test scripts: each call pops the next step (an exception or a result)."""
    steps, calls = [], []

    def scripted(job):
        calls.append(job.attempts)
        step = steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step

    monkeypatch.setitem(runners.RUNNERS, KIND, scripted)
    return steps, calls


def _job(**kwargs) -> Job:
    job, _ = actions.submit(kind=KIND, by=BY, total=3, params={"messages": [1, 2, 3]}, **kwargs)
    return job


def test_a_job_is_claimed_once_whatever_copies_of_its_message_come():
    job = _job()
    assert actions.claim(job.pk) is not None
    assert actions.claim(job.pk) is None  # a second delivery while it runs
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - datetime.timedelta(hours=1))
    assert actions.claim(job.pk) is not None  # its worker fell silent past BULK_STALE_SECONDS: taken over


@pytest.mark.hazard("H-05")
def test_a_database_failure_is_retried_then_the_job_finishes(runner, settings):
    steps, calls = runner
    steps += [OperationalError("server closed the connection unexpectedly"), {"summary": "replayed 3"}]
    job = _job()
    tasks.run.apply(args=[str(job.pk)])
    job.refresh_from_db()
    assert (job.status, job.attempts, calls) == (Job.Status.DONE, 2, [1, 2])
    assert job.result["summary"] == "replayed 3"
    assert "OperationalError" in job.last_error  # what the retry was for stays on the row
    assert AuditEvent.objects.filter(action=Action.BULK_DONE, target_id=str(job.pk)).count() == 1


@pytest.mark.hazard("H-05")
def test_retries_spent_make_a_dead_letter(runner, settings):
    settings.BULK_MAX_ATTEMPTS = 3
    steps, calls = runner
    steps += [OperationalError("deadlock detected")] * 3
    job = _job()
    tasks.run.apply(args=[str(job.pk)])
    job.refresh_from_db()
    assert (job.status, job.attempts, calls) == (Job.Status.DEAD, 3, [1, 2, 3])
    dead = AuditEvent.objects.get(action=Action.BULK_DEAD, target_id=str(job.pk))
    assert dead.actor_email == BY.email
    assert "deadlock detected" in dead.detail["error"]


def test_an_error_no_retry_mends_is_a_dead_letter_at_once_without_identifiers(runner):
    steps, calls = runner
    steps += [KeyError("patient 999 000 0018 record 0f8ba2b2-76b4-4ef6-9f19-abfa2787479d")]
    job = _job()
    tasks.run.apply(args=[str(job.pk)])
    job.refresh_from_db()
    assert (job.status, calls) == (Job.Status.DEAD, [1])
    assert "999 000 0018" not in job.last_error and "0f8ba2b2" not in job.last_error
    assert "[nhs-number]" in job.last_error and "KeyError" in job.last_error


@pytest.mark.hazard("H-05")
def test_ig_send_a_dead_letter_again_and_it_starts_over(runner, admin_user):
    steps, _ = runner
    steps += [ValueError("a mapping was missing"), {"summary": "ok"}]
    job = _job()
    tasks.run.apply(args=[str(job.pk)])
    job.refresh_from_db()
    with pytest.raises(actions.NotAllowed):
        actions.cancel(job, by=admin_user)  # a dead letter is not waiting
    actions.retry(job, by=admin_user)
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.QUEUED, 0)
    retried = AuditEvent.objects.get(action=Action.BULK_RETRIED)
    assert (retried.actor_id, retried.target_id) == (admin_user.pk, str(job.pk))
    tasks.run.apply(args=[str(job.pk)])
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    with pytest.raises(actions.NotAllowed):
        actions.retry(job, by=admin_user)  # done: nothing to send again


def test_a_job_for_a_kind_no_app_registered_is_a_dead_letter(monkeypatch):
    monkeypatch.delitem(runners.RUNNERS, KIND)
    job = _job()
    tasks.run.apply(args=[str(job.pk)])
    job.refresh_from_db()
    assert job.status == Job.Status.DEAD
    assert "No runner" in job.last_error


def test_a_cancelled_job_does_not_run(runner, admin_user):
    _, calls = runner
    job = _job()
    actions.cancel(job, by=admin_user)
    tasks.run.apply(args=[str(job.pk)])
    assert calls == []


@pytest.mark.parametrize("attempt", [1, 2, 5, 20])
def test_back_off_doubles_with_jitter_up_to_the_ceiling(settings, attempt):
    settings.BULK_RETRY_BASE_SECONDS, settings.BULK_RETRY_MAX_SECONDS = 5, 600
    ceiling = min(600, 5 * 2 ** (attempt - 1))
    waits = [tasks.backoff(attempt) for _ in range(50)]
    assert all(ceiling / 2 <= wait <= ceiling for wait in waits)


def test_sweep_sends_again_what_waits_too_long_and_only_that(monkeypatch, settings):
    settings.BULK_REDISPATCH_SECONDS = 120
    sent = []
    monkeypatch.setattr(actions, "send", sent.append)
    now = timezone.now()
    never_sent, just_sent, long_ago, running, done = (_job(submission_id=str(n)) for n in range(5))
    Job.objects.filter(pk=just_sent.pk).update(dispatched_at=now)
    Job.objects.filter(pk=long_ago.pk).update(dispatched_at=now - datetime.timedelta(minutes=5))
    Job.objects.filter(pk=running.pk).update(status=Job.Status.RUNNING, heartbeat_at=now)
    Job.objects.filter(pk=done.pk).update(status=Job.Status.DONE)
    assert actions.sweep(now=now) == 2
    assert set(sent) == {never_sent.pk, long_ago.pk}
