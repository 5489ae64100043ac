"""Logging: nothing we log carries a query string or a patient identifier (an NHS number, a record id), every
line names the request it belongs to, and production can log one JSON object a line (LOG_FORMAT=json)."""

import contextvars
import json
import logging
import re

from audit.redaction import without_patient_identifiers

# A path followed by its query: "/fhir/Patient?identifier=...|9990000018" keeps "/fhir/Patient".
_QUERY = re.compile(r"(/[^\s?\"'<>]*)\?[^\s\"'<>]*")


def without_query_string(text: str) -> str:
    return _QUERY.sub(r"\1", text)


class WithoutQueryString(logging.Filter):
    """Rewrites each record's message with every URL's query string cut off (runserver's request lines,
    anything else that quotes a URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        if "?" in message:
            record.msg, record.args = without_query_string(message), ()
        return True


# --- issue 20: structured logs carrying the request id, and no patient identifiers ------------------------------

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


class WithoutPatientIdentifiers(logging.Filter):
    """NHS numbers and record ids cut from each record's message (a converter's or a library's words may quote
    one), and the request being answered named on the record (`request_id`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        cleaned = without_patient_identifiers(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line (LOG_FORMAT=json): time, level, logger, message, request id, and the fields a
    caller passed as `extra` that are plain values (the request line's route, status, duration)."""

    PLAIN = (str, int, float, bool)
    STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", ""),
        }
        out.update(
            (key, value)
            for key, value in record.__dict__.items()
            if key not in self.STANDARD and isinstance(value, self.PLAIN)
        )
        if record.exc_info:
            out["exception"] = without_patient_identifiers(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)
