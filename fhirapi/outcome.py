"""OperationOutcome builders: every problem the API reports is an issue with a FHIR issue-type code and, where
one element is to blame, its FHIRPath `expression` — never a bare error string, and never silence."""

import re
from dataclasses import dataclass

from fhir.resources.R4B.operationoutcome import OperationOutcome
from pydantic import ValidationError


@dataclass(frozen=True)
class Issue:
    severity: str  # fatal | error | warning | information
    code: str  # FHIR issue-type: invalid, required, not-found, not-supported, security, duplicate, ...
    diagnostics: str
    expression: str = ""

    def __post_init__(self):
        # What was sent may be quoted here, so an issue never holds what JSONB, XML or UTF-8 cannot carry.
        object.__setattr__(self, "diagnostics", printable(self.diagnostics))
        object.__setattr__(self, "expression", printable(self.expression))

    @property
    def is_error(self) -> bool:
        return self.severity in ("fatal", "error")


def error(code: str, diagnostics: str, expression: str = "") -> Issue:
    return Issue("error", code, diagnostics, expression)


def warning(code: str, diagnostics: str, expression: str = "") -> Issue:
    return Issue("warning", code, diagnostics, expression)


def information(diagnostics: str, expression: str = "") -> Issue:
    return Issue("information", "informational", diagnostics, expression)


# What JSON (as UTF-8) or XML 1.0 cannot carry: diagnostics and expressions quote what was sent, which may hold it.
UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def printable(text: str) -> str:
    """`text` with each character JSON or XML cannot carry written as a \\uXXXX escape."""
    return UNPRINTABLE.sub(lambda match: f"\\u{ord(match[0]):04x}", text)


def operation_outcome(issues: list[Issue]) -> OperationOutcome:
    if not issues:
        issues = [information("All OK")]
    return OperationOutcome(
        issue=[
            {
                "severity": issue.severity,
                "code": issue.code,
                "diagnostics": issue.diagnostics,
                **({"expression": [issue.expression]} if issue.expression else {}),
            }
            for issue in issues
        ]
    )


def fhirpath(prefix: str, location: tuple) -> str:
    """pydantic's error location ('component', 0, 'code') as FHIRPath: Observation.component[0].code."""
    path = prefix
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in ("__root__",):
            path += f".{part}"
    return path


def from_validation_error(exc: ValidationError, prefix: str) -> list[Issue]:
    """One issue per invalid element. XML is validated element by element (fhir.resources builds nested
    models as it reads), so there the location starts at the innermost model: `prefix` is then its name."""
    issues = []
    for problem in exc.errors(include_url=False):
        code = "required" if problem["type"] in ("missing", "model_field_validation.missing") else "invalid"
        if problem["type"] == "extra_forbidden":
            code = "structure"
        issues.append(error(code, problem["msg"], fhirpath(prefix, problem["loc"])))
    return issues
