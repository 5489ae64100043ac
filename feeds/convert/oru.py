"""ORU^R01 pathology results → one FHIR transaction: per OBR a DiagnosticReport, per OBX an Observation it lists.

What lands where (docs/hl7v2.md, "ORU^R01 results", has the field-by-field table):

- **Keys (H-14).** A report is the order it answers: the filler order number (OBR-3, the laboratory's own), else
  the placer's (OBR-2), with the test (OBR-4.1) and, for a sensitivities OBR, the isolate it belongs to (OBR-26);
  a result is its report's key with the test (OBX-3.1), its sub-id (OBX-4) and its place among results of that
  test and sub-id in the OBR. Not the set id (OBX-1): laboratories renumber it when a test is added to a report,
  which would make the same result a new one. So the same message again changes nothing, and preliminary → final
  → corrected replace, never duplicate. An OBX repeated whole inside one OBR (a sender's duplicate segment) is one
  result. Results not sent again stay as they were: a laboratory sends what changed; one is withdrawn by OBX-11 D.
- **Order (H-14).** `meta.lastUpdated` is OBR-22 (results reported / status changed), else MSH-7. A report older
  than the one held (a preliminary arriving after its final) changes nothing: fhirapi's results mapping keeps the
  newer report and its values (a stale report's values are not replaced), so the converter does not look.
- **Status.** OBR-25: O/I/S registered, A/R partial, P preliminary, F final, C corrected, empty unknown, X (order
  cancelled, no results) the report withdrawn (`entered-in-error`: hidden with its values, as the record shows a
  cancelled report's earlier values otherwise). OBX-11: F (U with its value) final, C corrected, P/R/S
  preliminary, I/O registered, N/X cancelled, D/W entered-in-error (its values removed from the report). Another or
  none: Invalid (AE), as a value whose status cannot be read must not be shown as if final.
- **Dates (H-09).** A report's effective time is the collection time (OBR-7, else OBR-8, else SPM-17); issued is
  OBR-22. A result's is OBX-14, else its OBR's collection time (HL7: OBX-14 is OBR-7 when not sent). At the
  precision sent; a date alone stays a date.
- **Values (H-10).** NM → valueQuantity, the unit (OBX-6) as sent, a UCUM code only when the unit is valid UCUM
  (feeds.codes.is_ucum). A comparator ("<7", SN "<^5") → valueString with the unit ("<7 nmol/L"): the record's
  value column holds no comparator and would show 7. SN as a number, else its text ("1:128"). ST/TX/FT →
  valueString (repetitions and \\.br\\ as line breaks), CE/CWE → valueCodeableConcept, DT/TS/TM → valueString
  as the date sent. No value → dataAbsentReason. A number that is no number → Invalid; a type carerecord does not
  take (ED, RP...) → NotAccepted. Ranges (OBX-7) "low-high", "<x", ">x" as numbers, else as text. Flags (OBX-8) →
  interpretation (v3 ObservationInterpretation: H, L, HH, LL, A, N, S, R, I...); others kept as words.
- **Codes.** Each test code is kept in the sender's own code system (feeds.codes.system_uri), and the national code
  IG mapped it to (feeds.models.CodeMapping) goes first, so that trends join across laboratories.
- **Notes.** NTE after OBR → the report's conclusion; NTE after OBX → the result's note, and in the conclusion as
  "<test>: <note>" (the record shows a report's conclusion, not a value's notes).
- **Microbiology.** Isolates (OBX ISOLATE with sub-ids) are results like any other, named with their sub-id where a
  test appears under several; a sensitivities OBR (OBR-26 naming its isolate) is a report of its own, named for the
  isolate ("Sensitivities (ISOLATE 1: Klebsiella oxytoca)"), its antibiotics' S/I/R as interpretations.
- **Refused.** Not ORU^R01, results for a second patient (PID twice), a type of value not taken: NotAccepted.
  An OBX before any OBR, no OBR, no order number, ORC-1 other than RE, ORC-2/3 disagreeing with OBR-2/3, a status
  or number that cannot be read: Invalid, naming the segment and field. Nothing is half-imported: the whole
  message or nothing.
"""

import contextlib
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field

from hl7.util import unescape

from fhirapi.references import sender_system
from fhirapi.systems import OBSERVATION_INTERPRETATION, UCUM

from .. import codes, segments
from . import Conversion, Invalid, NotAccepted
from .patient import subject_of

ACCEPTED = "ORU^R01"
MAX_ID = 64
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DIAGNOSTIC_SECTION = "http://terminology.hl7.org/CodeSystem/v2-0074"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"

REPORT_STATUS = {
    "O": "registered",
    "I": "registered",
    "S": "registered",
    "A": "partial",
    "R": "partial",
    "P": "preliminary",
    "F": "final",
    "C": "corrected",
    "X": "entered-in-error",
    "": "unknown",
}
RESULT_STATUS = {
    "F": "final",
    "U": "final",
    "C": "corrected",
    "P": "preliminary",
    "R": "preliminary",
    "S": "preliminary",
    "I": "registered",
    "O": "registered",
    "N": "cancelled",
    "X": "cancelled",
    "D": "entered-in-error",
    "W": "entered-in-error",
}
# HL7 table 0078 abnormal flags → v3 ObservationInterpretation (the same codes), with how a clinician says them.
INTERPRETATIONS = {
    "H": "High",
    "L": "Low",
    "HH": "Critical high",
    "LL": "Critical low",
    "HU": "Significantly high",
    "LU": "Significantly low",
    "A": "Abnormal",
    "AA": "Critical abnormal",
    "N": "Normal",
    "S": "Susceptible",
    "R": "Resistant",
    "I": "Intermediate",
    "MS": "Moderately susceptible",
    "VS": "Very susceptible",
    "SDD": "Susceptible-dose dependent",
    "NS": "Non-susceptible",
    "POS": "Positive",
    "NEG": "Negative",
    "IND": "Indeterminate",
    "DET": "Detected",
    "ND": "Not detected",
    "RR": "Reactive",
    "NR": "Non-reactive",
    "WR": "Weakly reactive",
    "E": "Equivocal",
    "<": "Off scale low",
    ">": "Off scale high",
    "U": "Significant change up",
    "D": "Significant change down",
    "B": "Better",
    "W": "Worse",
}
FLAG_ALIASES = {"HI": "H", "LO": "L"}  # older senders' words for table 0078's codes
TEXT_TYPES = {"ST", "TX", "FT"}
CODED_TYPES = {"CE", "CWE", "CNE", "CF"}
DATE_TYPES = {"DT", "TS", "DTM", "TM"}
NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_NUMBER = re.compile(rf"\s*(?P<comparator><=|>=|<|>)?\s*(?P<number>{NUMBER})\s*\Z")
_RANGE = re.compile(rf"\s*(?P<low>{NUMBER})\s*[-–]\s*(?P<high>{NUMBER})\s*\Z")
_BOUND = re.compile(rf"\s*(?P<comparator><=|>=|<|>|≤|≥)\s*(?P<number>{NUMBER})\s*\Z")
_ID_SAFE = re.compile(r"[A-Za-z0-9]")
# HL7 table 0357 error codes for the ERR segment (feeds.ack)
SEGMENT_SEQUENCE, REQUIRED, DATA_TYPE, TABLE_VALUE = "100", "101", "102", "103"


class Fields:
    """A segment's fields, each read (and unescaped) once: a result is read in several places, and an ORU^R01 of
    twenty results would otherwise read its OBX fields some seven hundred times. Called with a path: `obx("3.1")`."""

    __slots__ = ("_read", "segment")

    def __init__(self, segment):
        self.segment, self._read = segment, {}

    def __call__(self, path: str) -> str:
        found = self._read.get(path)
        if found is None:
            found = self._read[path] = segments.text(self.segment, path)
        return found

    def repetitions(self, path: str) -> list:
        return segments.repetitions(self.segment, path)


@dataclass
class Result:
    """One OBX, its place among the message's OBX segments (for an ERR), and the NTE text after it."""

    obx: Fields
    number: int
    notes: list[str] = field(default_factory=list)


@dataclass
class Order:
    """One OBR with its ORC, the NTE text after it, its results and any SPM."""

    obr: Fields
    number: int
    orc: Fields | None = None
    orc_number: int = 0
    notes: list[str] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    specimens: list = field(default_factory=list)


def convert(message, feed) -> Conversion:
    """The message as a transaction Bundle (see the module's docstring); raises Held (no patient matched),
    Invalid or NotAccepted. Reads the record (the patient, the code mapping, the reports held), never writes."""
    kind = segments.message_type(message)
    if kind != ACCEPTED:
        raise NotAccepted(f"{kind or 'This message type'} is not a result message carerecord takes (ORU^R01).")
    organisation = feed.organisation
    orders = orders_of(message)
    mapping = codes.mapped(organisation, _test_codes(orders))
    reports = [_Report(order, organisation, mapping, _sent_at(message)) for order in orders]
    _name_reports(reports)
    built = [(report, report.resources()) for report in reports]  # every value read before the patient is sought
    subject = subject_of(message, feed)
    reference = {"reference": subject.reference}
    entries, origins = [], {}
    for index, entry in enumerate(subject.entries()):
        origins[index] = "PID"
        entries.append(entry)
    for _report, resources in built:
        for resource, origin in resources:
            resource["subject"] = reference
            origins[len(entries)] = origin
            url = f"{resource['resourceType']}/{resource['id']}"
            entries.append({"resource": resource, "request": {"method": "PUT", "url": url}})
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    return Conversion(
        bundle=bundle,
        origins=origins,
        local_id=subject.local_id,
        patient_id=subject.patient_id,
        learns=subject.learns,
    )


def _sent_at(message):
    """MSH-7, the fallback version stamp; one that cannot be read is no stamp (the pipeline reports MSH-7 itself)."""
    try:
        return segments.timestamp(segments.text(message, "MSH.7.1"), "MSH-7")
    except Invalid:
        return None


# --- the message's structure ------------------------------------------------------------------------------------


def orders_of(message) -> list[Order]:
    """The OBR groups in order, each with its ORC, notes, OBX (and their notes) and SPM. Raises Invalid for an OBX
    before any OBR or a message with no OBR, NotAccepted for a second patient."""
    orders, counts, pending_orc, orc_number, note_target, last = [], Counter(), None, 0, None, ""
    for seg in message:
        name = str(seg[0])
        counts[name] += 1
        if name == "PID" and counts[name] > 1:
            raise NotAccepted("Results for more than one patient in one message: carerecord takes one per message.")
        if name == "ORC":
            pending_orc, orc_number, note_target = Fields(seg), counts[name], None
        elif name == "OBR":
            order = Order(obr=Fields(seg), number=counts[name], orc=pending_orc, orc_number=orc_number)
            _check_order(order)
            orders.append(order)
            pending_orc, note_target = None, order.notes
        elif name == "OBX":
            if not orders:
                raise _invalid(
                    "An OBX comes before any OBR: a result must belong to a report.",
                    f"OBX[{counts[name]}]",
                    SEGMENT_SEQUENCE,
                )
            result = Result(obx=Fields(seg), number=counts[name])
            orders[-1].results.append(result)
            note_target = result.notes
        elif name == "SPM" and orders:
            orders[-1].specimens.append(Fields(seg))
        elif name == "NTE" and note_target is not None:
            note_target.append(_note(seg))
        elif name == "ADD" and last == "NTE" and note_target:
            # ADD continues the segment before it (here an NTE's comment, as older laboratories send long ones).
            note_target[-1] = "\n".join(filter(None, [note_target[-1], segments.text(seg, "1")]))
        elif name in ("PID", "PV1") and not orders:
            note_target = None  # an NTE on the patient or the visit is no result's
        if name != "ADD":
            last = name
    if not orders:
        raise _invalid("An ORU^R01 needs at least one OBR (a result report).", "OBR", SEGMENT_SEQUENCE)
    return orders


def _note(nte) -> str:
    return "\n".join(_whole(rep) for rep in segments.repetitions(nte, "3"))


def _check_order(order: Order) -> None:
    where = f"OBR[{order.number}]"
    if order.orc is not None:
        control = order.orc("1").upper()
        if control not in ("", "RE"):
            raise _invalid(
                f"ORC-1 {control!r} is not RE (observations to follow): a result message reports, it does not order.",
                f"ORC[{order.orc_number}]-1",
                TABLE_VALUE,
            )
        for number, what in ((2, "placer"), (3, "filler")):
            in_orc, in_obr = order.orc(f"{number}.1"), order.obr(f"{number}.1")
            if in_orc and in_obr and in_orc != in_obr:
                raise Invalid(
                    f"OBR-{number} {in_obr!r} and ORC-{number} {in_orc!r} give different {what} order numbers.",
                    f"{where}-{number}",
                )
    if not _order_number(order)[0]:
        raise _invalid(
            "An OBR needs an order number (filler OBR-3 or placer OBR-2) to be kept apart from other reports.",
            f"{where}-3",
            REQUIRED,
        )
    if not order.obr("4.1") and not order.obr("4.2"):
        raise _invalid("An OBR needs the test it reports (OBR-4).", f"{where}-4", REQUIRED)
    status = order.obr("25").upper()
    if status not in REPORT_STATUS:
        raise _invalid(f"OBR-25 {status!r} is not a result status (HL7 table 0123).", f"{where}-25", TABLE_VALUE)


def _order_number(order: Order) -> tuple[str, str]:
    """The filler order number (the laboratory's own) and its namespace, else the placer's."""
    for number in (3, 2):
        value = order.obr(f"{number}.1") or (order.orc(f"{number}.1") if order.orc is not None else "")
        if value:
            return value, order.obr(f"{number}.2")
    return "", ""


def _test_codes(orders: list[Order]) -> list[tuple[str, str]]:
    found = []
    for order in orders:
        found.append((order.obr("4.3"), order.obr("4.1")))
        found.extend((r.obx("3.3"), r.obx("3.1")) for r in order.results)
    return found


def _whole(rep) -> str:
    """A repetition's whole text, components and all, unescaped (\\.br\\ a line break)."""
    value = str(rep)
    if rep.esc in value:
        with contextlib.suppress(ValueError, IndexError):  # a malformed escape: kept as sent
            value = unescape(rep, value)
    return value.replace("\r", "\n").strip()


# --- building ---------------------------------------------------------------------------------------------------


class _Report:
    """One OBR and its OBX as FHIR resources (without their subject, set once the patient is known)."""

    def __init__(self, order: Order, organisation, mapping: dict, sent_at):
        self.order, self.organisation, self.mapping = order, organisation, mapping
        obr = order.obr
        self.where = f"OBR[{order.number}]"
        self.status = REPORT_STATUS[obr("25").upper()]
        reported = segments.timestamp(obr("22.1"), f"{self.where}-22")
        self.stamp = reported or sent_at
        self.effective = (
            segments.partial_date(obr("7.1"), f"{self.where}-7")
            or segments.partial_date(obr("8.1"), f"{self.where}-8")
            or next(
                (moment for spm in order.specimens if (moment := segments.partial_date(spm("17.1"), "SPM-17"))),
                None,
            )
        )
        self.issued = reported.isoformat(timespec="seconds") if reported else None
        self.parent = (obr("26.1.1"), obr("26.2"))
        self.id = ""  # set by _name_reports, which also tells two OBRs of one order and test apart
        self.name = obr("4.2") or obr("4.1")
        self.results = _distinct(order.results)

    @property
    def parts(self) -> list[str]:
        number, namespace = _order_number(self.order)
        return [number, namespace, self.order.obr("4.1"), *self.parent]

    def resources(self) -> list[tuple[dict, str]]:
        observations, occurrences, sub_ids = [], Counter(), {}
        for result in self.results:
            sub_ids.setdefault(result.obx("3.1"), set()).add(result.obx("4"))
        several = {code for code, found in sub_ids.items() if len(found) > 1}  # ISOLATE 1, ISOLATE 2: named so
        for result in self.results:
            code, sub_id = result.obx("3.1"), result.obx("4")
            occurrences[code, sub_id] += 1
            # The report's id has a fixed number of parts, so this never reads as another report's result.
            key = f"{self.id}-{fhir_id(code, sub_id, str(occurrences[code, sub_id]))}"
            if len(key) > MAX_ID:
                key = fhir_id(key)
            observations.append((self._observation(result, key, code in several), f"OBX[{result.number}]"))
        report = self._report([resource["id"] for resource, _ in observations], observations)
        return [(report, self.where), *observations]

    def _meta(self) -> dict:
        return {"lastUpdated": self.stamp.isoformat(timespec="seconds")} if self.stamp else {}

    def _report(self, ids: list[str], observations) -> dict:
        obr = self.order.obr
        conclusion = [note for note in self.order.notes if note]
        for resource, _ in observations:
            for note in resource.get("note", []):
                conclusion.append(f"{resource['code'].get('text', '')}: {note['text']}")
        resource = {
            "resourceType": "DiagnosticReport",
            "id": self.id,
            "meta": self._meta(),
            "identifier": self._identifiers(),
            "status": self.status,
            "category": [{"coding": [{"system": DIAGNOSTIC_SECTION, "code": "LAB", "display": "Laboratory"}]}],
            "code": self._concept(obr, 4, text=self.name),
            "effectiveDateTime": self.effective,
            "issued": self.issued,
            "specimen": [{"display": text} for text in self._specimens()],
            "result": [{"reference": f"Observation/{key}"} for key in ids],
            "conclusion": "\n".join(conclusion),
        }
        return _pruned(resource)

    def _identifiers(self) -> list[dict]:
        identifiers = []
        for number, code, kind in ((2, "PLAC", "placer"), (3, "FILL", "filler")):
            value = self.order.obr(f"{number}.1") or (
                self.order.orc(f"{number}.1") if self.order.orc is not None else ""
            )
            if not value:
                continue
            namespace = self.order.obr(f"{number}.2")
            system = sender_system(self.organisation.ods_code, f"{kind}-order-number")
            identifiers.append(
                {
                    "type": {"coding": [{"system": IDENTIFIER_TYPE, "code": code}]},
                    "system": f"{system}/{fhir_id(namespace)}" if namespace else system,
                    "value": value,
                }
            )
        return identifiers

    def _specimens(self) -> list[str]:
        """OBR-15 (v2.3–2.4 specimen source: code&text, or WinPath's code^text) and SPM-4 (v2.5+), as words."""
        obr, found = self.order.obr, []
        source = obr("15.1.2") or obr("15.2") or obr("15.1.1")
        if source:
            found.append(source)
        for spm in self.order.specimens:
            kind = spm("4.2") or spm("4.1")
            if kind and kind not in found:
                found.append(kind)
        return found

    def _concept(self, fields: Fields, number: int, *, text: str = "") -> dict:
        """A test code (OBR-4, OBX-3: CE/CWE): the national code IG mapped it to, the code as sent in the sender's
        system, its alternate code; the words as sent."""
        code, words, system = (fields(f"{number}.{part}") for part in (1, 2, 3))
        codings = []
        if national := self.mapping.get((system, code)):
            codings.append(dict(national))
        codings.extend(_codings(fields, f"{number}.", self.organisation))
        concept = {"coding": codings, "text": text or fields(f"{number}.9") or words or code}
        return _pruned(concept)

    def _observation(self, result: Result, key: str, with_sub_id: bool) -> dict:
        obx, where = result.obx, f"OBX[{result.number}]"
        status_sent = obx("11").upper()
        if status_sent not in RESULT_STATUS:
            raise _invalid(
                f"OBX-11 {status_sent!r} is not a result status (HL7 table 0085): the value cannot be shown.",
                f"{where}-11",
                TABLE_VALUE,
            )
        name = obx("3.2") or obx("3.1")
        sub_id = obx("4")
        resource = {
            "resourceType": "Observation",
            "id": key,
            "meta": self._meta(),
            "status": RESULT_STATUS[status_sent],
            "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "laboratory"}]}],
            "code": self._concept(obx, 3, text=f"{name} ({sub_id})" if with_sub_id and sub_id else name),
            "effectiveDateTime": segments.partial_date(obx("14.1"), f"{where}-14") or self.effective,
            "issued": self.issued,
        }
        resource.update(value_of(obx, where, self.organisation))
        if status_sent == "U" and "dataAbsentReason" in resource:
            raise _invalid("OBX-11 U (made final) without its value: send the value with F.", f"{where}-5", REQUIRED)
        if "dataAbsentReason" in resource:
            resource["dataAbsentReason"] = _absent(status_sent)
        resource["interpretation"] = interpretations(obx)
        resource["referenceRange"] = reference_ranges(obx)
        notes = [note for note in result.notes if note]
        resource["note"] = [{"text": "\n".join(notes)}] if notes else None
        return _pruned(resource)


def _name_reports(reports: list[_Report]) -> None:
    """Each report's id (its order, test and isolate, and which of several such OBRs it is), and a sensitivities
    report's name: the isolate it belongs to, found among the message's results."""
    seen = Counter()
    for report in reports:
        seen[tuple(report.parts)] += 1
        report.id = fhir_id(*report.parts, str(seen[tuple(report.parts)]))
        parent_code, parent_sub_id = report.parent
        if parent_code:
            organism = _isolate(reports, report, parent_code, parent_sub_id)
            isolate = " ".join(filter(None, [parent_code, parent_sub_id]))
            report.name = f"{report.name} ({isolate}: {organism})" if organism else f"{report.name} ({isolate})"


def _isolate(reports: list[_Report], child: _Report, code: str, sub_id: str) -> str:
    """The organism a sensitivities OBR's parent result names (a coded OBX with that code and sub-id in a report
    of the same order)."""
    number = _order_number(child.order)[0]
    for report in reports:
        if report is child or _order_number(report.order)[0] != number:
            continue
        for result in report.results:
            obx = result.obx
            matches = obx("3.1") == code and obx("4") == sub_id
            if matches and obx("2").upper() in CODED_TYPES:
                return obx("5.2") or obx("5.1")
    return ""


def _distinct(results: list[Result]) -> list[Result]:
    """The OBR's results with any repeated whole (everything but the set id, and its notes) kept once."""
    seen, kept = set(), []
    for result in results:
        fingerprint = ("|".join(str(part) for part in list(result.obx.segment)[2:]), tuple(result.notes))
        if fingerprint not in seen:
            seen.add(fingerprint)
            kept.append(result)
    return kept


# --- values -----------------------------------------------------------------------------------------------------


def value_of(obx, where: str, organisation) -> dict:
    """OBX-5 as FHIR's value[x] by its type (OBX-2), or {"dataAbsentReason": None} when none was sent."""
    kind = obx("2").upper()
    reps = obx.repetitions("5")
    if not reps:
        return {"dataAbsentReason": None}
    if not kind:
        raise _invalid("OBX-2 (the value's type) is required when OBX-5 holds a value.", f"{where}-2", REQUIRED)
    if kind == "NM":
        return _numeric(_whole(reps[0]), obx, where)
    if kind == "SN":
        return _structured_numeric(reps[0], obx, where)
    if kind in TEXT_TYPES:
        return {"valueString": "\n".join(_whole(rep) for rep in reps)}
    if kind in CODED_TYPES:
        return {"valueCodeableConcept": _coded_value(reps, organisation)}
    if kind in DATE_TYPES:
        return {"valueString": _date_value(_whole(reps[0]), kind, where)}
    raise NotAccepted(f"{where}: a value of type {kind} (OBX-2) is not one carerecord takes (NM, SN, ST, TX, FT, CE).")


def _numeric(text: str, obx, where: str) -> dict:
    found = _NUMBER.match(text)
    if not found:
        raise _invalid(f"OBX-5 {text!r} is not a number, as its type NM says.", f"{where}-5", DATA_TYPE)
    if found["comparator"]:
        return {"valueString": " ".join(filter(None, [f"{found['comparator']}{found['number']}", _unit_words(obx)]))}
    return {"valueQuantity": quantity(found["number"], obx)}


def _structured_numeric(rep, obx, where: str) -> dict:
    """SN: comparator ^ number ^ separator/suffix ^ number. One number (with no comparator) is a quantity; a ratio,
    range or comparator is shown as written."""
    comparator, first, separator, second = (segments.text(rep, str(part)) for part in (1, 2, 3, 4))
    if not first:
        raise _invalid("OBX-5 is a structured numeric (SN) with no number.", f"{where}-5", REQUIRED)
    if not _NUMBER.match(first) or (second and not _NUMBER.match(second)):
        raise _invalid(f"OBX-5 {_whole(rep)!r} is not a structured numeric (SN).", f"{where}-5", DATA_TYPE)
    if not (comparator or separator or second) and _NUMBER.match(first)["comparator"] is None:
        return {"valueQuantity": quantity(first, obx)}
    written = f"{comparator}{first}{separator}{second}"
    return {"valueString": " ".join(filter(None, [written, _unit_words(obx)]))}


def _number(text: str) -> int | float:
    text = text.strip().lstrip("+")
    return int(text) if re.fullmatch(r"-?\d+", text) else float(text)


def _unit(obx) -> tuple[str, str]:
    """OBX-6 (CE): the unit as sent (its words, else its code), and its UCUM code when it is UCUM."""
    code, words, system = (obx(f"6.{part}") for part in (1, 2, 3))
    shown = words or code
    if system and system.upper() != "UCUM":
        return shown, ""
    return shown, code if codes.is_ucum(code) else ""


def _unit_words(obx) -> str:
    return _unit(obx)[0]


def quantity(number: str, obx) -> dict:
    unit, code = _unit(obx)
    found = {"value": _number(number), "unit": unit or None}
    if code:
        found.update(system=UCUM, code=code)
    return _pruned(found)


def _coded_value(reps, organisation) -> dict:
    if len(reps) > 1:  # several answers: one value, worded, rather than their codes run together as synonyms
        return {"text": "; ".join(_words(rep) for rep in reps)}
    return _pruned(
        {"coding": _codings(lambda path: segments.text(reps[0], path), "", organisation), "text": _words(reps[0])}
    )


def _words(rep) -> str:
    """A coded value's words: CWE-9 original text, else its text, else its alternate's, else its code."""
    return next((found for part in ("9", "2", "5", "1") if (found := segments.text(rep, part))), "")


def _codings(read, prefix: str, organisation) -> list[dict]:
    """A CE/CWE's code and alternate code as FHIR codings: components 1-3 and 4-6, read by `read` (a segment's
    Fields, with the field's number as `prefix` "3.", or a repetition's reader with none)."""
    codings = []
    for first in (1, 4):
        code, words, system = (read(f"{prefix}{first + part}") for part in (0, 1, 2))
        if code:
            codings.append(_pruned({"system": codes.system_uri(system, organisation), "code": code, "display": words}))
    return codings


def _date_value(text: str, kind: str, where: str) -> str:
    if kind == "TM":
        return text
    return segments.partial_date(text, f"{where}-5") or text


def _absent(status: str) -> dict:
    code, words = {
        "X": ("not-performed", "Result cannot be obtained"),
        "N": ("not-asked", "Not asked"),
        "D": ("unknown", "Deleted"),
        "W": ("error", "Posted in error"),
    }.get(status, ("unknown", "No value given"))
    return {"coding": [{"system": DATA_ABSENT, "code": code}], "text": words}


def interpretations(obx) -> list[dict]:
    """OBX-8 (repeating): each table 0078 flag as its v3 ObservationInterpretation code; other words kept as text."""
    found = []
    for rep in obx.repetitions("8"):
        sent = segments.text(rep, "1").strip()
        code = FLAG_ALIASES.get(sent.upper(), sent.upper())
        if code in INTERPRETATIONS:
            found.append(
                {"coding": [{"system": OBSERVATION_INTERPRETATION, "code": code, "display": INTERPRETATIONS[code]}]}
            )
        elif sent:
            found.append({"text": segments.text(rep, "2") or sent})
    return found


def reference_ranges(obx) -> list[dict]:
    """OBX-7: "low-high" as two numbers (in the value's unit); "<x" / ">x" as one bound with the words sent; any
    other range as the words sent."""
    sent = obx("7")
    if not sent:
        return []
    if found := _RANGE.match(sent):
        return [{"low": quantity(found["low"], obx), "high": quantity(found["high"], obx)}]
    if found := _BOUND.match(sent):
        side = "high" if found["comparator"] in ("<", "<=", "≤") else "low"
        return [{side: quantity(found["number"], obx), "text": sent}]
    return [{"text": sent}]


# --- ids --------------------------------------------------------------------------------------------------------


def fhir_id(*parts: str) -> str:
    """Parts joined as one FHIR id (A-Za-z0-9-., at most 64): any other character (and "-" and "." themselves)
    written `.XX` in hex, "-" between parts, so two different keys never become one id; a longer one shortened with
    a digest of the whole."""
    made = "-".join(
        "".join(c if _ID_SAFE.match(c) else "".join(f".{b:02X}" for b in c.encode()) for c in part) for part in parts
    )
    if len(made) <= MAX_ID:
        return made
    return made[: MAX_ID - 17] + "-" + hashlib.sha256(made.encode()).hexdigest()[:16]


def _invalid(reason: str, location: str, code: str) -> Invalid:
    """Invalid with the table 0357 code its ERR segment gives (read by feeds.receive)."""
    error = Invalid(reason, location)
    error.code = code
    return error


def _pruned(resource: dict) -> dict:
    return {key: value for key, value in resource.items() if value not in (None, "", [], {})}
