"""The record: the patient, their support network, and one model per record category.

Every entry carries its patient (queries are always per patient, and it is the key a distributed
database would shard on), its source organisation, and the identifier the source gave it, unique per
organisation, which is what makes imports idempotent.
"""

import uuid
from datetime import date

from django.db import models
from django.utils import timezone

from .categories import Category, entry_models, register
from .nhs_numbers import format_nhs_number, validate_nhs_number
from .postcodes import display_postcode
from .units import display_unit, with_unit


class Sex(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Not known"


class Patient(models.Model):
    # Random, not sequential: a URL must not let anyone walk the patient list.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    nhs_number = models.CharField("NHS number", max_length=10, unique=True, validators=[validate_nhs_number])
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    date_of_birth = models.DateField()
    date_of_death = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=10, choices=Sex.choices, default=Sex.UNKNOWN)
    address = models.TextField(blank=True)
    postcode = models.CharField(max_length=10, blank=True)
    phone = models.CharField(max_length=30, blank=True)
    email = models.EmailField(blank=True)
    deceased = models.BooleanField(
        default=False, db_default=False, help_text="Said deceased by a source (with or without a date of death)."
    )
    restricted = models.BooleanField(
        "restricted (S-flag)",
        default=False,
        db_default=False,
        help_text="Flagged restricted at source (the NHS 'S-flag'): address, phone, email and contacts are "
        "hidden from every viewer and every output.",
    )
    registered_gp = models.ForeignKey(
        "directory.Organisation",
        verbose_name="registered GP practice",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="registered_patients",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["family_name", "given_name"]
        # `read_shared_record` is the object permission a current involvement grants the care team's group on
        # this patient (sharing.actions); the access decision (sharing.access) reads nothing else, and only as a
        # per-patient grant: no global permission, staff or superuser flag stands in for a care relationship.
        # Django's own view/add/change/delete are admin's (IG hold `view_patient` to find a patient's
        # demographics there, each look audited); none of them lets anyone read the record.
        permissions = [("read_shared_record", "Read the shared record (through a care relationship)")]
        indexes = [
            # Search: exact date of birth, then family name (case-folded prefix). Date first: a LIKE prefix
            # cannot use a leading text column under a non-C collation, and a date narrows a million
            # patients to a few dozen.
            models.Index(models.F("date_of_birth"), models.functions.Upper("family_name"), name="patient_dob_name"),
        ]

    def __str__(self):
        return f"{self.full_name} ({self.nhs_number_display})"

    @property
    def full_name(self):
        return f"{self.given_name} {self.family_name.upper()}"

    @property
    def nhs_number_display(self):
        return format_nhs_number(self.nhs_number)

    @property
    def postcode_display(self):
        return display_postcode(self.postcode)

    def age(self, on: date | None = None) -> int:
        on = on or self.date_of_death or timezone.localdate()
        born = self.date_of_birth
        return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


class SupportPerson(models.Model):
    """Carers, next of kin and others in the patient's support network (shared as "involved teams")."""

    category = Category.TEAMS

    class Relationship(models.TextChoices):
        NEXT_OF_KIN = "next-of-kin", "Next of kin"
        CARER = "carer", "Carer"
        PARTNER = "partner", "Partner"
        PARENT = "parent", "Parent or guardian"
        CHILD = "child", "Son or daughter"
        FRIEND = "friend", "Friend"
        LASTING_POWER_OF_ATTORNEY = "lpa", "Lasting power of attorney"
        OTHER = "other", "Other"

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="support_network")
    source_organisation = models.ForeignKey("directory.Organisation", on_delete=models.PROTECT, related_name="+")
    source_id = models.CharField(max_length=200)
    name = models.CharField(max_length=200)
    relationship = models.CharField(max_length=20, choices=Relationship.choices)
    phone = models.CharField(max_length=30, blank=True)
    notes = models.CharField(max_length=500, blank=True)
    source_updated_at = models.DateTimeField(default=timezone.now)
    sensitive = models.BooleanField(default=False)
    entered_in_error = models.BooleanField(default=False)

    class Meta:
        ordering = ["relationship", "name"]
        constraints = [
            models.UniqueConstraint(fields=["source_organisation", "source_id"], name="supportperson_source_unique")
        ]

    def __str__(self):
        return f"{self.name} ({self.get_relationship_display()})"


class Coding(models.Model):
    """A code kept as the source sent it: the first coded system and code (what pages group and search by),
    and every coding the source sent (SNOMED CT, dm+d, LOINC, local), each {"system", "code", "display"}."""

    code_system = models.CharField(max_length=200, blank=True)
    code = models.CharField(max_length=100, blank=True)
    codings = models.JSONField(
        default=list, db_default=[], blank=True, help_text="Every coding the source sent, in its order."
    )

    class Meta:
        abstract = True


class RecordEntry(models.Model):
    """What every clinical item shares: whose it is, who recorded it, and when."""

    category: Category  # set by each subclass

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    source_organisation = models.ForeignKey("directory.Organisation", on_delete=models.PROTECT, related_name="+")
    source_id = models.CharField(max_length=200, help_text="The identifier the source system gave this item.")
    # Clinical dates are the source's, or none: a missing date is stored as missing and shown as "Date not
    # recorded", never filled in with the time carerecord received it (that is `created_at`, shown as "received").
    effective_at = models.DateTimeField(
        null=True, blank=True, help_text="When it happened clinically (onset, date given, taken); empty if not said."
    )
    recorded_at = models.DateTimeField(
        null=True, blank=True, help_text="When the source recorded it (e.g. Condition.recordedDate), if said."
    )
    source_updated_at = models.DateTimeField(help_text="When the source system last changed it.")
    sensitive = models.BooleanField(
        default=False, help_text="Flagged sensitive at source: only the source organisation sees it."
    )
    entered_in_error = models.BooleanField(
        default=False, help_text="Withdrawn by the source as entered in error: kept for history, shown to no one."
    )
    created_at = models.DateTimeField("received", auto_now_add=True, help_text="When carerecord received it.")

    class Meta:
        abstract = True
        # Undated entries after dated ones, the same on PostgreSQL (NULLs first when descending) and SQLite.
        ordering = [models.F("effective_at").desc(nulls_last=True), "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source_organisation", "source_id"], name="%(app_label)s_%(class)s_source_unique"
            )
        ]
        indexes = [
            models.Index(fields=["patient", "-effective_at"], name="%(app_label)s_%(class)s_pat_date"),
            # "New since you last looked" (sharing.changes): what arrived after a time, read by index (a heavy
            # patient's record, 5,000 entries, was scanned whole on every page: 15 ms of the summary's SQL).
            models.Index(fields=["patient", "created_at"], name="%(app_label)s_%(class)s_pat_recv"),
        ]


@register(Category.APPOINTMENTS)
class Appointment(RecordEntry):
    """An appointment, an attendance or admission (FHIR Encounter), or a referral (ServiceRequest): where a
    clinician looks for when the patient was last seen, is expected, or was sent."""

    class Status(models.TextChoices):
        BOOKED = "booked", "Booked"
        ATTENDED = "attended", "Attended"
        CANCELLED = "cancelled", "Cancelled"
        DID_NOT_ATTEND = "noshow", "Did not attend"
        IN_PROGRESS = "in-progress", "In progress"
        REQUESTED = "requested", "Requested"
        COMPLETED = "completed", "Completed"

    class Kind(models.TextChoices):
        APPOINTMENT = "appointment", "Appointment"
        ATTENDANCE = "attendance", "Attendance"
        ADMISSION = "admission", "Admission"
        REFERRAL = "referral", "Referral or request"

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.APPOINTMENT, db_default="appointment")
    encounter_class = models.CharField(
        max_length=20, blank=True, db_default="", help_text="An encounter's class code (IMP, AMB, EMER, ...)."
    )
    ends_at = models.DateTimeField(
        null=True, blank=True, help_text="When an attendance or admission ended; empty while it is open."
    )

    service = models.CharField(max_length=200, help_text="Clinic or service, e.g. 'Diabetes clinic'.")
    location = models.CharField(max_length=200, blank=True)
    clinician = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.BOOKED)
    description = models.TextField(blank=True)

    def __str__(self):
        return f"{self.service} on {self.effective_at:%d %b %Y}"


class VerificationStatus(models.TextChoices):
    """FHIR's verificationStatus of a condition or allergy, as the source sent it ("" where it sent none).
    Entered-in-error is not one of them: such an entry is withdrawn (`entered_in_error`)."""

    UNCONFIRMED = "unconfirmed", "Unconfirmed"
    PROVISIONAL = "provisional", "Provisional"
    DIFFERENTIAL = "differential", "Differential"
    CONFIRMED = "confirmed", "Confirmed"
    REFUTED = "refuted", "Refuted"
    NOT_RECORDED = "", "Not recorded"


@register(Category.CONDITIONS)
class Condition(RecordEntry, Coding):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RESOLVED = "resolved", "Resolved"
        REMISSION = "remission", "In remission"

    name = models.CharField(max_length=300)
    clinical_status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    verification_status = models.CharField(
        max_length=20, choices=VerificationStatus.choices, blank=True, default="", db_default=""
    )
    condition_category = models.CharField(
        max_length=100,
        blank=True,
        default="",
        db_default="",
        help_text="Condition.category's code as sent: problem-list-item, encounter-diagnosis, ...",
    )
    resolved_on = models.DateField(null=True, blank=True)
    notes = models.TextField(blank=True)

    def __str__(self):
        return self.name


@register(Category.MEDICATIONS)
class Medication(RecordEntry, Coding):
    class Status(models.TextChoices):
        ACTIVE = "active", "Current"
        STOPPED = "stopped", "Stopped"
        COMPLETED = "completed", "Completed"

    class Kind(models.TextChoices):
        REPEAT = "repeat", "Repeat"
        ACUTE = "acute", "Acute"
        HOSPITAL = "hospital", "Hospital"

    class Event(models.TextChoices):
        """What the source's resource records: a medication being taken or prescribed is the record of a
        medicine; a dispensing or an administration is an event about one, never by itself a current medicine."""

        RECORDED = "", "Recorded"
        PRESCRIBED = "prescribed", "Prescribed"
        DISPENSED = "dispensed", "Dispensed"
        ADMINISTERED = "administered", "Administered"

    name = models.CharField(max_length=300)
    dosage = models.CharField(max_length=300, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.ACUTE)
    event = models.CharField(max_length=20, choices=Event.choices, blank=True, default=Event.RECORDED, db_default="")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    ended_on = models.DateField(null=True, blank=True)

    def __str__(self):
        return self.name


@register(Category.ALERTS)
class Alert(RecordEntry):
    class Kind(models.TextChoices):
        SAFEGUARDING = "safeguarding", "Safeguarding"
        DNACPR = "dnacpr", "DNACPR"
        RISK = "risk", "Risk to staff"
        COMMUNICATION = "communication", "Communication need"
        CLINICAL = "clinical", "Clinical"

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.CLINICAL)
    text = models.CharField(max_length=500)
    active = models.BooleanField(default=True)

    def __str__(self):
        return self.text


@register(Category.ALLERGIES)
class Allergy(RecordEntry, Coding):
    class Severity(models.TextChoices):
        MILD = "mild", "Mild"
        MODERATE = "moderate", "Moderate"
        SEVERE = "severe", "Severe"
        UNKNOWN = "", "Not recorded"

    class ClinicalStatus(models.TextChoices):
        """FHIR's AllergyIntolerance.clinicalStatus. An allergy not said to be resolved is treated as current:
        a clinician must never miss a live allergy because its source left the status out."""

        ACTIVE = "active", "Active"
        INACTIVE = "inactive", "Inactive"
        RESOLVED = "resolved", "Resolved"
        UNKNOWN = "", "Not recorded"

    substance = models.CharField(max_length=300)
    reaction = models.CharField(max_length=300, blank=True)
    severity = models.CharField(max_length=20, choices=Severity.choices, blank=True, default=Severity.UNKNOWN)
    clinical_status = models.CharField(
        max_length=20, choices=ClinicalStatus.choices, blank=True, default=ClinicalStatus.UNKNOWN, db_default=""
    )
    verification_status = models.CharField(
        max_length=20, choices=VerificationStatus.choices, blank=True, default="", db_default=""
    )

    class Meta(RecordEntry.Meta):
        verbose_name_plural = "allergies"

    def __str__(self):
        return self.substance

    @property
    def is_current(self):
        return self.clinical_status not in (self.ClinicalStatus.INACTIVE, self.ClinicalStatus.RESOLVED)


@register(Category.RESULTS)
class Result(RecordEntry, Coding):
    """A report (e.g. a full blood count) holding one or more observations, or one standalone observation.

    A standalone Observation (a vital sign, a social-history finding) is held as a Result of kind
    "observation" so that it follows the same sharing rules, but it is shown and given back as the
    Observation it was: no DiagnosticReport is made up for it."""

    class Kind(models.TextChoices):
        REPORT = "report", "Report"
        OBSERVATION = "observation", "Observation"

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.REPORT, db_default="report")
    observation_category = models.CharField(
        max_length=100,
        blank=True,
        db_default="",
        help_text="A standalone observation's category code (vital-signs, ...).",
    )
    name = models.CharField(max_length=300)
    status = models.CharField(max_length=20, default="final")
    conclusion = models.TextField(blank=True)

    def __str__(self):
        return self.name


class Observation(Coding):
    """One measured value in a result report. Visibility follows its report."""

    category = Category.RESULTS

    class Flag(models.TextChoices):
        NORMAL = "", "Normal"
        HIGH = "H", "High"
        LOW = "L", "Low"
        ABNORMAL = "A", "Abnormal"

    result = models.ForeignKey(Result, on_delete=models.CASCADE, related_name="observations")
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    value = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    value_text = models.CharField(max_length=200, blank=True)
    unit = models.CharField(max_length=50, blank=True, help_text="The unit as the source wrote it.")
    unit_system = models.CharField(
        max_length=200, blank=True, db_default="", help_text="Usually UCUM (http://unitsofmeasure.org)."
    )
    unit_code = models.CharField(
        max_length=50, blank=True, db_default="", help_text="The coded unit, e.g. UCUM 'umol/L'."
    )
    observation_category = models.CharField(
        max_length=100, blank=True, db_default="", help_text="e.g. vital-signs, laboratory."
    )
    # A component (systolic, diastolic) is stored as a row, and keeps the reading it is part of so that a
    # blood pressure is shown and given back as one reading.
    reading_name = models.CharField(
        max_length=200, blank=True, db_default="", help_text="The reading a component is part of."
    )
    reading_code = models.CharField(max_length=100, blank=True, db_default="")
    interpretation = models.CharField(
        max_length=200, blank=True, db_default="", help_text="The source's interpretation, as text."
    )
    reference_text = models.CharField(
        max_length=300, blank=True, db_default="", help_text="A reference range given as text."
    )
    reference_low = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    reference_high = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    flag = models.CharField(max_length=1, choices=Flag.choices, blank=True, default=Flag.NORMAL)
    effective_at = models.DateTimeField(null=True, blank=True)
    # The source's Observation resource ("Observation/<id>") this value came from; its report may be another
    # resource (a DiagnosticReport listing it), so imports find and move the values by this.
    source_id = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = [models.F("effective_at").desc(nulls_last=True), "name"]
        indexes = [
            models.Index(fields=["patient", "code", "-effective_at"], name="observation_pat_code_date"),
            models.Index(fields=["source_id"], name="observation_source_id"),
        ]

    def __str__(self):
        return f"{self.name} {self.display_value}"

    @property
    def display_value(self):
        """The value as a clinician reads it: "120 mmHg", "5.2 µmol/L" (UCUM codes rewritten: patients.units)."""
        if self.value is None:
            return self.value_text
        return with_unit(f"{self.value.normalize():f}", display_unit(self.unit, self.unit_code, self.unit_system))

    @property
    def reference_range(self):
        """The source's range: "20 to 41 mmol/mol", "at least 60" or "up to 5" for one bound, its text if it
        gave one ("(text)" after the numbers when it gave both)."""
        low = None if self.reference_low is None else f"{self.reference_low.normalize():f}"
        high = None if self.reference_high is None else f"{self.reference_high.normalize():f}"
        if low is None and high is None:
            return self.reference_text
        bounds = f"{low} to {high}" if low and high else (f"at least {low}" if low else f"up to {high}")
        numbers = with_unit(bounds, display_unit(self.unit, self.unit_code, self.unit_system))
        return f"{numbers} ({self.reference_text})" if self.reference_text else numbers

    @property
    def abnormal(self):
        return bool(self.flag)


@register(Category.PROCEDURES)
class Procedure(RecordEntry, Coding):
    class Status(models.TextChoices):
        COMPLETED = "completed", "Completed"
        IN_PROGRESS = "in-progress", "In progress"
        NOT_DONE = "not-done", "Not done"
        PREPARATION = "preparation", "Planned"
        STOPPED = "stopped", "Stopped"
        UNKNOWN = "unknown", "Not known"

    name = models.CharField(max_length=300)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.COMPLETED)
    body_site = models.CharField(max_length=200, blank=True)
    outcome = models.CharField(max_length=300, blank=True)
    performer = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)

    def __str__(self):
        return self.name


@register(Category.IMMUNISATIONS)
class Immunisation(RecordEntry, Coding):
    """A vaccination given (or recorded as not given, with the reason): FHIR Immunization."""

    class Status(models.TextChoices):
        COMPLETED = "completed", "Given"
        NOT_DONE = "not-done", "Not given"

    vaccine = models.CharField(max_length=300)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.COMPLETED)
    dose = models.CharField(max_length=100, blank=True, help_text="Dose number in the series, as the source said.")
    site = models.CharField(max_length=200, blank=True)
    route = models.CharField(max_length=200, blank=True)
    lot_number = models.CharField(max_length=100, blank=True)
    reason_not_given = models.CharField(max_length=300, blank=True)
    notes = models.TextField(blank=True)

    def __str__(self):
        return self.vaccine


@register(Category.LETTERS)
class Letter(RecordEntry):
    class Kind(models.TextChoices):
        CLINIC = "clinic", "Clinic letter"
        TO_GP = "to-gp", "Letter to GP"
        DISCHARGE = "discharge", "Discharge summary"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    title = models.CharField(max_length=300)
    author = models.CharField(max_length=200, blank=True)
    body = models.TextField()

    def __str__(self):
        return self.title


@register(Category.CARE_PLANS)
class CarePlan(RecordEntry):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        COMPLETED = "completed", "Completed"
        DRAFT = "draft", "Draft"

    title = models.CharField(max_length=300)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    description = models.TextField(blank=True)
    review_on = models.DateField(null=True, blank=True)

    def __str__(self):
        return self.title


@register(Category.EVENTS)
class CareEvent(RecordEntry):
    """Community, CAMHS and addiction service events."""

    class Service(models.TextChoices):
        COMMUNITY = "community", "Community"
        CAMHS = "camhs", "CAMHS"
        ADDICTION = "addiction", "Addiction"

    service = models.CharField(max_length=20, choices=Service.choices)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    practitioner = models.CharField(max_length=200, blank=True)

    def __str__(self):
        return self.title


class LetterAttachment(models.Model):
    """A document's content as the source sent it (a PDF letter, say), kept with its letter. Visibility follows
    its letter; it is served (FHIR Binary, the letter page) only through the access decision, each time audited."""

    letter = models.ForeignKey(Letter, on_delete=models.CASCADE, related_name="attachments")
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=300, blank=True)
    content_type = models.CharField(max_length=100)
    data = models.BinaryField()
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, help_text="Of the content: a re-sent document stores nothing new.")
    created_at = models.DateTimeField("received", auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["letter", "sha256"], name="letterattachment_unique")]

    def __str__(self):
        return self.title or f"Attachment {self.pk}"


# Category -> model, in the order of Category (involved teams live in sharing: they grant access).
ENTRY_MODELS = entry_models()


class SourcePatientId(models.Model):
    """Which patient a source organisation's own Patient resource id stands for.

    Partners' clinical resources point at their Patient by the id their system gave it ("Patient/abc"),
    not by NHS number, so later imports resolve those references through this table. The version kept is
    the newest the source has sent, so an older copy arriving late does not overwrite demographics.
    """

    organisation = models.ForeignKey("directory.Organisation", on_delete=models.CASCADE, related_name="+")
    resource_id = models.CharField(max_length=200)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    source_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation", "resource_id"], name="sourcepatientid_unique")]

    def __str__(self):
        return f"{self.resource_id} at {self.organisation_id}"


class SourceResource(models.Model):
    """A resource a source sent that is not a record entry (Practitioner, PractitionerRole, Medication,
    Organization): kept as its display name and code so that later entries referring to it show a name."""

    organisation = models.ForeignKey("directory.Organisation", on_delete=models.CASCADE, related_name="+")
    resource_id = models.CharField(max_length=200)
    name = models.CharField(max_length=300, blank=True)
    code_system = models.CharField(max_length=200, blank=True)
    code = models.CharField(max_length=100, blank=True)
    source_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation", "resource_id"], name="sourceresource_unique")]

    def __str__(self):
        return f"{self.resource_id}: {self.name}"


class SourceDemographics(models.Model):
    """What one source organisation says about who the patient is, with when it said it.

    The Patient row holds the master view chosen from these by a documented precedence (patients.demographics);
    each source's own version is kept so that disagreements can be shown and IG can resolve them."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="source_demographics")
    organisation = models.ForeignKey("directory.Organisation", on_delete=models.PROTECT, related_name="+")
    resource_id = models.CharField(max_length=200, blank=True, help_text="The source's Patient resource id.")
    given_name = models.CharField(max_length=100, blank=True)
    family_name = models.CharField(max_length=100, blank=True)
    date_of_birth = models.DateField(null=True, blank=True)
    date_of_death = models.DateField(null=True, blank=True)
    deceased = models.BooleanField(default=False)
    sex = models.CharField(max_length=10, choices=Sex.choices, blank=True)
    address = models.TextField(blank=True)
    postcode = models.CharField(max_length=10, blank=True)
    phone = models.CharField(max_length=30, blank=True)
    email = models.EmailField(blank=True)
    registered_gp = models.ForeignKey(
        "directory.Organisation", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    restricted = models.BooleanField(default=False)
    source_updated_at = models.DateTimeField(null=True, blank=True, help_text="When the source last changed it.")
    received_at = models.DateTimeField(auto_now=True, help_text="When carerecord last received it.")

    class Meta:
        verbose_name_plural = "source demographics"
        constraints = [models.UniqueConstraint(fields=["patient", "organisation"], name="sourcedemographics_unique")]

    def __str__(self):
        return f"{self.patient_id} according to {self.organisation_id}"
