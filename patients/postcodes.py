"""UK postcodes: read loosely as people type them, shown the one way ("SW9 1NQ", never "SW91NQ")."""

import dataclasses
import re


@dataclasses.dataclass(frozen=True)
class Postcode:
    outward: str  # "N19"
    inward: str = ""  # "5NF", or "" when only the outward code was typed

    @property
    def compact(self) -> str:
        return self.outward + self.inward


_OUTWARD = "[A-Z]{1,2}[0-9][A-Z0-9]?"
_FULL_POSTCODE = re.compile(f"({_OUTWARD})([0-9][A-Z]{{2}})")
_OUTWARD_ONLY = re.compile(_OUTWARD)


def parse_postcode(typed: str) -> Postcode | None:
    """A UK postcode's shape, loosely (any case, spaces anywhere): "N19 5NF", "n195nf" or just "N19"; None else."""
    compact = re.sub(r"\s+", "", typed).upper()
    if match := _FULL_POSTCODE.fullmatch(compact):
        return Postcode(match[1], match[2])
    if _OUTWARD_ONLY.fullmatch(compact):
        return Postcode(compact)
    return None


def display_postcode(value: str) -> str:
    """A postcode as written on a letter: upper case, one space before the inward code. A value that is not a
    full postcode's shape is shown as it was given (never guessed at)."""
    parsed = parse_postcode(value or "")
    if parsed is None or not parsed.inward:
        return (value or "").strip()
    return f"{parsed.outward} {parsed.inward}"
