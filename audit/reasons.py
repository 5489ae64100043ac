"""Why a look at a record happened, or was refused, in words: the access log's basis and reason codes read aloud.

A search or a list of patients is logged with basis "none" (no record was opened, so no basis was needed): it
reads as what it was, "Search (no record opened)", never as "No basis", which sounds like a breach. Refusals say
why (the reason codes of `sharing.access.Reason`, kept as data here: audit imports nothing of ours;
tests/audit/test_pages.py holds the two lists together).
"""

from .models import AccessBasis, AccessOutcome

BASES = {
    AccessBasis.CARE_TEAM: "Care team",
    AccessBasis.BREAK_GLASS: "Emergency access (break glass)",
    AccessBasis.IG_ADMIN: "Information governance",
    AccessBasis.NONE: "No basis",
}
SEARCH = "Search (no record opened)"
LIST = "List of patients"

# sharing.access.Reason, and the one reason the list writers add ("no-match": a search that found no one).
REFUSALS = {
    "not-signed-in": "not signed in",
    "no-professional-profile": "no professional profile",
    "inactive": "their account or organisation is not active",
    "no-care-relationship": "no care relationship with the patient",
    "no-such-patient": "no patient with this id in the record",
    "no-match": "no patient found",
}

# sharing.models.BreakGlass.ReasonCode, as a patient reads it in their letter ("to give you emergency treatment").
BREAK_GLASS_REASONS = {
    "emergency-treatment": "to give you emergency treatment",
    "unable-to-consent": "you were unable to consent at the time",
    "care-not-recorded": "to care for you before their team's relationship with you was recorded",
    "safeguarding": "safeguarding",
    "other": "another reason, which they wrote down",
}


def reason_words(reason: str) -> str:
    """A reason code in words; one not known reads as its own words."""
    return REFUSALS.get(reason) or BREAK_GLASS_REASONS.get(reason) or (reason or "").replace("-", " ")


def basis_name(*, basis: str, outcome: str, page: str) -> str:
    """What the row was: "Care team", "Emergency access (break glass)", "Search (no record opened)"...
    Refusals say "Refused" (their reason: `how`)."""
    if outcome == AccessOutcome.REFUSED:
        return "Refused"
    if basis == AccessBasis.NONE or not basis:
        if page.startswith("search:"):
            return SEARCH
        if page.startswith("my-patients"):
            return LIST
    try:
        return BASES[AccessBasis(basis)]
    except ValueError:
        return basis.replace("-", " ").capitalize() or "Not recorded"


def how(*, basis: str, outcome: str, page: str, reason: str = "") -> str:
    """Outcome and basis in one phrase, for one column: "Care team", "Refused: no care relationship with the
    patient", "Search (no record opened): no patient found"."""
    name = basis_name(basis=basis, outcome=outcome, page=page)
    return f"{name}: {reason_words(reason)}" if reason else name
