"""The queue from the command line: `bulk_jobs` lists what is unfinished or dead and `--dispatch` sends waiting
jobs again; the commands that queue refuse when no broker is configured, rather than queue for nobody."""

import io

import pytest
from django.core.management import CommandError, call_command

from bulk import actions
from bulk.models import Job

pytestmark = pytest.mark.django_db


def _run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def _job(n: int) -> Job:
    job, _ = actions.submit(
        kind=Job.Kind.HL7_REPLAY, by=actions.Requester(email="command:t"), total=1, params={"messages": [n]}
    )
    return job


def test_bulk_jobs_lists_the_unfinished_and_the_dead_only():
    waiting, dead, done = _job(1), _job(2), _job(3)
    actions.bury(actions.claim(dead.pk), "ValueError: no")
    actions.finish(actions.claim(done.pk), {"summary": "ok"})
    listed = _run("bulk_jobs")
    assert str(waiting.pk) in listed and str(dead.pk) in listed and str(done.pk) not in listed
    assert "2 jobs not finished or dead." in listed


def test_dispatch_sends_what_waits(queue_on, monkeypatch):
    sent = []
    monkeypatch.setattr(actions, "send", sent.append)
    job = _job(1)
    assert "Sent 1 jobs' messages again." in _run("bulk_jobs", dispatch=True)
    assert sent == [job.pk]


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("bulk_jobs", {"dispatch": True}),
        ("hl7_replay", {"queue": True}),
    ],
)
def test_without_a_broker_the_queue_commands_refuse(settings, command, options):
    settings.CELERY_BROKER_URL = ""
    with pytest.raises(CommandError, match="queue is off"):
        _run(command, **options)


def test_import_fhir_queue_without_a_broker_refuses(settings, tmp_path, other_organisation):
    settings.CELERY_BROKER_URL = ""
    (tmp_path / "p.json").write_text('{"resourceType": "Patient"}')
    with pytest.raises(CommandError, match="queue is off"):
        _run("import_fhir", str(tmp_path), organisation=other_organisation.ods_code, queue=True)
    assert not Job.objects.exists()
