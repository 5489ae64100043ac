"""Patient identifiers cut from free text that leaves the record: log lines, and the errors a queued job keeps
for the dead-letter list. Lowest layer, so every app can use it."""

import re

# An NHS number (ten digits, or 3-3-4 spaced) and a patient's record id (a UUID with its dashes: the request ids
# are dashless hex and stay).
_NHS_NUMBER = re.compile(r"(?<!\d)\d{3}[ -]?\d{3}[ -]?\d{4}(?!\d)")
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")


def without_patient_identifiers(text: str) -> str:
    return _UUID.sub("[id]", _NHS_NUMBER.sub("[nhs-number]", text))
