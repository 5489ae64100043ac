"""Django admin for information governance: the regional process texts, and the objection queue and workflow.

An objection's row is never edited through the admin form: what the requester told us is kept as they said
it, and every change of state is a workflow step (match, verify, uphold, reject, withdraw) posted from the
change page to its own URL, which calls `optout.actions` (audited there, and the requester told by email).
Nothing is ever deleted. A step that the state machine refuses comes back as an error message, never a 500.
"""

import logging
import uuid
from dataclasses import dataclass

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone

from audit.admin import NoDirectWritesMixin
from audit.models import AuditEvent
from audit.writers import record_admin_view
from directory.profiles import professional_for
from patients.models import Patient
from patients.nhs_numbers import looks_like_nhs_number, normalise, validate_nhs_number

from . import actions
from .forms import POSTCODE
from .models import Objection, RegionalProcess

Status = Objection.Status
CANDIDATE_LIMIT = 20
logger = logging.getLogger(__name__)


@admin.register(RegionalProcess)
class RegionalProcessAdmin(admin.ModelAdmin):
    """The text shown on the public "How to opt out" page, one per region. Kept, not deleted: a region without
    one would leave its patients with no process to follow."""

    list_display = ("region", "title", "contact_email", "contact_phone", "updated_at")
    fields = ("region", "title", "body", "contact_email", "contact_phone", "updated_at")

    def get_readonly_fields(self, request, obj=None):
        return ("region", "updated_at") if obj else ("updated_at",)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        """What patients are told about objecting is IG's public word: saved and audited by the action."""
        actions.save_regional_process(by=request.user, process=obj, changed=form.changed_data)


@dataclass(frozen=True)
class Candidate:
    patient: Patient
    matched_on: tuple[str, ...]
    current: bool

    @property
    def by_nhs_number(self):
        return "NHS number" in self.matched_on


def _compact(postcode):
    return postcode.replace(" ", "").upper()


def candidate_patients(objection) -> list[Candidate]:
    """Patients the requester may mean: the same NHS number and date of birth, or the same family name and date
    of birth. Best first (NHS number, then postcode); IG decides, nothing is matched automatically."""
    found = set()
    if objection.nhs_number:
        same_number = Patient.objects.filter(nhs_number=objection.nhs_number, date_of_birth=objection.date_of_birth)
        found.update(same_number.values_list("pk", flat=True))
    namesakes = Patient.objects.filter(
        family_name__iexact=objection.family_name.strip(), date_of_birth=objection.date_of_birth
    ).order_by("given_name")
    found.update(namesakes.values_list("pk", flat=True)[:CANDIDATE_LIMIT])
    patients = Patient.objects.filter(pk__in=found).select_related("registered_gp").prefetch_related("objections")
    candidates = []
    for patient in patients:
        matched_on = ["date of birth"]
        if objection.nhs_number and patient.nhs_number == objection.nhs_number:
            matched_on.insert(0, "NHS number")
        if patient.family_name.casefold() == objection.family_name.strip().casefold():
            matched_on.append("family name")
        if patient.given_name.casefold() == objection.given_name.strip().casefold():
            matched_on.append("given name")
        if _compact(patient.postcode) == _compact(objection.postcode):
            matched_on.append("postcode")
        candidates.append(Candidate(patient, tuple(matched_on), patient.pk == objection.patient_id))
    return sorted(
        candidates,
        key=lambda c: (not c.by_nhs_number, "postcode" not in c.matched_on, -len(c.matched_on), c.patient.full_name),
    )


def _reply_note(objection):
    """Email goes out from the action; IG must know when there is no address and they have to phone or write."""
    if objection.contact_email:
        return f" The requester has been emailed at {objection.contact_email}."
    phone = f" on {objection.contact_phone}" if objection.contact_phone else ""
    return f" There is no email address: tell the requester by phone{phone} or by letter."


@admin.register(Objection)
class ObjectionAdmin(NoDirectWritesMixin, admin.ModelAdmin):
    """The IG queue, oldest first, and the workflow on each objection's page. The row is a record of what was
    asked and decided: it changes only through the workflow steps (no add, change or delete form)."""

    list_display = (
        "reference",
        "status",
        "received_at",
        "age",
        "source",
        "requester",
        "region",
        "patient",
        "repeat_count",
    )
    list_filter = ("status", "source", "region")
    list_select_related = ("patient",)
    ordering = ("received_at",)
    search_fields = ("=reference", "given_name", "family_name", "on_behalf_name", "=nhs_number", "=postcode")
    date_hierarchy = "received_at"
    fieldsets = (
        (
            None,
            {"fields": ("reference", "status", "source", "received_at", "age", "repeat_count", "last_repeat_at")},
        ),
        (
            "The patient, as the requester described them",
            {"fields": ("given_name", "family_name", "date_of_birth", "nhs_number", "postcode", "region", "reason")},
        ),
        (
            "Who asked, and how to reply",
            {
                "fields": (
                    "on_behalf_name",
                    "on_behalf_relationship",
                    "contact_email",
                    "contact_phone",
                    "recorded_by",
                    "how_told",
                )
            },
        ),
        (
            "Matched patient and decision",
            {"fields": ("patient", "decided_by", "decided_at", "decision_reason", "clinician_name", "withdrawn_at")},
        ),
    )
    readonly_fields = tuple(name for _, options in fieldsets for name in options["fields"])

    @admin.display(description="age (days)", ordering="-received_at")
    def age(self, objection):
        return (timezone.now() - objection.received_at).days

    @admin.display(description="requester", ordering="family_name")
    def requester(self, objection):
        return objection.requester_name

    def get_search_results(self, request, queryset, search_term):
        """NHS numbers and postcodes as people type them ("943 476 5919", "SE1 7EH"); the stored postcode has no
        space, and an NHS number finds the matched patient's objections too."""
        term = search_term.strip()
        digits = normalise(term)
        if looks_like_nhs_number(digits):
            return queryset.filter(Q(nhs_number=digits) | Q(patient__nhs_number=digits)), False
        if POSTCODE.match(term.upper()):
            return queryset.filter(postcode=_compact(term)), False
        return super().get_search_results(request, queryset, search_term)

    def can_process(self, request):
        return request.user.has_perm("optout.change_objection")

    # --- the workflow ---

    STEPS = ("match", "verify", "uphold", "reject", "withdraw")

    def get_urls(self):
        steps = [
            path(
                f"<int:object_id>/{step}/",
                self.admin_site.admin_view(self.step_view),
                {"step": step},
                name=f"optout_objection_{step}",
            )
            for step in self.STEPS
        ]
        return steps + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The objection and its workflow. While it can be matched, the page shows candidate patients' details
        (date of birth, postcode, practice, other objections): one AccessEvent per candidate shown, per view,
        basis "ig-admin" (page "admin:objection-match"), so each finds it in "who has seen my record". What the
        requester told us, and the matched patient's name and NHS number, are the objection's own record."""
        objection = self.get_object(request, unquote(object_id))
        context = {**(extra_context or {})}
        workflow = None
        if objection is not None:
            context["workflow"] = workflow = self.workflow(request, objection)
        response = super().change_view(request, object_id, form_url, context)
        if workflow and workflow["candidates"] and response.status_code == 200:
            record_admin_view(
                request=request,
                professional=professional_for(request.user),
                patients=[candidate.patient for candidate in workflow["candidates"]],
                page="admin:objection-match",
            )
        return response

    def workflow(self, request, objection):
        status = objection.status
        can_process = self.can_process(request)
        can_match = can_process and status in (Status.RECEIVED, Status.VERIFIED)
        return {
            "can_process": can_process,
            "can_match": can_match,
            "can_verify": can_process and status == Status.RECEIVED,
            "can_uphold": can_process and status == Status.VERIFIED,
            "can_reject": can_process and status in (Status.RECEIVED, Status.VERIFIED),
            "can_withdraw": can_process and status in (Status.RECEIVED, Status.VERIFIED, Status.UPHELD),
            "candidates": candidate_patients(objection) if can_match else [],
            "urls": {step: reverse(f"admin:optout_objection_{step}", args=[objection.pk]) for step in self.STEPS},
            "audit_events": AuditEvent.objects.filter(target_type="Objection", target_id=str(objection.pk)).order_by(
                "at", "pk"
            ),
        }

    def step_view(self, request, object_id, step):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.can_process(request):
            raise PermissionDenied
        try:
            with transaction.atomic():
                # Locked, so two officers acting on the same request at once cannot both move it on.
                objection = get_object_or_404(Objection.objects.select_for_update(), pk=object_id)
                done = getattr(self, f"_{step}")(request, objection)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        except actions.InvalidTransition as error:
            messages.error(request, str(error))
        except OSError:  # smtplib's errors included: the step and its letter go together, or neither does
            logger.exception("Objection %s: the email for step %r could not be sent", object_id, step)
            messages.error(request, "The email to the requester could not be sent, so nothing was changed. Try again.")
        else:
            messages.success(request, done)
        return redirect("admin:optout_objection_change", object_id)

    def _match(self, request, objection):
        patient = self._chosen_patient(request.POST)
        actions.match_patient(by=request.user, objection=objection, patient=patient)
        return f"{objection.reference} is matched to {patient}."

    def _verify(self, request, objection):
        actions.verify(by=request.user, objection=objection)
        return f"{objection.reference} is verified. Now uphold or reject it."

    def _uphold(self, request, objection):
        reason = request.POST.get("reason", "").strip()
        if not reason:
            raise ValidationError("Give the reason for upholding the objection.")
        actions.uphold(by=request.user, objection=objection, reason=reason)
        return (
            f"{objection.reference} is upheld: from now on no other organisation's entries are shown in "
            f"{objection.patient.full_name}'s record." + _reply_note(objection)
        )

    def _reject(self, request, objection):
        actions.reject(
            by=request.user,
            objection=objection,
            reason=request.POST.get("reason", ""),
            clinical_need=bool(request.POST.get("clinical_need")),
            clinician_name=request.POST.get("clinician_name", ""),
        )
        return f"{objection.reference} is rejected." + _reply_note(objection)

    def _withdraw(self, request, objection):
        was_upheld = objection.status == Status.UPHELD
        actions.withdraw(by=request.user, objection=objection)
        restored = " The shared record is shown again from now on." if was_upheld else ""
        return f"{objection.reference} is withdrawn.{restored}" + _reply_note(objection)

    @staticmethod
    def _chosen_patient(data):
        """A candidate's button sends its patient id; IG may instead type an NHS number found another way."""
        if data.get("patient"):
            try:
                patient = Patient.objects.filter(pk=uuid.UUID(data["patient"])).first()
            except ValueError:
                patient = None
            if patient is None:
                raise ValidationError("That patient no longer exists: choose another.")
            return patient
        typed = data.get("nhs_number", "").strip()
        if not typed:
            raise ValidationError("Choose one of the candidate patients, or enter an NHS number.")
        validate_nhs_number(typed)
        patient = Patient.objects.filter(nhs_number=normalise(typed)).first()
        if patient is None:
            raise ValidationError(f"No patient has the NHS number {typed}.")
        return patient
