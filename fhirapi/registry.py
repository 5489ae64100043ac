"""What the FHIR API does with each record category, registered by the mapping modules themselves.

Each module under `mapping/` holds one area's FHIR both ways: `@maps("Condition")` on the function that turns
an incoming resource into a row, `@builds(Condition)` on the one that turns a row back into a resource, and
`reads("Condition", Category.CONDITIONS, rank=...)` for the read API. `mapping/__init__.py` imports every
module, so adding a category here is one new module; the patients registry below never names FHIR.
"""

from collections.abc import Callable
from dataclasses import dataclass

from patients.categories import Category

# Incoming: resource type -> mapper(resource, context) -> (model, fields), for the generic bulk upsert.
MAPPERS: dict[str, Callable] = {}
# Outgoing: model -> builder(row) -> dict with "resourceType" (id and meta are added by serialise.entry).
BUILDERS: dict[type, Callable] = {}


@dataclass(frozen=True)
class ReadType:
    resource_type: str
    category: Category
    rank: int  # where $everything lists this type


_READS: dict[str, ReadType] = {}


def _registrar(table: dict, key, name: str):
    def decorate(function):
        if key in table:
            raise ValueError(f"{name} is already registered to {table[key].__qualname__}")
        table[key] = function
        return function

    return decorate


def maps(resource_type: str):
    """Decorator: the mapper for an incoming resource type."""
    return _registrar(MAPPERS, resource_type, resource_type)


def builds(model: type):
    """Decorator: the builder of a model's outgoing resource."""
    return _registrar(BUILDERS, model, model.__name__)


def reads(resource_type: str, category: Category, *, rank: int) -> None:
    """`resource_type` can be read and searched, and lists `category`'s entries."""
    _READS[resource_type] = ReadType(resource_type, category, rank)


def searchable() -> dict[str, Category]:
    """Readable types and their categories, in the order $everything lists them."""
    return {read.resource_type: read.category for read in sorted(_READS.values(), key=lambda read: read.rank)}
