"""A resource as carerecord built or kept it: FHIR JSON data, written out with orjson, not rebuilt as an R4B model.

Building and serialising each outgoing resource through fhir.resources' pydantic models was about half of a
search's time (issue 19). What is built here is already FHIR's shape (the builders write FHIR JSON; a kept
resource is what its sender sent, validated when it came in), so the JSON answer is written from the data as it
is. The R4B model is still made where it is needed: for XML, and for any code that reads an element
(`resource.meta`, `resource.content`...), which then gets the model itself; from then on the model is what is
written, so a change made to it is never lost.

The tests hold the fast path to the model's: with FHIR_VERIFY_OUTPUT on (the test suite), every JSON written
here is compared with what the R4B model, validated from the same data, writes; a difference fails the test
(H-10: a value or its meaning must not change on the way out).
"""

import decimal
import json
import re

import orjson
from django.conf import settings

from .parse import resource_class


class OutputMismatch(AssertionError):
    """The fast JSON and the R4B model's differ (raised only with FHIR_VERIFY_OUTPUT)."""


def _default(value):
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise TypeError(f"{value} is not a FHIR decimal")
        return orjson.Fragment(str(value).encode())  # as held: 5.10 stays 5.10 (FHIR decimals keep precision)
    if isinstance(value, Resource):
        return value.as_json_data()
    if hasattr(value, "model_dump_json"):  # an R4B model among built data (an OperationOutcome, say)
        return orjson.Fragment(value.model_dump_json().encode())
    raise TypeError(f"{type(value).__name__} is not JSON")


def dumps(data) -> bytes:
    """FHIR JSON of built data (dicts, lists, strings, numbers, Decimals, dates and times, Resources)."""
    return orjson.dumps(data, default=_default, option=orjson.OPT_UTC_Z)


class Resource:
    """One resource's FHIR JSON data (`data`, with its resourceType), answering what responses ask of an R4B
    model: its type, id, JSON and XML; anything else is read from the R4B model, made on first use."""

    __slots__ = ("_model", "data")

    def __init__(self, data: dict):
        self.data = data
        self._model = None

    def get_resource_type(self) -> str:
        return self.data["resourceType"]

    @property
    def id(self):
        return self._model.id if self._model is not None else self.data.get("id")

    @id.setter
    def id(self, value):
        if self._model is not None:
            self._model.id = value
        else:
            self.data["id"] = value

    def model(self):
        """The R4B model of this resource; from now on it, not `data`, is what is written."""
        if self._model is None:
            self._model = resource_class(self.data["resourceType"]).model_validate(self.data)
        return self._model

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.model(), name)

    def __setattr__(self, name, value):
        if name in Resource.__slots__ or name == "id":
            object.__setattr__(self, name, value)
        else:
            setattr(self.model(), name, value)

    def as_json_data(self):
        """What to embed in a larger JSON document (a Bundle's entry): the data, or the model's JSON once made."""
        if self._model is not None:
            return orjson.Fragment(self._model.model_dump_json().encode())
        if getattr(settings, "FHIR_VERIFY_OUTPUT", False):
            verify(self.data)
        return self.data

    def model_dump_json(self) -> str:
        if self._model is not None:
            return self._model.model_dump_json()
        body = dumps(self.data)
        if getattr(settings, "FHIR_VERIFY_OUTPUT", False):
            verify(self.data, body)
        return body.decode()

    def model_dump_xml(self):
        return self.model().model_dump_xml()


def model_of(resource):
    """An R4B model for code that needs one (a Bundle model's entry): a Resource's model, or the model itself."""
    return resource.model() if isinstance(resource, Resource) else resource


def verify(data: dict, body: bytes | None = None) -> None:
    """Fail when the JSON written from `data` says anything other than the R4B model validated from it."""
    body = body if body is not None else dumps(data)
    compare(body, resource_class(data["resourceType"]).model_validate(data), data["resourceType"])


# A time in UTC as a sender wrote it ("+00:00") and as R4B writes it ("Z"): the same instant, kept as sent.
_UTC_OFFSET = re.compile(r"^(\d{4}-\d\d-\d\dT[\d:.]+)\+00:00$")


def map_strings(value, change):
    """JSON `value` with `change` applied to every string in it (keys are left as they are)."""
    if isinstance(value, dict):
        return {key: map_strings(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return [map_strings(item, change) for item in value]
    if isinstance(value, str):
        return change(value)
    return value


def _same_instants(value):
    return map_strings(value, lambda text: _UTC_OFFSET.sub(r"\1Z", text))


def compare(body: bytes, model, what: str) -> None:
    """Fail when `body`, the fast JSON, says anything other than `model`, its R4B model, writes (a UTC time
    written "+00:00" and "Z" is one instant)."""
    ours, theirs = _same_instants(json.loads(body)), _same_instants(json.loads(model.model_dump_json()))
    if ours != theirs:
        raise OutputMismatch(f"fast {what} JSON differs from R4B's:\nours:   {ours}\nR4B's:  {theirs}")
