"""Which London boroughs each region covers, so a patient can tell which area is theirs.

One list, read by the opt-out form (each region's hint) and the "How to opt out" page. The regions are London's
five integrated care systems; the City of London counts with North East London.
"""

from .models import Region

BOROUGHS = {
    Region.NCL: ("Barnet", "Camden", "Enfield", "Haringey", "Islington"),
    Region.NEL: (
        "Barking and Dagenham",
        "City of London",
        "Hackney",
        "Havering",
        "Newham",
        "Redbridge",
        "Tower Hamlets",
        "Waltham Forest",
    ),
    Region.NWL: (
        "Brent",
        "Ealing",
        "Hammersmith and Fulham",
        "Harrow",
        "Hillingdon",
        "Hounslow",
        "Kensington and Chelsea",
        "Westminster",
    ),
    Region.SEL: ("Bexley", "Bromley", "Greenwich", "Lambeth", "Lewisham", "Southwark"),
    Region.SWL: ("Croydon", "Kingston upon Thames", "Merton", "Richmond upon Thames", "Sutton", "Wandsworth"),
}

# Which area applies: the GP practice's decides, as it is the practice that shares most of the record.
WHICH_AREA = (
    "Choose the area where the patient's GP practice is. If they are not registered with a GP practice, "
    "choose the area where they live."
)


def boroughs_of(region: str) -> str:
    """The region's boroughs as one line for a hint: "Barnet, Camden, Enfield, Haringey, Islington"."""
    return ", ".join(BOROUGHS[Region(region)])


def areas() -> list[dict]:
    """Every region with its boroughs, in Region's order: for a page listing them all."""
    return [{"region": region, "boroughs": boroughs_of(region)} for region in Region]
