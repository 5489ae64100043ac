"""RelatedPerson <-> SupportPerson (the patient's support network: carers, next of kin, family).

Out, a restricted patient's (S-flag, H-11) support network is never given: the record's query for it
(`sharing.record.support_network`) returns no one, so no RelatedPerson is read, searched or listed in
$everything.
"""

from patients.models import SupportPerson

from ..context import Unmappable
from ..outcome import error
from ..registry import builds, maps
from ..serialise import patient_reference
from .common import codes_in, human_name, is_sensitive, last_updated, texts_of

Relationship = SupportPerson.Relationship
# HL7 v3 RoleCode (and plain words), most specific first: a wife who is also next of kin is next of kin.
RELATIONSHIP_RULES = [
    ({"POWATT", "HPOWATT", "lpa", "lasting power of attorney"}, Relationship.LASTING_POWER_OF_ATTORNEY),
    ({"NOK", "next-of-kin", "next of kin"}, Relationship.NEXT_OF_KIN),
    ({"CAREGIVER", "carer", "caregiver"}, Relationship.CARER),
    ({"SPS", "WIFE", "HUSB", "DOMPART", "SIGOTHR", "partner", "spouse", "wife", "husband"}, Relationship.PARTNER),
    ({"PRN", "MTH", "FTH", "GUARD", "NPRN", "STPPRN", "parent", "mother", "father", "guardian"}, Relationship.PARENT),
    ({"CHILD", "SON", "DAU", "NCHILD", "STPCHLD", "son", "daughter"}, Relationship.CHILD),
    ({"FRND", "friend"}, Relationship.FRIEND),
]


def relationship_of(concepts) -> str:
    words = {code for concept in concepts or [] for code in codes_in(concept)}
    words |= {text.lower() for text in texts_of(concepts)}
    return next((kind for needles, kind in RELATIONSHIP_RULES if words & needles), Relationship.OTHER)


@maps("RelatedPerson")
def map_related_person(resource, ctx):
    name = human_name(resource.name)
    if not name:
        raise Unmappable(error("required", "A related person needs a name.", "RelatedPerson.name"))
    phones = [t.value for t in resource.telecom or [] if t.system == "phone" and t.value]
    return SupportPerson, {
        "patient_id": ctx.patient_id(resource.patient, "RelatedPerson.patient"),
        "source_organisation_id": ctx.organisation.pk,
        "source_updated_at": last_updated(resource),
        "sensitive": is_sensitive(resource),
        "name": name,
        "relationship": relationship_of(resource.relationship),
        "phone": phones[0] if phones else "",
        "notes": ", ".join(texts_of(resource.relationship)),
    }


@builds(SupportPerson)
def related_person(person: SupportPerson) -> dict:
    """id and meta (source, sensitive) are added by serialise.entry."""
    return {
        "resourceType": "RelatedPerson",
        "patient": patient_reference(person.patient_id),
        "relationship": [{"text": person.get_relationship_display()}],
        "name": [{"text": person.name}],
        "telecom": [{"system": "phone", "value": person.phone}] if person.phone else None,
    }
