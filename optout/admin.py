"""Django admin for information governance: the regional process texts, and the objection queue and workflow.

An objection's row is never edited through the admin form: what the requester told us is kept as they said
it, and every change of state is a workflow step (match, verify, uphold, reject, withdraw) posted from the
change page to its own URL, which calls `optout.actions` (audited there, and the requester told by email).
Nothing is ever deleted. A step that the state machine refuses comes back as an error message, never a 500.
Reject and Record withdrawal are asked twice: their first POST shows what will happen, and only the confirmed
POST (`confirm=yes`) takes the step.
"""

import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from audit.admin import NoDirectWritesMixin, QueueFilter
from audit.models import AuditEvent
from audit.names import Action
from audit.writers import record_admin_view
from directory.profiles import professional_for
from patients.models import Patient
from patients.nhs_numbers import looks_like_nhs_number, normalise, validate_nhs_number
from patients.postcodes import display_postcode, parse_postcode

from . import actions, queue
from .models import IdentityCheck, Objection, RegionalProcess

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


class ObjectionQueueFilter(QueueFilter):
    """Opens on the cases awaiting IG's decision; the dashboard links to "needs-action" and "overdue"."""

    title = "queue"
    parameter_name = "queue"
    NEEDS_ACTION, OVERDUE = "needs-action", "overdue"
    default = NEEDS_ACTION

    def lookups(self, request, model_admin):
        return [
            (self.NEEDS_ACTION, "Needs action (received or verified)"),
            (self.OVERDUE, f"Overdue (more than {settings.OPTOUT_RESPONSE_DAYS} days)"),
            *Status.choices,
        ]

    def filter_queue(self, queryset, value):
        if value == self.NEEDS_ACTION:
            return queue.needs_action(queryset)
        if value == self.OVERDUE:
            return queue.overdue(queryset)
        return queryset.filter(status=value)


# The audit trail on an objection's page, in words (the stored action names are for filtering the audit log).
TRAIL_NAMES = {
    Action.OBJECTION_RECEIVED: "Request received",
    Action.OBJECTION_RECORDED: "Recorded by a professional",
    Action.OBJECTION_REPEATED: "Asked again (repeat request)",
    Action.OBJECTION_MATCHED: "Matched to a patient",
    Action.OBJECTION_VERIFIED: "Identity checked, verified",
    Action.OBJECTION_UPHELD: "Upheld",
    Action.OBJECTION_REJECTED: "Rejected",
    Action.OBJECTION_WITHDRAWN: "Withdrawal recorded",
}
TRAIL_DETAIL_NAMES = {"identity_check": "identity checked", "how_told": "how told", "statement": "partner statement"}


def trail_detail(detail):
    """An audit row's detail as IG read it: "identity checked: Phoned back …", not "identity_check: call-back"."""
    parts = []
    for key, value in detail.items():
        if key == "identity_check" and value in IdentityCheck.values:
            value = IdentityCheck(value).label
        parts.append(f"{TRAIL_DETAIL_NAMES.get(key, key.replace('_', ' '))}: {value}")
    return "; ".join(parts)


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
    """The IG queue, oldest first, opening on the cases awaiting a decision, and the workflow on each objection's
    page. The row is a record of what was asked and decided: it changes only through the workflow steps (no add,
    change or delete form)."""

    list_display = (
        "reference",
        "status",
        "received_at",
        "age",
        "requester",
        # No postcode here: a professional's or partner's case copies the patient's, and the queue names people
        # without showing their details (no AccessEvent for a list; the case's page shows it).
        "region_code",
        "matched_patient",
        "repeats",
    )
    list_filter = (ObjectionQueueFilter, "source", "region")
    list_select_related = ("patient",)
    ordering = ("received_at",)
    search_fields = ("=reference", "given_name", "family_name", "on_behalf_name", "=nhs_number", "=postcode")
    date_hierarchy = "received_at"
    readonly_fields = (
        *("reference", "status", "source", "received_at", "age", "repeat_count", "last_repeat_at"),
        *("given_name", "family_name", "date_of_birth", "nhs_number", "postcode_display", "region", "reason"),
        *("on_behalf_name", "on_behalf_relationship", "contact_email", "contact_phone", "recorded_by", "how_told"),
        *("verified_by", "verified_at", "identity_check", "identity_check_note"),
        *("patient", "decided_by", "decided_at", "decision_reason", "clinician_name", "withdrawn_at"),
    )

    def get_fieldsets(self, request, obj=None):
        """Each stage's fields once it has happened: who verified and how after verify, who decided only after
        an uphold or reject (verify is not a decision), the withdrawal once recorded."""
        decision = ("patient",)
        if obj is not None and obj.decided_at is not None:
            decision += ("decided_by", "decided_at", "decision_reason")
            if obj.clinician_name:
                decision += ("clinician_name",)
        if obj is not None and obj.withdrawn_at is not None:
            decision += ("withdrawn_at",)
        fieldsets = [
            (
                None,
                {"fields": ("reference", "status", "source", "received_at", "age", "repeat_count", "last_repeat_at")},
            ),
            (
                "The patient, as the requester described them",
                {
                    "fields": (
                        *("given_name", "family_name", "date_of_birth", "nhs_number", "postcode_display"),
                        *("region", "reason"),
                    )
                },
            ),
            (
                "Who asked, and how to reply",
                {
                    "fields": (
                        *("on_behalf_name", "on_behalf_relationship", "contact_email", "contact_phone"),
                        *("recorded_by", "how_told"),
                    )
                },
            ),
        ]
        if obj is not None and obj.verified_at is not None:
            fieldsets.append(
                (
                    "Identity check",
                    {"fields": ("verified_by", "verified_at", "identity_check", "identity_check_note")},
                )
            )
        fieldsets.append(("Matched patient and decision", {"fields": decision}))
        return fieldsets

    @admin.display(description="age and response due", ordering="-received_at")
    def age(self, objection):
        return str(queue.age_of(objection))

    @admin.display(description="requester", ordering="family_name")
    def requester(self, objection):
        return objection.requester_name

    @admin.display(description="region", ordering="region")
    def region_code(self, objection):
        """The code (the name in full on hover, and in the filter beside the list), so the list fits a laptop."""
        return format_html('<abbr title="{}">{}</abbr>', objection.get_region_display(), objection.region)

    @admin.display(description="matched patient", ordering="patient__family_name")
    def matched_patient(self, objection):
        return objection.patient.full_name if objection.patient else "Not matched"

    @admin.display(description="repeats", ordering="repeat_count")
    def repeats(self, objection):
        return objection.repeat_count

    @admin.display(description="postcode", ordering="postcode")
    def postcode_display(self, objection):
        return display_postcode(objection.postcode)

    def get_search_results(self, request, queryset, search_term):
        """NHS numbers and postcodes as people type them ("943 476 5919", "SE1 7EH"); the stored postcode has no
        space, and an NHS number finds the matched patient's objections too."""
        term = search_term.strip()
        digits = normalise(term)
        if looks_like_nhs_number(digits):
            return queryset.filter(Q(nhs_number=digits) | Q(patient__nhs_number=digits)), False
        postcode = parse_postcode(term)
        if postcode is not None and postcode.inward:
            return queryset.filter(postcode=postcode.compact), False
        return super().get_search_results(request, queryset, search_term)

    def can_process(self, request):
        return request.user.has_perm("optout.change_objection")

    # --- the workflow ---

    STEPS = ("match", "verify", "uphold", "reject", "withdraw")
    # Steps that close the case against what the patient asked, or undo an objection: asked twice.
    CONFIRMED_STEPS = ("reject", "withdraw")

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
            "identity_checks": IdentityCheck.choices,
            "trail": [
                {
                    "at": event.at,
                    "what": TRAIL_NAMES.get(event.action, event.action),
                    "who": event.actor_email,
                    "detail": trail_detail(event.detail),
                }
                for event in AuditEvent.objects.filter(target_type="Objection", target_id=str(objection.pk)).order_by(
                    "at", "pk"
                )
            ],
        }

    def step_view(self, request, object_id, step):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.can_process(request):
            raise PermissionDenied
        if step in self.CONFIRMED_STEPS and request.POST.get("confirm") != "yes":
            return self.confirmation_view(request, object_id, step)
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

    def confirmation_view(self, request, object_id, step):
        """What the step will do, in words, with the values entered carried in hidden fields; changes nothing.
        Values the step would refuse come back to the change page as its error message instead."""
        objection = get_object_or_404(Objection.objects.select_related("patient"), pk=object_id)
        values = self._reject_values(request.POST) if step == "reject" else {}
        try:
            if step == "reject":
                actions.check_reject(objection=objection, **values)
            else:
                actions.check_withdraw(objection=objection)
        except actions.InvalidTransition as error:
            messages.error(request, str(error))
            return redirect("admin:optout_objection_change", object_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "object": objection,
            "title": f"{'Reject' if step == 'reject' else 'Record the withdrawal of'} {objection.reference}?",
            "action_url": reverse(f"admin:optout_objection_{step}", args=[objection.pk]),
            "change_url": reverse("admin:optout_objection_change", args=[objection.pk]),
            "values": values,
            "was_upheld": objection.status == Status.UPHELD,
        }
        return TemplateResponse(request, f"admin/optout/objection/confirm_{step}.html", context)

    @staticmethod
    def _reject_values(data):
        return {
            "reason": data.get("reason", "").strip(),
            "clinical_need": bool(data.get("clinical_need")),
            "clinician_name": data.get("clinician_name", "").strip(),
        }

    def _match(self, request, objection):
        patient = self._chosen_patient(request.POST)
        actions.match_patient(by=request.user, objection=objection, patient=patient)
        return f"{objection.reference} is matched to {patient}."

    def _verify(self, request, objection):
        actions.verify(
            by=request.user,
            objection=objection,
            identity_check=request.POST.get("identity_check", ""),
            note=request.POST.get("identity_check_note", ""),
        )
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
        actions.reject(by=request.user, objection=objection, **self._reject_values(request.POST))
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
