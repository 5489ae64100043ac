"""feeds.codes: coding systems named in HL7 v2, the laboratories' code mapping, and which units are UCUM."""

import pytest

from directory.models import Organisation
from feeds import codes
from feeds.models import CodeMapping
from fhirapi.systems import LOINC, SNOMED, UCUM
from tests import factories

LAB = "https://carerecord.example/id/RRV/CodeSystem/"


@pytest.fixture
def lab(db):
    return factories.OrganisationFactory(ods_code="RRV", kind=Organisation.Kind.ACUTE_TRUST)


@pytest.mark.parametrize(
    ("name", "system"),
    [
        ("LN", LOINC),
        ("ln", LOINC),
        ("SCT", SNOMED),
        ("SNM", SNOMED),
        ("UCUM", UCUM),
        ("HL70078", "http://terminology.hl7.org/CodeSystem/v2-0078"),
        ("NULLFL", "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"),
        ("Winpath", LAB + "winpath"),
        ("WinPath", LAB + "winpath"),
        ("99zzz", LAB + "99zzz"),
        ("", LAB + "local"),
        ("my lab/codes", LAB + "my-lab-codes"),
    ],
)
def test_a_coding_system_name_is_the_national_system_or_the_senders_own(lab, name, system):
    assert codes.system_uri(name, lab) == system


def test_a_mapping_for_the_system_sent_wins_over_one_for_any_system(lab, django_assert_num_queries):
    CodeMapping.objects.create(organisation=lab, local_code="ALP", system=LOINC, code="6768-6", display="ALP")
    CodeMapping.objects.create(organisation=lab, local_system="Winpath", local_code="ALP", system=LOINC, code="77141-0")
    CodeMapping.objects.create(organisation=lab, local_code="HB", system=SNOMED, code="271026005")
    with django_assert_num_queries(1):
        found = codes.mapped(
            lab, [("WINPATH", "ALP"), ("Other", "ALP"), ("Winpath", "HB"), ("Winpath", "NA"), ("", "")]
        )
    assert found == {
        ("WINPATH", "ALP"): {"system": LOINC, "code": "77141-0"},  # its system, compared without case
        ("Other", "ALP"): {"system": LOINC, "code": "6768-6", "display": "ALP"},  # the any-system mapping
        ("Winpath", "HB"): {"system": SNOMED, "code": "271026005"},
    }


def test_another_organisations_mapping_is_not_used(lab):
    other = factories.OrganisationFactory(kind=Organisation.Kind.ACUTE_TRUST)
    CodeMapping.objects.create(organisation=other, local_code="ALP", system=LOINC, code="6768-6")
    assert codes.mapped(lab, [("Winpath", "ALP")]) == {}


def test_nothing_to_look_up_asks_nothing(lab, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert codes.mapped(lab, []) == {}


@pytest.mark.parametrize(
    "unit",
    [
        "umol/L",
        "mmol/L",
        "g/L",
        "mg/dL",
        "ng/mL",
        "pg/mL",
        "%",
        "fL",
        "L/L",
        "10*9/L",
        "10*12/L",
        "mm[Hg]",
        "mL/min/{1.73_m2}",
        "kg/m2",
        "/min",
        "{ratio}",
        "[IU]/L",
        "mU/L",
        "U/L",
        "kPa",
        "Cel",
        "a",
        "mmol/mol",
        "uL",
        "m[IU]/L",
    ],
)
def test_units_that_are_ucum(unit):
    assert codes.is_ucum(unit)


@pytest.mark.parametrize(
    "unit",
    [
        "",
        "IU/L",  # UCUM writes [IU]
        "x10^9/L",
        "x10\\S\\9/L",
        "Ratio",
        "mmHg",
        "u/l",  # the lab means enzyme units; UCUM's "u" is the atomic mass unit: never coded as that
        "gm/dl",
        "mcg/dl",
        "PER HPF",
        "x10(3)/uL",
        "mL/min/1.73m2",
        "10*/L",
        " mg/L",
        "Units",
    ],
)
@pytest.mark.hazard("H-10")
def test_units_that_are_not_ucum_get_no_code(unit):
    assert not codes.is_ucum(unit)
