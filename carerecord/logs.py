"""Logging filters: nothing we log carries a query string (one may hold an NHS number)."""

import logging
import re

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
