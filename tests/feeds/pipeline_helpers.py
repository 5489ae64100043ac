"""Shared by the pipeline's tests (receive, ACKs, import, replay, admin): synthetic messages, and a stub converter
standing in for ADT/ORU's so the pipeline is tested on its own terms (what it keeps, answers and audits).

The stub turns PID into a FHIR Patient (id = the hospital number as a local id, NHS number when PID-3 has one) and
each OBX into an Observation of that patient; with no NHS number it refers to `Patient/<local id>` and is Held when
the record has not learned that local id yet — as the real converters do.
"""

from pathlib import Path

import pytest

from feeds import segments
from feeds.convert import Conversion, Held, Invalid
from patients.models import SourcePatientId

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hl7v2"
NHS_NUMBER = "9434765919"  # valid modulus 11, test range
OTHER_NHS_NUMBER = "9999999999"


def message(
    control_id="MSG0001",
    *,
    kind="ADT^A01",
    version="2.4",
    nhs=NHS_NUMBER,
    mrn="40800123",
    family="PEMBERTON",
    given="Olivia",
    dob="19800101",
    accept_ack="",
    application_ack="",
    security="",
    application="EPIC",
    facility="RRV",
    obx=(),
    extra="",
) -> str:
    """A synthetic ADT or ORU message (CR-separated), Faker en_GB style patient, valid NHS number."""
    identifiers = f"{mrn}^^^RRV^MR" + (f"~{nhs}^^^NHS^NH" if nhs else "")
    msh = (
        f"MSH|^~\\&|{application}|{facility}|CARERECORD|LCR|20240301101500|{security}|{kind}|{control_id}|P|{version}"
        + (f"|||{accept_ack}|{application_ack}" if accept_ack or application_ack else "")
    )
    lines = [msh, f"EVN|{kind.split('^')[1]}|20240301101500", f"PID|1||{identifiers}||{family}^{given}||{dob}|F"]
    lines += [f"OBX|{n}|NM|HB^Haemoglobin^WinPath||{value}|g/L|115-165||||F" for n, value in enumerate(obx, 1)]
    if extra:
        lines.append(extra)
    return "\r".join(lines)


def stub_convert(msg, feed) -> Conversion:
    pid = segments.segment(msg, "PID")
    if pid is None:
        raise Invalid("No PID segment.", "PID")
    nhs, local = "", ""
    for rep in segments.repetitions(pid, "3"):
        if segments.text(rep, "4") == "NHS":
            nhs = segments.text(rep, "1")
        elif not local:
            local = f"{segments.text(rep, '4')}-{segments.text(rep, '1')}"
    dob = segments.partial_date(segments.text(pid, "7"), "PID-7")
    if dob is None:
        raise Invalid("PID-7 (date of birth) is required.", "PID-7")
    entries, origins = [], {}
    if nhs:
        patient = {
            "resourceType": "Patient",
            "id": local,
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}],
            "name": [{"family": segments.text(pid, "5.1"), "given": [segments.text(pid, "5.2")]}],
            "birthDate": dob,
        }
        entries.append(
            {
                "fullUrl": f"Patient/{local}",
                "resource": patient,
                "request": {"method": "PUT", "url": f"Patient/{local}"},
            }
        )
        origins[0] = "PID"
    elif not SourcePatientId.objects.filter(organisation=feed.organisation, resource_id=f"Patient/{local}").exists():
        raise Held(f"No patient is known by {local} yet.", local_id=local, location="PID-3")
    for number, obx in enumerate(segments.segments(msg, "OBX"), 1):
        subject = "Patient/nobody" if segments.text(obx, "3.1") == "NOBODY" else f"Patient/{local}"
        observation = {
            "resourceType": "Observation",
            "id": f"{segments.text(msg, 'MSH.10')}-{number}",
            "status": "final",
            "code": {"text": segments.text(obx, "3.2") or "test"},
            "subject": {"reference": subject},
            "valueString": segments.text(obx, "5"),
        }
        origins[len(entries)] = f"OBX[{number}]"
        entries.append(
            {"resource": observation, "request": {"method": "PUT", "url": f"Observation/{observation['id']}"}}
        )
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    return Conversion(bundle=bundle, origins=origins, local_id=local)


@pytest.fixture
def stub_converter(monkeypatch):
    """Every ADT/ORU goes to stub_convert; returns a dict tests can fill to make it raise (`{"raise": exc}`)."""
    behaviour = {}

    def convert(msg, feed):
        if "raise" in behaviour:
            raise behaviour["raise"]
        return stub_convert(msg, feed)

    monkeypatch.setattr("feeds.receive.converter", lambda message_type: convert)
    return behaviour


def segments_of(ack: str) -> dict[str, list[str]]:
    """An ACK's segments by name, each split into fields (field 1 = index 1, MSH's as HL7 counts)."""
    found = {}
    for line in ack.split("\r"):
        fields = line.split("|")
        if fields[0] == "MSH":
            fields = ["MSH", "|", *fields[1:]]
        found[fields[0]] = fields
    return found
