"""Finding a patient the way an ambulance crew can: a name spelt as it was heard, an approximate age or an age
range (or the date of birth when it is known), perhaps a postcode and sex. Demographics only, as `search.py`.

Never on a name alone: `find` needs a date of birth or ages. Results are ranked so that the likeliest patient is
first — exact family name, then a name that starts with what was typed, then one that only sounds alike; within
that the given name the same way, then the postcode (the full postcode, then the same outward code, then a
patient whose postcode cannot be used), then the age nearest the one given — and capped at
`SEARCH_MAX_RESULTS` (20), saying when more matched so the crew refine the search rather than scroll.

Misspellings: American Soundex of the family name (and of the given name, when one is typed). On PostgreSQL
it is fuzzystrmatch's `soundex()` (migration 0006 creates the extension); on SQLite the same algorithm is a
Python function registered on the connection, so one query serves both and the database does the filtering
after the date-of-birth range has narrowed the candidates (the `patient_dob_name` index). Computed at query
time rather than stored: patients are written by FHIR mapping, HL7 feeds, demographics precedence and admin,
and a stored key missed by any of them would silently hide a patient. Soundex rather than Double Metaphone: it
is standard, ten lines to port exactly, and keeps the first letter, which keeps false matches down; its cost is
that a misheard first letter (Phillips / Filips, Knight / Night) is not matched — the prefix match and an NHS
number search remain. No library: jellyfish's Soundex applies the H/W rule and fuzzystrmatch's does not, so the
two would disagree; here both backends see the same letters (`_letters`: accents folded, anything but A-Z
dropped, H and W after the first letter dropped, which is the H/W rule) and a test on PostgreSQL holds the
Python port to `soundex()`.

A restricted (S-flag) patient is never filtered or ranked by postcode: they are kept whatever postcode is
typed, and ranked as a patient with no postcode recorded, so a search cannot confirm where they live (H-11).
"""

import dataclasses
import datetime
import itertools
import re

from django.conf import settings
from django.db.models import Case, CharField, F, Func, IntegerField, Q, Value, When
from django.db.models.functions import Abs, ExtractYear, Left, Length, Replace, Upper
from django.utils import timezone

from .models import Patient, Sex
from .postcodes import Postcode, parse_postcode  # noqa: F401 (crew search reads typed postcodes)

AGE_TOLERANCE_YEARS = 5  # "about 70" is 65 to 75
OLDEST_AGE = 120
AGE_RANGE_WIDEST = 30  # years: a wider range is close to searching on a name alone

_FOLDS = {
    "A": "ÀÁÂÃÄÅĀĂĄ",
    "a": "àáâãäåāăą",
    "C": "ÇĆČ",
    "c": "çćč",
    "D": "ĎĐ",
    "d": "ďđ",
    "E": "ÈÉÊËĒĘĚ",
    "e": "èéêëēęě",
    "G": "Ğ",
    "g": "ğ",
    "I": "ÌÍÎÏĪİ",
    "i": "ìíîïīı",
    "L": "Ł",
    "l": "ł",
    "N": "ÑŃŇ",
    "n": "ñńň",
    "O": "ÒÓÔÕÖØŌŐ",
    "o": "òóôõöøōő",
    "R": "Ř",
    "r": "ř",
    "S": "ŚŞŠ",
    "s": "śşšß",
    "T": "ŢŤ",
    "t": "ţť",
    "U": "ÙÚÛÜŪŮŰ",
    "u": "ùúûüūůű",
    "Y": "Ý",
    "y": "ýÿ",
    "Z": "ŹŻŽ",
    "z": "źżž",
}
_ACCENTED = "".join(_FOLDS.values())
_PLAIN = "".join(letter * len(accented) for letter, accented in _FOLDS.items())
_TO_PLAIN = str.maketrans(_ACCENTED, _PLAIN)
_NOT_A_LETTER = "[^A-Za-z]+"
_H_OR_W_AFTER_THE_FIRST = "(?<=.)[HW]"
_SOUNDEX_CODES = dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "01230120022455012623010202", strict=True))
_SQLITE_FUNCTION = "carerecord_phonetic_key"


def _letters(name: str) -> str:
    folded = re.sub(_NOT_A_LETTER, "", name.translate(_TO_PLAIN)).upper()
    return re.sub(_H_OR_W_AFTER_THE_FIRST, "", folded)


def _soundex(letters: str) -> str:
    """fuzzystrmatch's `_soundex` for letters A-Z: a letter is coded unless it codes as the one before it."""
    if not letters:
        return ""
    key = letters[0]
    for previous, letter in itertools.pairwise(letters):
        code = _SOUNDEX_CODES[letter]
        if code != "0" and code != _SOUNDEX_CODES[previous]:
            key += code
            if len(key) == 4:
                break
    return key.ljust(4, "0")


def phonetic_key(name: str | None) -> str | None:
    """The key two names share when they sound alike ("Smith", "Smyth": S530); "" for a name with no letters."""
    return None if name is None else _soundex(_letters(name))


class PhoneticKey(Func):
    """`phonetic_key` of a text column, computed by the database: the same key on PostgreSQL and SQLite."""

    arity = 1
    output_field = CharField()

    def as_sqlite(self, compiler, connection, **extra):
        # Registered at query time, not on connection_created: the key needs nothing from the app's start-up, and
        # registering a function on an open connection is cheap and idempotent.
        connection.ensure_connection()
        connection.connection.create_function(_SQLITE_FUNCTION, 1, phonetic_key, deterministic=True)
        return super().as_sql(compiler, connection, function=_SQLITE_FUNCTION, **extra)

    def as_postgresql(self, compiler, connection, **extra):
        def strip(text, pattern):
            return Func(text, Value(pattern), Value(""), Value("g"), function="regexp_replace", output_field=text_type)

        text_type = CharField()

        folded = Func(*self.get_source_expressions(), Value(_ACCENTED), Value(_PLAIN), function="translate")
        letters = strip(Upper(strip(folded, _NOT_A_LETTER)), _H_OR_W_AFTER_THE_FIRST)
        return Func(letters, function="soundex", output_field=CharField()).as_sql(compiler, connection)


@dataclasses.dataclass(frozen=True)
class Ages:
    """The ages to search (inclusive) and the likeliest one, doubled so that a range's middle stays whole."""

    youngest: int
    oldest: int
    likeliest_twice: int

    @classmethod
    def about(cls, age: int) -> "Ages":
        youngest, oldest = max(0, age - AGE_TOLERANCE_YEARS), min(OLDEST_AGE, age + AGE_TOLERANCE_YEARS)
        return cls(youngest, oldest, 2 * age)

    @classmethod
    def between(cls, youngest: int, oldest: int) -> "Ages":
        return cls(youngest, oldest, youngest + oldest)


@dataclasses.dataclass(frozen=True)
class Found:
    patients: list  # at most SEARCH_MAX_RESULTS, in rank order
    more: bool  # more patients matched than are shown: the page asks for a narrower search


def _years_before(day: datetime.date, years: int) -> datetime.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February, in a year without one: that birthday is kept on the 28th
        return day.replace(year=day.year - years, day=28)


def born_within(ages: Ages, today: datetime.date) -> tuple[datetime.date, datetime.date]:
    """The earliest and latest dates of birth (inclusive) of someone aged `ages.youngest` to `ages.oldest` today,
    by `Patient.age`'s rule (a birthday on 29 February comes on 1 March in other years)."""
    earliest = _years_before(today, ages.oldest + 1) + datetime.timedelta(days=1)
    return earliest, _years_before(today, ages.youngest)


def _age_today(today: datetime.date):
    birthday_to_come = Q(date_of_birth__month__gt=today.month) | Q(
        date_of_birth__month=today.month, date_of_birth__day__gt=today.day
    )
    return (
        Value(today.year)
        - ExtractYear("date_of_birth")
        - Case(When(birthday_to_come, then=Value(1)), default=Value(0), output_field=IntegerField())
    )


def _by_name(patients, field: str, typed: str):
    """Patients whose `field` starts with what was typed or sounds alike, and its rank `_<field>_tier`: 0 the same
    name (any case), 1 starting with what was typed, 2 only sounding alike.

    Both keep the first letter, so a name whose first character is another A-Z letter is ruled out before any
    key is computed: this cheap test, which PostgreSQL runs first, makes the search several times faster."""
    key = phonetic_key(typed)
    sounds_alike = Q(**{f"_{field}_key": key}) if key else Q(pk__in=[])  # no letters A-Z: the prefix alone
    patients = patients.alias(
        **{
            f"_{field}_key": PhoneticKey(field),
            f"_{field}_initial": Upper(Left(field, 1)),
            f"_{field}_tier": Case(
                When(**{f"{field}__iexact": typed}, then=Value(0)),
                When(**{f"{field}__istartswith": typed}, then=Value(1)),
                default=Value(2),
            ),
        }
    )
    initial = typed[:1].upper()
    if initial in _SOUNDEX_CODES:  # a name typed from an A-Z letter: others may start with it or with no A-Z letter
        patients = patients.filter(
            Q(**{f"_{field}_initial": initial}) | ~Q(**{f"_{field}_initial__in": list(_SOUNDEX_CODES)})
        )
    return patients.filter(Q(**{f"{field}__istartswith": typed}) | sounds_alike)


def find(
    *,
    family_name: str,
    given_name: str = "",
    born_on: datetime.date | None = None,
    ages: Ages | None = None,
    postcode: Postcode | None = None,
    sex: str = "",
    today: datetime.date | None = None,
) -> Found:
    """Patients matching, ranked and capped (module docstring); one query.

    `born_on` is an exact date of birth; otherwise `ages` is required: a name alone is never enough to search.
    `sex` ("female" or "male") leaves out only patients recorded as the other: one recorded as other or not
    known is kept. Ages are counted today in Europe/London, whether or not the patient has died."""
    if (born_on is None) == (ages is None):
        raise ValueError("search by a date of birth or by ages (exactly one): never by a name alone")
    family_name, given_name = family_name.strip(), given_name.strip()
    today = today or timezone.localdate()
    patients = Patient.objects.select_related("registered_gp")
    if born_on is not None:
        patients = patients.filter(date_of_birth=born_on).alias(_age_distance=Value(0))
    else:
        patients = patients.filter(date_of_birth__range=born_within(ages, today)).alias(
            _age_distance=Abs(2 * _age_today(today) - ages.likeliest_twice)
        )

    patients = _by_name(patients, "family_name", family_name)
    patients = _by_name(patients, "given_name", given_name) if given_name else patients.alias(_given_name_tier=Value(0))

    if postcode is None:
        patients = patients.alias(_postcode_tier=Value(0))
    else:
        compact = Upper(Replace(Replace(F("postcode"), Value(" "), Value("")), Value("-"), Value("")))
        patients = patients.alias(_postcode=compact, _postcode_length=Length(compact))
        unknown = Q(restricted=True) | Q(_postcode="")
        same_outward = Q(_postcode__startswith=postcode.outward, _postcode_length=len(postcode.outward) + 3)
        same_full = Q(_postcode=postcode.compact) if postcode.inward else Q(pk__in=[])
        patients = patients.filter(unknown | same_outward).alias(
            _postcode_tier=Case(
                When(unknown, then=Value(2)), When(same_full, then=Value(0)), When(same_outward, then=Value(1))
            )
        )

    if sex in (Sex.FEMALE, Sex.MALE):
        patients = patients.filter(sex__in=[sex, Sex.OTHER, Sex.UNKNOWN])

    ranked = patients.order_by(
        "_family_name_tier",
        "_given_name_tier",
        "_postcode_tier",
        "_age_distance",
        Upper("family_name"),
        Upper("given_name"),
        "date_of_birth",
        "nhs_number",
    )
    shown = settings.SEARCH_MAX_RESULTS
    first = list(ranked[: shown + 1])
    return Found(patients=first[:shown], more=len(first) > shown)
