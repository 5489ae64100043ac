"""The fixed tables behind the demo: organisations, teams and staff, places, tests and clinical content.

Names and codes are invented (ODS codes begin "ZZ"); clinical codes are real: SNOMED CT for conditions and
allergies, dm+d for medicines, LOINC for tests, so imports, exports and code lookups behave as with live data.
"""

import re
from dataclasses import dataclass

from directory.models import CareTeam, Organisation, Professional, Region
from patients.categories import Category
from patients.models import Allergy, CareEvent, Sex

Kind, TeamKind, Role = Organisation.Kind, CareTeam.Kind, Professional.Role
SNOMED, DMD, LOINC = "http://snomed.info/sct", "https://dmd.nhs.uk", "http://loinc.org"

# (ODS code, name, kind, region). Invented names; codes begin "ZZ" so nobody mistakes them for real ones.
ORGANISATIONS = (
    ("ZZG101", "Highgate Rise Surgery", Kind.GP_PRACTICE, Region.NCL),
    ("ZZG102", "Caledonian Road Medical Practice", Kind.GP_PRACTICE, Region.NCL),
    ("ZZG103", "Tollington Park Health Centre", Kind.GP_PRACTICE, Region.NCL),
    ("ZZG201", "Lea Bridge Group Practice", Kind.GP_PRACTICE, Region.NEL),
    ("ZZG202", "Bow Common Surgery", Kind.GP_PRACTICE, Region.NEL),
    ("ZZG203", "Stratford Village Practice", Kind.GP_PRACTICE, Region.NEL),
    ("ZZG301", "Harrow View Medical Centre", Kind.GP_PRACTICE, Region.NWL),
    ("ZZG302", "Shepherds Bush Green Surgery", Kind.GP_PRACTICE, Region.NWL),
    ("ZZG303", "Kensal Lane Practice", Kind.GP_PRACTICE, Region.NWL),
    ("ZZG401", "Peckham Rye Medical Centre", Kind.GP_PRACTICE, Region.SEL),
    ("ZZG402", "Greenwich Park Surgery", Kind.GP_PRACTICE, Region.SEL),
    ("ZZG403", "Brixton Water Lane Practice", Kind.GP_PRACTICE, Region.SEL),
    ("ZZG501", "Tooting Bec Surgery", Kind.GP_PRACTICE, Region.SWL),
    ("ZZG502", "Wimbledon Chase Medical Practice", Kind.GP_PRACTICE, Region.SWL),
    ("ZZG503", "Putney Heath Group Practice", Kind.GP_PRACTICE, Region.SWL),
    ("ZZA", "North Thames University Hospitals NHS Foundation Trust", Kind.ACUTE_TRUST, Region.NCL),
    ("ZZB", "Royal Eastbank Hospitals NHS Trust", Kind.ACUTE_TRUST, Region.NEL),
    ("ZZC", "West London Riverside Hospitals NHS Trust", Kind.ACUTE_TRUST, Region.NWL),
    ("ZZD", "South Thames Hospitals NHS Foundation Trust", Kind.ACUTE_TRUST, Region.SEL),
    ("ZZE", "St Cuthbert's University Hospital NHS Trust", Kind.ACUTE_TRUST, Region.SWL),
    ("ZZM", "Thameside Mental Health NHS Foundation Trust", Kind.MENTAL_HEALTH, Region.NCL),
    ("ZZN", "North London Community Health Services", Kind.COMMUNITY, Region.NEL),
    ("ZZS", "South London Community Health Services", Kind.COMMUNITY, Region.SWL),
    ("ZZL", "London Ambulance Service NHS Trust", Kind.AMBULANCE, Region.SEL),
    ("ZZ111", "London NHS 111 Service", Kind.NHS_111, Region.NWL),
    ("ZZO", "Capital Out-of-Hours GP Service", Kind.OUT_OF_HOURS, Region.NEL),
    ("ZZK1", "Northfield Borough Council Adult Social Care", Kind.SOCIAL_CARE, Region.NCL),
    ("ZZK2", "Riverside Borough Council Adult Social Care", Kind.SOCIAL_CARE, Region.SEL),
    ("ZZH", "St Anselm's Hospice", Kind.HOSPICE, Region.SWL),
)
# What an organisation keeps to itself; it shares every other category. Real agreements differ by kind of
# partner, and so does the demo, so records show what is withheld (and the partners page, what each shares).
_SOCIAL_CARE_SHARES = {Category.TEAMS, Category.APPOINTMENTS, Category.ALERTS, Category.CARE_PLANS}
NOT_SHARED = {
    # The mental health trust shares diagnoses, medicines, care and crisis plans and which of its teams are
    # involved; its letters and its CAMHS and addiction notes stay within the trust.
    "ZZM": {Category.LETTERS, Category.EVENTS},
    # Councils share what social care holds; this one has not yet agreed to share its care plans either.
    "ZZK1": set(Category) - _SOCIAL_CARE_SHARES,
    "ZZK2": set(Category) - _SOCIAL_CARE_SHARES | {Category.CARE_PLANS},
    # Urgent care shares what it tells the GP after an encounter.
    "ZZ111": set(Category) - {Category.LETTERS, Category.ALERTS},
    "ZZO": set(Category) - {Category.LETTERS, Category.MEDICATIONS, Category.APPOINTMENTS},
}
NORTH = {Region.NCL, Region.NEL, Region.NWL}

# How each region handles objections, as IG would first write it (IG edits it in admin afterwards). Phone numbers
# are from Ofcom's drama range for 03 numbers; the email addresses are invented.
_ANY_PROFESSIONAL = (
    "You can also tell any health or care professional caring for you, such as your GP, a hospital team or a "
    "community nurse. They will record your objection and pass it to the team."
)
_DECISION = (
    "The team will check who you are, find your record and write to you with their decision, usually within 30 "
    "days. Until then your record is shared as before. You can change your mind at any time."
)
REGIONAL_PROCESSES = {
    Region.NCL: (
        "Online, or through any professional caring for you",
        "In North Central London, objections are handled by the shared care record information governance team "
        f"on behalf of every partner in the area. Use the online form.\n\n{_ANY_PROFESSIONAL}\n\n{_DECISION}",
        "ncl.sharedcare.optout@example.nhs.uk",
        "",
    ),
    Region.NEL: (
        "Online, or through any professional caring for you",
        "In North East London, use the online form, or write to the information governance team at the "
        f"integrated care board (ICB).\n\n{_ANY_PROFESSIONAL}\n\n{_DECISION}",
        "nel.sharedcare.optout@example.nhs.uk",
        "",
    ),
    Region.NWL: (
        "Online, by email, or through any professional caring for you",
        "In North West London, use the online form or email the information governance team at the integrated "
        f"care board (ICB).\n\n{_ANY_PROFESSIONAL}\n\n{_DECISION}",
        "nwl.sharedcare.optout@example.nhs.uk",
        "",
    ),
    Region.SEL: (
        "Handled by the South East London ICB information governance team",
        "In South East London, objections are handled by the information governance team at the South East "
        "London integrated care board (ICB), for every partner in the area.\n\n"
        "Use the online form, or phone the team on weekdays between 9am and 5pm. If you need an interpreter or "
        "another format, tell them when you call.\n\n"
        f"{_DECISION}",
        "sel.ig.optout@example.nhs.uk",
        "03069 990101",
    ),
    Region.SWL: (
        "Through your GP practice, or online",
        "In South West London, your GP practice takes your objection: tell the practice team, who will record it "
        "and send it to the South West London information governance team. You can also use the online form.\n\n"
        "If you are not registered with a GP, use the online form or tell any professional caring for you.\n\n"
        f"{_DECISION}",
        "swl.ig.optout@example.nhs.uk",
        "",
    ),
}
ACUTE_BY_REGION = {Region.NCL: "ZZA", Region.NEL: "ZZB", Region.NWL: "ZZC", Region.SEL: "ZZD", Region.SWL: "ZZE"}
PRACTICES_BY_REGION = {
    region: [code for code, _, kind, r in ORGANISATIONS if kind == Kind.GP_PRACTICE and r == region]
    for region in Region
}

# Staff of each team: (role, job title). Teamless staff (ambulance, 111, out of hours) break glass.
_ACUTE_TEAMS = {
    ("Acute Medical Unit", TeamKind.WARD): [
        (Role.DOCTOR, "Consultant in Acute Medicine"),
        (Role.DOCTOR, "Specialty registrar"),
        (Role.NURSE, "Ward sister"),
    ],
    ("Cardiology Ward", TeamKind.WARD): [(Role.DOCTOR, "Consultant Cardiologist"), (Role.NURSE, "Staff nurse")],
    ("Diabetes and Endocrinology Clinic", TeamKind.CLINIC): [
        (Role.DOCTOR, "Consultant in Diabetes and Endocrinology"),
        (Role.NURSE, "Diabetes specialist nurse"),
    ],
    ("Renal Clinic", TeamKind.CLINIC): [(Role.DOCTOR, "Consultant Nephrologist")],
    ("Respiratory Clinic", TeamKind.CLINIC): [
        (Role.DOCTOR, "Consultant Respiratory Physician"),
        (Role.THERAPIST, "Respiratory physiotherapist"),
    ],
}
_COMMUNITY_TEAMS = {
    ("District Nursing Team", TeamKind.COMMUNITY): [
        (Role.NURSE, "District nursing sister"),
        (Role.NURSE, "Community staff nurse"),
    ],
    ("Community Rehabilitation Team", TeamKind.COMMUNITY): [
        (Role.THERAPIST, "Occupational therapist"),
        (Role.THERAPIST, "Physiotherapist"),
    ],
}
_CMHT_STAFF = [
    (Role.DOCTOR, "Consultant Psychiatrist"),
    (Role.NURSE, "Community mental health nurse"),
    (Role.SOCIAL_WORKER, "Approved mental health professional"),
]
TEAMS = {
    "ZZM": {
        ("North Community Mental Health Team", TeamKind.MENTAL_HEALTH): _CMHT_STAFF,
        ("South Community Mental Health Team", TeamKind.MENTAL_HEALTH): _CMHT_STAFF,
        ("Child and Adolescent Mental Health Service", TeamKind.CAMHS): [
            (Role.DOCTOR, "Consultant Child and Adolescent Psychiatrist"),
            (Role.NURSE, "CAMHS nurse"),
        ],
        ("Drug and Alcohol Service", TeamKind.ADDICTION): [
            (Role.DOCTOR, "Consultant in Addiction Psychiatry"),
            (Role.NURSE, "Substance misuse nurse"),
        ],
    },
    "ZZN": _COMMUNITY_TEAMS,
    "ZZS": _COMMUNITY_TEAMS,
    "ZZK1": {("Adult Social Care Team", TeamKind.SOCIAL_CARE): [(Role.SOCIAL_WORKER, "Social worker")] * 2},
    "ZZK2": {("Adult Social Care Team", TeamKind.SOCIAL_CARE): [(Role.SOCIAL_WORKER, "Social worker")] * 2},
    "ZZH": {
        ("Hospice at Home Team", TeamKind.COMMUNITY): [
            (Role.NURSE, "Clinical nurse specialist in palliative care"),
            (Role.DOCTOR, "Consultant in Palliative Medicine"),
        ],
    },
}
for _code, _name, _kind, _region in ORGANISATIONS:
    if _kind == Kind.GP_PRACTICE:
        _staff = [(Role.GP, "GP partner"), (Role.GP, "Salaried GP"), (Role.NURSE, "Practice nurse")]
        if _code.endswith("1"):
            _staff.append((Role.PHARMACIST, "Clinical pharmacist"))
        TEAMS[_code] = {("Practice team", TeamKind.GP_PRACTICE): _staff}
    elif _kind == Kind.ACUTE_TRUST:
        TEAMS[_code] = _ACUTE_TEAMS
TEAMLESS_STAFF = {
    "ZZL": [(Role.PARAMEDIC, "Paramedic"), (Role.PARAMEDIC, "Advanced paramedic practitioner")],
    "ZZ111": [(Role.CALL_HANDLER, "NHS 111 clinical advisor")] * 2,
    "ZZO": [(Role.GP, "Out-of-hours GP")] * 2,
}

POSTCODE_DISTRICTS = {
    Region.NCL: ["N1", "N4", "N5", "N7", "N8", "N12", "N15", "N19", "NW1", "NW3", "NW5", "EN1"],
    Region.NEL: ["E1", "E2", "E3", "E5", "E8", "E9", "E13", "E15", "E17", "IG1", "RM1"],
    Region.NWL: ["W2", "W3", "W6", "W9", "W10", "W12", "NW10", "HA1", "UB1", "TW3"],
    Region.SEL: ["SE1", "SE5", "SE8", "SE10", "SE13", "SE15", "SE18", "SE22", "SW9", "BR1"],
    Region.SWL: ["SW11", "SW12", "SW15", "SW17", "SW18", "SW19", "CR0", "KT1", "SM1", "TW1"],
}
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
_STREETS = (
    "Albion",
    "Balfour",
    "Beaumont",
    "Cavendish",
    "Chalcot",
    "Clarence",
    "Colville",
    "Cranbrook",
    "Denmark",
    "Elgin",
    "Fairfax",
    "Felix",
    "Gladstone",
    "Hanover",
    "Inverness",
    "Kingsland",
    "Lansdowne",
    "Larkhall",
    "Lordship",
    "Malvern",
    "Mayton",
    "Northcote",
    "Oakley",
    "Osborne",
    "Palmerston",
    "Queensbridge",
    "Ravensbourne",
    "Stanhope",
    "Thornhill",
    "Trinity",
    "Wellesley",
    "Westbourne",
    "Wilberforce",
    "Yerbury",
)
_STREET_TYPES = ("Road", "Street", "Avenue", "Gardens", "Grove", "Close", "Lane", "Terrace", "Crescent", "Place")
_BUILDINGS = ("Cedar Court", "Alder House", "Marlowe House", "Ravens Court", "Hollybush House", "Wren Court")
LANGUAGES = ("Bengali", "Turkish", "Polish", "Somali", "Portuguese", "Arabic", "Tigrinya", "Romanian")


# --- Results: LOINC-coded tests, with UK units and typical adult reference ranges -------------------------------


@dataclass(frozen=True)
class Test:
    code: str
    name: str
    unit: str
    low: float
    high: float
    places: int = 1
    female_range: tuple[float, float] | None = None

    def reference(self, sex):
        return self.female_range if self.female_range and sex == Sex.FEMALE else (self.low, self.high)


HBA1C = Test("59261-8", "HbA1c (IFCC)", "mmol/mol", 20, 41, 0)
GLUCOSE = Test("14771-0", "Fasting glucose", "mmol/L", 3.0, 6.0)
HAEMOGLOBIN = Test("718-7", "Haemoglobin", "g/L", 130, 170, 0, (120, 150))
WHITE_CELLS = Test("6690-2", "White cell count", "10*9/L", 4.0, 11.0)
PLATELETS = Test("777-3", "Platelets", "10*9/L", 150, 400, 0)
MCV = Test("787-2", "Mean cell volume", "fL", 80, 100, 0)
NEUTROPHILS = Test("751-8", "Neutrophils", "10*9/L", 2.0, 7.5)
SODIUM = Test("2951-2", "Sodium", "mmol/L", 133, 146, 0)
POTASSIUM = Test("2823-3", "Potassium", "mmol/L", 3.5, 5.3)
UREA = Test("22664-7", "Urea", "mmol/L", 2.5, 7.8)
CREATININE = Test("14682-9", "Creatinine", "umol/L", 59, 104, 0, (45, 84))
EGFR = Test("62238-1", "eGFR (CKD-EPI)", "mL/min/1.73m2", 60, 120, 0)
CHOLESTEROL = Test("14647-2", "Total cholesterol", "mmol/L", 0, 5.0)
HDL = Test("14646-4", "HDL cholesterol", "mmol/L", 1.0, 3.0)
LDL = Test("39469-2", "LDL cholesterol (calculated)", "mmol/L", 0, 3.0)
TRIGLYCERIDES = Test("14927-8", "Triglycerides", "mmol/L", 0, 2.3)
ALT = Test("1742-6", "Alanine aminotransferase (ALT)", "U/L", 0, 40, 0)
ALP = Test("6768-6", "Alkaline phosphatase", "U/L", 30, 130, 0)
BILIRUBIN = Test("14631-6", "Bilirubin", "umol/L", 0, 21, 0)
ALBUMIN = Test("1751-7", "Albumin", "g/L", 35, 50, 0)
GGT = Test("2324-2", "Gamma GT", "U/L", 0, 55, 0)
TSH = Test("3016-3", "TSH", "mU/L", 0.27, 4.2, 2)
FREE_T4 = Test("14920-3", "Free T4", "pmol/L", 12, 22)
CRP = Test("1988-5", "C-reactive protein", "mg/L", 0, 5, 0)
ESR = Test("4537-7", "ESR", "mm/h", 1, 20, 0)

# Report name, report code, tests. (Single-test reports carry their main test's code.)
PANELS = {
    "fbc": ("Full blood count", "58410-2", (HAEMOGLOBIN, WHITE_CELLS, PLATELETS, MCV, NEUTROPHILS)),
    "ue": ("Urea and electrolytes", "24362-6", (SODIUM, POTASSIUM, UREA, CREATININE, EGFR)),
    "hba1c": ("HbA1c and fasting glucose", "59261-8", (HBA1C, GLUCOSE)),
    "lipids": ("Lipid profile", "24331-1", (CHOLESTEROL, HDL, LDL, TRIGLYCERIDES)),
    "lft": ("Liver function tests", "24325-3", (ALT, ALP, BILIRUBIN, ALBUMIN, GGT)),
    "tft": ("Thyroid function tests", "3016-3", (TSH, FREE_T4)),
    "crp": ("Inflammatory markers", "1988-5", (CRP, ESR)),
}


@dataclass
class Trajectory:
    """A patient's course for one test: baseline, drift per year and noise, kept within physiological bounds."""

    base: float
    slope: float = 0.0
    sd: float = 0.0
    floor: float = 0.0
    ceiling: float = 10_000.0

    def at(self, years: float, rng) -> float:
        drifted = min(max(self.base + self.slope * years, self.floor), self.ceiling)
        return max(drifted + rng.gauss(0, self.sd), self.floor)


# --- Clinical catalogues ------------------------------------------------------------------------------------------

CONDITIONS = {
    "diabetes": ("44054006", "Type 2 diabetes mellitus"),
    "hypertension": ("38341003", "Hypertension"),
    "ckd": ("433144002", "Chronic kidney disease stage 3"),
    "af": ("49436004", "Atrial fibrillation"),
    "heart_failure": ("84114007", "Heart failure"),
    "copd": ("13645005", "Chronic obstructive pulmonary disease"),
    "asthma": ("195967001", "Asthma"),
    "depression": ("35489007", "Depressive disorder"),
    "anxiety": ("197480006", "Anxiety disorder"),
    "bipolar": ("13746004", "Bipolar disorder"),
    "schizophrenia": ("58214004", "Schizophrenia"),
    "alcohol": ("66590003", "Alcohol dependence"),
    "opioid": ("75544000", "Opioid dependence"),
    "hypothyroid": ("40930008", "Hypothyroidism"),
    "dementia": ("52448006", "Dementia"),
    "osteoarthritis": ("396275006", "Osteoarthritis"),
    "lung_cancer": ("254637007", "Non-small cell lung cancer"),
    "adhd": ("406506008", "Attention deficit hyperactivity disorder"),
    "anorexia": ("56882008", "Anorexia nervosa"),
    "pneumonia": ("385093006", "Community acquired pneumonia"),
    "lrti": ("50417007", "Lower respiratory tract infection"),
    "uti": ("68566005", "Urinary tract infection"),
    "cellulitis": ("128045006", "Cellulitis"),
    "chlamydia": ("105629000", "Chlamydial infection"),
    "hiv": ("86406008", "Human immunodeficiency virus infection"),
}

# dm+d: products (VMP) where the code names one; a few are substance-level (VTM) codes with the strength in the
# dosage text, as GP systems sometimes send them.
MEDICINES = {
    "metformin": ("325278007", "Metformin 500mg tablets", "One tablet twice a day with meals"),
    "gliclazide": ("325242002", "Gliclazide 80mg tablets", "One tablet each morning with breakfast"),
    "dapagliflozin": ("39689811000001104", "Dapagliflozin 10mg tablets", "One tablet once a day"),
    "atorvastatin": ("773455007", "Atorvastatin", "20mg tablets: one at night"),
    "ramipril": ("318902004", "Ramipril 5mg capsules", "One capsule once a day"),
    "ramipril_low": ("318901006", "Ramipril 2.5mg capsules", "One capsule once a day"),
    "amlodipine": ("319283006", "Amlodipine 5mg tablets", "One tablet once a day"),
    "losartan": ("318956006", "Losartan 50mg tablets", "One tablet once a day"),
    "indapamide": ("317956008", "Indapamide 2.5mg tablets", "One tablet each morning"),
    "bisoprolol": ("318605000", "Bisoprolol 2.5mg tablets", "One tablet once a day"),
    "furosemide": ("317972000", "Furosemide 40mg tablets", "One tablet each morning"),
    "aspirin": ("42291811000001106", "Aspirin 75mg dispersible tablets", "One tablet once a day"),
    "clopidogrel": ("319799004", "Clopidogrel 75mg tablets", "One tablet once a day"),
    "salbutamol": ("777483005", "Salbutamol", "100 micrograms/dose inhaler: two puffs when required"),
    "levothyroxine": ("776526008", "Levothyroxine", "100 microgram tablets: one each morning before breakfast"),
    "sertraline": ("777521008", "Sertraline", "50mg tablets: one once a day"),
    "paracetamol": ("322236009", "Paracetamol 500mg tablets", "One or two tablets up to four times a day if needed"),
    "amoxicillin": ("39732411000001106", "Amoxicillin 500mg capsules", "One capsule three times a day for 5 days"),
    "clarithromycin": ("41946511000001109", "Clarithromycin 500mg tablets", "One tablet twice a day for 5 days"),
    "doxycycline": ("41948311000001104", "Doxycycline 100mg capsules", "Two capsules on day 1, then one daily"),
    "ciprofloxacin": ("39687811000001107", "Ciprofloxacin 500mg tablets", "One tablet twice a day for 7 days"),
}
INFECTION_ANTIBIOTICS = {
    "lrti": "doxycycline",
    "pneumonia": "amoxicillin",
    "uti": "ciprofloxacin",
    "cellulitis": "clarithromycin",
}

# SNOMED "allergy to ..." findings: (code, substance, reaction, severity)
ALLERGIES = (
    ("91936005", "Penicillin", "Widespread itchy rash", Allergy.Severity.MODERATE),
    ("91935009", "Peanuts", "Anaphylaxis", Allergy.Severity.SEVERE),
    ("300916003", "Latex", "Contact dermatitis", Allergy.Severity.MILD),
    ("91930004", "Egg", "Urticaria", Allergy.Severity.MILD),
    ("418689008", "Grass pollen", "Seasonal rhinitis and itchy eyes", Allergy.Severity.MILD),
    ("232350006", "House dust mite", "Rhinitis", Allergy.Severity.MILD),
    ("300913006", "Shellfish", "Lip and tongue swelling", Allergy.Severity.SEVERE),
)

# Vaccines: (name shown, [(system, code, display)], route, site). SNOMED CT vaccine products, with the dm+d
# product beside them where the demo names a brand (UK systems send dm+d, often with SNOMED CT too).
_IM, _ARM, _THIGH = "Intramuscular", "Left upper arm", "Left thigh"
VACCINES = {
    "flu": (
        "Influenza vaccine (split virion, inactivated) 0.5ml injection",
        [
            (
                DMD,
                "11278411000001109",
                "Influenza vaccine (split virion, inactivated) suspension for injection 0.5ml "
                "pre-filled syringes (Pfizer Ltd)",
            ),
            (SNOMED, "836377006", "Influenza virus antigen-containing vaccine product"),
        ],
        _IM,
        _ARM,
    ),
    "nasal_flu": (
        "Live attenuated influenza vaccine nasal spray",
        [(SNOMED, "871768005", "Influenza virus antigen only vaccine product in nasal dose form")],
        "Intranasal",
        "Nose",
    ),
    "covid_pfizer": (
        "Comirnaty COVID-19 mRNA vaccine 30micrograms/0.3ml dose (Pfizer)",
        [
            (
                DMD,
                "39115611000001103",
                "COVID-19 mRNA Vaccine Pfizer-BioNTech BNT162b2 30micrograms/0.3ml dose "
                "concentrate for suspension for injection multidose vials (Pfizer Ltd)",
            ),
            (SNOMED, "1119349007", "SARS-CoV-2 mRNA vaccine"),
        ],
        _IM,
        _ARM,
    ),
    "covid_az": (
        "COVID-19 Vaccine Vaxzevria (AstraZeneca)",
        [
            (
                DMD,
                "39114911000001105",
                "COVID-19 Vaccine Vaxzevria (ChAdOx1 S [recombinant]) not less than 2.5x100,000,000 "
                "infectious units/0.5ml dose suspension for injection multidose vials (AstraZeneca UK Ltd)",
            ),
        ],
        _IM,
        _ARM,
    ),
    "covid_moderna": (
        "Spikevax COVID-19 mRNA vaccine (Moderna)",
        [
            (
                DMD,
                "39326911000001101",
                "COVID-19 mRNA (nucleoside modified) Vaccine Moderna 0.1mg/0.5mL dose "
                "dispersion for injection multidose vials (Moderna, Inc)",
            ),
            (SNOMED, "1119349007", "SARS-CoV-2 mRNA vaccine"),
        ],
        _IM,
        _ARM,
    ),
    "pneumococcal": (
        "Pneumococcal polysaccharide vaccine (PPV23)",
        [(SNOMED, "836398006", "Streptococcus pneumoniae antigen-containing vaccine product")],
        _IM,
        _ARM,
    ),
    "shingles": (
        "Shingles vaccine (recombinant, adjuvanted)",
        [(SNOMED, "836495005", "Human alphaherpesvirus 3 antigen-containing vaccine product")],
        _IM,
        _ARM,
    ),
    "bcg": (
        "BCG vaccine",
        [(SNOMED, "836402002", "Bacillus Calmette-Guerin antigen-containing vaccine product")],
        "Intradermal",
        _ARM,
    ),
    "six_in_one": (
        "6-in-1 vaccine (DTaP/IPV/Hib/HepB)",
        [
            (
                SNOMED,
                "871895005",
                "Bordetella pertussis and Clostridium tetani and Corynebacterium diphtheriae and Haemophilus "
                "influenzae type b and Hepatitis B virus and Human poliovirus antigens only vaccine product",
            ),
        ],
        _IM,
        _THIGH,
    ),
    "menb": (
        "MenB vaccine",
        [(SNOMED, "836401009", "Neisseria meningitidis antigen-containing vaccine product")],
        _IM,
        "Right thigh",
    ),
    "rotavirus": (
        "Rotavirus vaccine (oral)",
        [(SNOMED, "836387005", "Rotavirus antigen-containing vaccine product")],
        "Oral",
        "Mouth",
    ),
    "pcv": (
        "Pneumococcal conjugate vaccine (PCV)",
        [(SNOMED, "836398006", "Streptococcus pneumoniae antigen-containing vaccine product")],
        _IM,
        _THIGH,
    ),
    "hib_menc": (
        "Hib/MenC vaccine",
        [
            (
                SNOMED,
                "836500008",
                "Haemophilus influenzae type b and Neisseria meningitidis serogroup C antigens only vaccine product",
            ),
        ],
        _IM,
        _ARM,
    ),
    "mmr": (
        "MMR vaccine (measles, mumps and rubella)",
        [
            (
                SNOMED,
                "871831003",
                "Measles morbillivirus and Mumps orthorubulavirus and Rubella virus antigens only vaccine product",
            ),
        ],
        _IM,
        "Right upper arm",
    ),
    "preschool": (
        "4-in-1 pre-school booster (dTaP/IPV)",
        [
            (
                SNOMED,
                "871878002",
                "Bordetella pertussis and Clostridium tetani and Corynebacterium diphtheriae and "
                "Human poliovirus antigens only vaccine product",
            ),
        ],
        _IM,
        _ARM,
    ),
    "hpv": (
        "HPV vaccine",
        [(SNOMED, "836379009", "Human papillomavirus antigen-containing vaccine product")],
        _IM,
        _ARM,
    ),
    "td_ipv": (
        "3-in-1 teenage booster (Td/IPV)",
        [
            (
                SNOMED,
                "871837004",
                "Clostridium tetani and Corynebacterium diphtheriae and Human poliovirus antigens only vaccine product",
            ),
        ],
        _IM,
        _ARM,
    ),
    "menacwy": (
        "MenACWY vaccine",
        [(SNOMED, "871873006", "Neisseria meningitidis serogroup A, C, W135 and Y only vaccine product")],
        _IM,
        "Right upper arm",
    ),
}
# The NHS routine childhood schedule: (vaccine, age in days when given, dose as the record says it).
CHILDHOOD_SCHEDULE = (
    ("six_in_one", 56, "1 of 3"),
    ("menb", 56, "1"),
    ("rotavirus", 56, "1 of 2"),
    ("six_in_one", 84, "2 of 3"),
    ("pcv", 84, "1"),
    ("rotavirus", 84, "2 of 2"),
    ("six_in_one", 112, "3 of 3"),
    ("menb", 112, "2"),
    ("hib_menc", 365, "1"),
    ("mmr", 365, "1 of 2"),
    ("pcv", 365, "Booster"),
    ("menb", 365, "Booster"),
    ("preschool", 1216, "Booster"),  # 3 years 4 months
    ("mmr", 1216, "2 of 2"),
    ("hpv", 4580, "1"),  # school year 8
    ("td_ipv", 5310, "Booster"),  # school year 9
    ("menacwy", 5310, "1"),
)
# Long-term conditions that make an adult eligible for the yearly flu vaccine (and pneumococcal, earlier).
AT_RISK_PROFILES = {"diabetes", "ckd", "cardiac", "respiratory", "asthma", "frailty", "palliative"}

# Procedures (SNOMED CT): key -> (code, name, body sites to choose from, outcomes to choose from, surgical specialty)
PROCEDURES = {
    "appendicectomy": (
        "80146002",
        "Appendicectomy",
        ("Appendix",),
        ("Recovered well; histology confirmed acute appendicitis.", "Laparoscopic; discharged the next day."),
        "general surgeon",
    ),
    "cholecystectomy": (
        "45595009",
        "Laparoscopic cholecystectomy",
        ("Gallbladder",),
        ("Uncomplicated day case.", "Discharged the next day; gallstones confirmed."),
        "general surgeon",
    ),
    "hernia": (
        "44558001",
        "Repair of inguinal hernia",
        ("Left inguinal region", "Right inguinal region"),
        ("Mesh repair; uncomplicated day case.",),
        "general surgeon",
    ),
    "cataract": (
        "54885007",
        "Cataract extraction",
        ("Right eye", "Left eye"),
        ("Uncomplicated; lens implant; vision improved to 6/9.", "Uncomplicated; vision improved to 6/6."),
        "ophthalmic surgeon",
    ),
    "hip": (
        "52734007",
        "Total replacement of hip",
        ("Left hip", "Right hip"),
        ("Mobilising with a frame on day 1; home on day 3.", "Uncomplicated; physiotherapy follow-up arranged."),
        "orthopaedic surgeon",
    ),
    "knee": (
        "609588000",
        "Total knee replacement",
        ("Left knee", "Right knee"),
        ("Uncomplicated; outpatient physiotherapy arranged.",),
        "orthopaedic surgeon",
    ),
    "colonoscopy": (
        "73761001",
        "Colonoscopy",
        ("Colon",),
        ("No abnormality seen.", "Two small polyps removed; histology benign.", "Diverticular disease; no polyps."),
        "gastroenterologist",
    ),
    "caesarean": (
        "11466000",
        "Caesarean section",
        ("Uterus",),
        ("Healthy baby delivered; mother and baby well.",),
        "obstetrician",
    ),
    "cardioversion": (
        "180325003",
        "Electrical cardioversion",
        ("Heart",),
        ("Sinus rhythm restored.", "Sinus rhythm restored after a second shock."),
        "cardiologist",
    ),
    "tonsillectomy": (
        "173422009",
        "Tonsillectomy",
        ("Tonsils",),
        ("Uncomplicated; home the same day.",),
        "ENT surgeon",
    ),
}

# Hospital admissions: (ward, presenting complaint, diagnosis key, hospital course, medication change, GP actions)
ADMISSIONS = (
    (
        "Acute Medical Unit",
        "Three days of productive cough, fever and breathlessness.",
        "pneumonia",
        "Chest X-ray showed right lower lobe consolidation; CURB-65 score 1. Treated with oral amoxicillin and "
        "clarithromycin, oxygen for the first 24 hours. Inflammatory markers fell and {given} was mobilising "
        "independently on room air before discharge.",
        "Amoxicillin 500mg three times a day to complete a 5-day course.",
        "Please repeat a chest X-ray in six weeks to confirm resolution.",
    ),
    (
        "Acute Medical Unit",
        "Fall at home and reduced oral intake for several days.",
        "uti",
        "Acute kidney injury (stage 1) on admission, attributed to dehydration and a urinary tract infection. "
        "Ramipril was withheld and intravenous fluids given; creatinine returned to baseline by day 3. Seen by "
        "the ward physiotherapist and occupational therapist, who recommended a walking frame.",
        "Ramipril withheld: restart when renal function is stable.",
        "Please check urea and electrolytes in one week and restart ramipril if creatinine is at baseline.",
    ),
    (
        "Cardiology Ward",
        "Palpitations and breathlessness on exertion.",
        "af",
        "ECG confirmed atrial fibrillation with a fast ventricular rate (140 per minute). Rate controlled with "
        "bisoprolol. Echocardiogram showed mildly impaired left ventricular function. CHA2DS2-VASc and bleeding "
        "risk discussed with {given}.",
        "Bisoprolol 2.5mg once a day started.",
        "Please review heart rate and blood pressure in two weeks; cardiology clinic follow-up arranged.",
    ),
    (
        "Acute Medical Unit",
        "Red, hot, swollen left lower leg for two days.",
        "cellulitis",
        "Cellulitis of the left lower leg, Eron class 1. Outline marked; treated with oral antibiotics and leg "
        "elevation. Erythema receded steadily and {given} remained systemically well.",
        "Clarithromycin 500mg twice a day to complete a 7-day course.",
        "Please review the leg in one week; consider district nursing input for skin care.",
    ),
)

APPOINTMENT_REASONS = (
    "Medication review",
    "Blood pressure check",
    "Cough for three weeks",
    "Annual chronic disease review",
    "Follow-up of blood results",
    "Low back pain",
    "Repeat prescription query",
    "Fatigue",
    "Joint pain",
    "Chest infection follow-up",
    "Vaccination",
    "Mental health review",
)

CLINIC_LETTERS = {
    "Diabetes and Endocrinology Clinic": (
        "Diabetes clinic letter",
        "{given} reports taking medication as prescribed, with no hypoglycaemic episodes. Weight has been stable "
        "over the last six months. Both feet were examined: pulses palpable, monofilament sensation intact, no "
        "ulceration. The most recent retinal screening showed background retinopathy only.",
        (HBA1C, EGFR, CHOLESTEROL),
        (
            "Continue current glucose-lowering treatment; if HbA1c stays above 53 mmol/mol we will discuss "
            "adding a further agent.",
            "Structured education (DESMOND) offered and accepted.",
            "Please repeat HbA1c, renal function and lipids in three months.",
            "Review in the diabetes clinic in six months.",
        ),
    ),
    "Renal Clinic": (
        "Renal clinic letter",
        "{given} attended for review of chronic kidney disease. There are no urinary symptoms and no fluid "
        "overload. Blood pressure in clinic was 138/82. We reviewed medicines for any that should be avoided or "
        "dose-adjusted in reduced kidney function.",
        (EGFR, CREATININE, POTASSIUM),
        (
            "Continue ramipril; target blood pressure below 130/80.",
            "Avoid non-steroidal anti-inflammatory drugs.",
            "Please monitor renal function and potassium every three months.",
            "Renal clinic review in twelve months, sooner if eGFR falls by more than 25%.",
        ),
    ),
    "Respiratory Clinic": (
        "Respiratory clinic letter",
        "{given} describes breathlessness on walking uphill and an occasional morning cough. Inhaler technique "
        "was checked and was good. Spirometry today was consistent with obstruction, similar to last year. "
        "{given} has not needed oral steroids since the last appointment.",
        (CRP, HAEMOGLOBIN),
        (
            "Continue current inhalers; a written self-management plan was given.",
            "Referred to pulmonary rehabilitation.",
            "Annual influenza and pneumococcal vaccination recommended.",
            "Respiratory clinic review in nine months.",
        ),
    ),
}

CARE_EVENTS = {
    CareEvent.Service.COMMUNITY: (
        (
            "District nurse visit: leg ulcer dressing",
            "Lower-leg wound cleaned and redressed with compression bandaging. Wound edges healthy and exudate "
            "reduced since the last visit. Next visit in three days.",
        ),
        (
            "Falls risk assessment",
            "Two falls in the last six months. Home environment assessed: rugs removed, grab rail recommended for "
            "the bathroom. Referred for strength and balance classes.",
        ),
        (
            "Pressure area review",
            "Skin intact over sacrum and heels. Pressure-relieving mattress in place and in good working order. "
            "Carers advised on repositioning every four hours.",
        ),
        (
            "Home visit: medication and mobility review",
            "Blister pack in use and taken as prescribed. Mobilising with a frame indoors. No new concerns raised "
            "by the patient or family.",
        ),
    ),
    CareEvent.Service.CAMHS: (
        (
            "Initial CAMHS assessment",
            "Seen with parent. Low mood and worry for several months, affecting school attendance. No current "
            "thoughts of self-harm. Agreed to start a course of cognitive behavioural therapy.",
        ),
        (
            "Cognitive behavioural therapy session",
            "Worked on identifying anxious thoughts and a graded plan for returning to full school days. Homework "
            "agreed; mood diary reviewed.",
        ),
        (
            "Family session",
            "Session with parents about routines at home and communication with the school. Parents feel more "
            "confident supporting the plan.",
        ),
        (
            "School liaison",
            "Telephone liaison with the school's special educational needs coordinator, with consent. Reduced "
            "timetable agreed for four weeks.",
        ),
    ),
    CareEvent.Service.ADDICTION: (
        (
            "Comprehensive substance use assessment",
            "Substance use history taken; AUDIT score and injecting risk recorded. Goals agreed: reduce use and "
            "engage with keyworker sessions. Naloxone kit and training offered.",
        ),
        (
            "Keyworker session",
            "Review of the week: use reduced, two days abstinent. Discussed triggers and coping strategies. Next "
            "session booked.",
        ),
        (
            "Community detoxification planning",
            "Medically assisted withdrawal discussed; blood tests arranged. Support from family confirmed for the "
            "detox week.",
        ),
        ("Recovery group", "Attended the weekly recovery group and contributed. Reports feeling more settled."),
    ),
}


AGE_BANDS = ((0, 4, 6), (5, 17, 14), (18, 39, 27), (40, 64, 31), (65, 79, 14), (80, 96, 8))
# (profile, probability, minimum age) for adults; drawn in this order so the stream of random numbers is stable.
ADULT_PROFILES = (
    ("diabetes", 0.22, 30),
    ("hypertension", 0.3, 35),
    ("ckd", 0.25, 60),
    ("cardiac", 0.2, 55),
    ("respiratory", 0.14, 18),
    ("mental_health", 0.2, 18),
    ("addiction", 0.07, 18),
    ("hypothyroid", 0.08, 25),
    ("frailty", 0.6, 78),
    ("palliative", 0.04, 55),
)
CARDIOMETABOLIC = {"diabetes", "hypertension", "ckd", "cardiac"}


# --- Small generators for places, phones and registrations --------------------------------------------------


def slug(text):
    return re.sub(r"[^a-z]", "", text.lower())


def postcode(rng, region):
    district = rng.choice(POSTCODE_DISTRICTS[region])
    return f"{district} {rng.randint(1, 9)}{rng.choice(_INWARD_LETTERS)}{rng.choice(_INWARD_LETTERS)}"


def street_address(rng):
    street = f"{rng.choice(_STREETS)} {rng.choice(_STREET_TYPES)}"
    if rng.random() < 0.3:
        return f"Flat {rng.randint(1, 48)}, {rng.choice(_BUILDINGS)}\n{rng.randint(1, 180)} {street}\nLondon"
    return f"{rng.randint(1, 240)} {street}\nLondon"


def mobile(rng):
    return f"07700 900{rng.randint(0, 999):03d}"  # Ofcom's range for drama: never a real subscriber


def landline(rng):
    return f"020 7946 0{rng.randint(0, 999):03d}"


def registration_number(role, job_title, rng):
    if role in (Role.GP, Role.DOCTOR):
        return str(rng.randint(6_000_000, 7_999_999))  # GMC
    if role in (Role.NURSE, Role.CALL_HANDLER):  # NMC PIN
        return f"{rng.randint(0, 99):02d}{rng.choice('ABCDEFGHIJKLMNOPQRSTUVWXY')}{rng.randint(0, 9999):04d}E"
    if role == Role.PARAMEDIC:
        return f"PA{rng.randint(10_000, 59_999)}"
    if role == Role.THERAPIST:
        return f"{'OT' if 'Occupational' in job_title else 'PH'}{rng.randint(10_000, 99_999)}"
    if role == Role.SOCIAL_WORKER:
        return f"SW{rng.randint(10_000, 129_999)}"
    if role == Role.PHARMACIST:
        return str(rng.randint(2_000_000, 2_099_999))  # GPhC
    return ""
