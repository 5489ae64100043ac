"""manage.py import_fhir: files and folders, JSON or XML, a summary per resource type."""

import json

import pytest
from django.core.management import CommandError, call_command

from patients import models as record

from .conftest import RICHARD_SMITH, bundle, condition_resource, example, patient_resource

pytestmark = pytest.mark.django_db


def summary_rows(output: str) -> dict[str, list[int]]:
    rows = {}
    for line in output.splitlines()[1:]:
        name, *numbers = line.split()
        rows[name] = [int(n) for n in numbers]
    return rows


def test_files_in_any_order_resolve_each_other(tmp_path, sender, capsys):
    # The condition's file sorts first; its patient is in another file, in XML.
    (tmp_path / "a-condition.json").write_text(
        json.dumps(condition_resource(patient="Patient/UKCore-Patient-RichardSmith-Example"))
    )
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "b-patient.xml").write_bytes(example(RICHARD_SMITH))
    (tmp_path / "notes.txt").write_text("not FHIR, not read")
    call_command("import_fhir", str(tmp_path), organisation=sender.ods_code)
    captured = capsys.readouterr()
    rows = summary_rows(captured.out)
    assert rows["Condition"] == [1, 0, 0, 0] and rows["Patient"] == [1, 0, 0, 0] and rows["total"] == [2, 0, 0, 0]
    assert "Reading" in captured.err  # the progress bar goes to stderr
    assert record.Condition.objects.get().patient.nhs_number == "9912003888"


@pytest.mark.hazard("H-05")
def test_transaction_bundles_are_applied_whole_or_not_at_all(tmp_path, sender, capsys):
    good = bundle("transaction", patient_resource(), condition_resource())
    bad = bundle(
        "transaction", patient_resource("p2", nhs_number="9990000026"), condition_resource("c2", patient="Patient/x")
    )
    (tmp_path / "good.json").write_text(json.dumps(good))
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    (tmp_path / "broken.json").write_text("{")
    call_command(
        "import_fhir",
        str(tmp_path / "good.json"),
        str(tmp_path / "bad.json"),
        str(tmp_path / "broken.json"),
        organisation=sender.ods_code,
    )
    captured = capsys.readouterr()
    rows = summary_rows(captured.out)
    assert rows["Patient"] == [1, 0, 0, 1] and rows["Condition"] == [1, 0, 0, 1]
    assert "Patient not found" in captured.err and "broken.json: not imported" in captured.err
    assert "A transaction was not applied" in captured.err
    assert list(record.Patient.objects.values_list("nhs_number", flat=True)) == ["9990000018"]


def test_an_unknown_organisation_or_path_is_an_error(tmp_path, sender):
    with pytest.raises(CommandError, match="No organisation"):
        call_command("import_fhir", str(tmp_path), organisation="NOPE")
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_fhir", str(tmp_path / "missing"), organisation=sender.ods_code)
