"""Django admin for what is shared with whom: sharing agreements (also inline on each organisation),
involvements, and the break-glass review queue.

Writes that grant or revoke access go through `sharing.actions`, exactly as in the app: adding an involvement
grants its team's view of the patient at once and ending one revokes it. Involvements are never deleted. The
guardian permission tables are deliberately not registered: grants follow involvements and are never edited by
hand.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode

from directory.admin import OrganisationAdmin
from directory.models import Organisation
from patients.admin import NhsNumberSearchMixin, PatientAdmin
from patients.models import Patient

from . import actions
from .models import BreakGlass, Involvement, SharingAgreement


class OrganisationCodeFilter(admin.SimpleListFilter):
    """Choices from the organisation table, not a DISTINCT over millions of audit rows."""

    title = "organisation"
    parameter_name = "organisation_code"

    def lookups(self, request, model_admin):
        return Organisation.objects.order_by("name").values_list("ods_code", "name")

    def queryset(self, request, queryset):
        return queryset.filter(organisation_code=self.value()) if self.value() else queryset


# --- organisations and what they share ---------------------------------------------------------------------------


class SharingAgreementInline(admin.TabularInline):
    model = SharingAgreement
    extra = 0
    fields = ("category", "shares", "since", "updated_at")
    readonly_fields = ("updated_at",)


class SharingOrganisationAdmin(OrganisationAdmin):
    """The directory's organisation page, with what the organisation shares."""

    inlines = [SharingAgreementInline]

    def save_formset(self, request, form, formset, change):
        if formset.model is not SharingAgreement:
            return super().save_formset(request, form, formset, change)
        agreements = formset.save(commit=False)
        for agreement in agreements:
            actions.save_sharing_agreement(by=request.user, agreement=agreement)
        for agreement in formset.deleted_objects:
            agreement.delete()


admin.site.unregister(Organisation)
admin.site.register(Organisation, SharingOrganisationAdmin)


@admin.register(SharingAgreement)
class SharingAgreementAdmin(admin.ModelAdmin):
    list_display = ("organisation", "category", "shares", "since", "updated_at")
    list_filter = ("category", "shares", "organisation__kind", "organisation__region")
    search_fields = ("organisation__name", "organisation__ods_code")
    list_select_related = ("organisation",)
    autocomplete_fields = ("organisation",)

    def save_model(self, request, obj, form, change):
        actions.save_sharing_agreement(by=request.user, agreement=obj)


# --- involvements -------------------------------------------------------------------------------------------------


class InvolvementStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return (("current", "Current"), ("ended", "Ended"), ("future", "Not started yet"))

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "current":
            return queryset.current(now)
        if self.value() == "ended":
            return queryset.filter(ended_at__lte=now)
        if self.value() == "future":
            return queryset.filter(started_at__gt=now)
        return queryset


@admin.register(Involvement)
class InvolvementAdmin(NhsNumberSearchMixin, admin.ModelAdmin):
    list_display = ("patient", "care_team", "organisation", "reason", "started_at", "ended_at", "current")
    list_filter = (
        "reason",
        InvolvementStatusFilter,
        "care_team__kind",
        "care_team__organisation__kind",
        "care_team__organisation__region",
        "care_team__organisation",
    )
    search_fields = (
        "=patient__nhs_number",
        "patient__family_name",
        "care_team__name",
        "=care_team__organisation__ods_code",
        "=source_id",
    )
    list_select_related = ("patient", "care_team__organisation")
    autocomplete_fields = ("patient", "care_team")
    date_hierarchy = "started_at"
    show_full_result_count = False
    fieldsets = (
        (
            None,
            {
                "fields": ("patient", "care_team", "reason", "started_at", "ended_at", "source_id"),
                "description": (
                    "Saving an involvement gives the care team access to the patient's record at once; an end "
                    "date in the past takes it away at once. Involvements are history: end them, never delete."
                ),
            },
        ),
    )

    @admin.display(ordering="care_team__organisation__name")
    def organisation(self, involvement):
        return involvement.care_team.organisation

    @admin.display(boolean=True)
    def current(self, involvement):
        return involvement.is_current

    def get_readonly_fields(self, request, obj=None):
        return ("patient", "care_team", "reason", "started_at", "source_id") if obj else ()

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if not change:
            created = actions.start_involvement(
                by=request.user,
                patient=obj.patient,
                care_team=obj.care_team,
                reason=obj.reason,
                started_at=obj.started_at,
                ended_at=obj.ended_at,
                source_id=obj.source_id,
            )
            obj.pk, obj._state.adding = created.pk, False
        elif "ended_at" in form.changed_data:
            if obj.ended_at:
                actions.end_involvement(by=request.user, involvement=obj, ended_at=obj.ended_at)
            else:
                actions.reopen_involvement(by=request.user, involvement=obj)


# --- break glass --------------------------------------------------------------------------------------------------

# Outcomes that close a review for good; "follow-up needed" stays open until it is concluded.
FINAL_REVIEW_OUTCOMES = frozenset({BreakGlass.Outcome.APPROPRIATE, BreakGlass.Outcome.INAPPROPRIATE})


class BreakGlassReviewForm(forms.ModelForm):
    """The review: an outcome, and a note whenever the outcome is anything but "appropriate" (it is what the
    follow-up, or the conversation with the professional, starts from). `reviewer` is set by the admin."""

    reviewer = None

    class Meta:
        model = BreakGlass
        fields = ("review_outcome", "review_note")

    def clean_review_outcome(self):
        outcome = self.cleaned_data["review_outcome"]
        if outcome == BreakGlass.Outcome.PENDING:
            raise ValidationError("Choose the outcome of the review.")
        return outcome

    def clean(self):
        cleaned = super().clean()
        if self.reviewer is not None and self.instance.user_id == self.reviewer.pk:
            raise ValidationError("You cannot review your own emergency access: ask another IG officer.")
        outcome = cleaned.get("review_outcome")
        needs_note = outcome in {BreakGlass.Outcome.INAPPROPRIATE, BreakGlass.Outcome.FOLLOW_UP}
        if needs_note and not cleaned.get("review_note", "").strip():
            self.add_error("review_note", "Say why, and what happens next.")
        return cleaned


class BreakGlassStatusFilter(admin.SimpleListFilter):
    """The queue as IG works it: what still needs a decision (never reviewed, or waiting on a follow-up)."""

    title = "review status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return (("to-review", "Not yet reviewed"), ("open", "Needing action (not reviewed or follow-up)"))

    def queryset(self, request, queryset):
        if self.value() == "to-review":
            return queryset.filter(review_outcome=BreakGlass.Outcome.PENDING)
        if self.value() == "open":
            return queryset.filter(review_outcome__in=[BreakGlass.Outcome.PENDING, BreakGlass.Outcome.FOLLOW_UP])
        return queryset


@admin.register(BreakGlass)
class BreakGlassAdmin(NhsNumberSearchMixin, admin.ModelAdmin):
    """The IG review queue: unreviewed first ("" sorts before every outcome), oldest first within each.

    Break glass itself happens only in the app. A review is recorded through `actions.review_break_glass`, so
    it is audited; a final outcome (appropriate, inappropriate) cannot be changed afterwards, and a follow-up
    can be concluded once more — again through the action, so every change of outcome is in the audit trail.
    """

    form = BreakGlassReviewForm
    list_display = (
        "started_at",
        "professional_name",
        "organisation_code",
        "patient",
        "reason_code",
        "expires_at",
        "review_outcome",
        "reviewed_by",
    )
    list_filter = (BreakGlassStatusFilter, "review_outcome", "reason_code", OrganisationCodeFilter)
    search_fields = ("professional_name", "=organisation_code", "=patient__nhs_number", "user__email")
    list_select_related = ("patient", "reviewed_by")
    date_hierarchy = "started_at"
    ordering = ("review_outcome", "started_at")
    fields = (
        "professional_name",
        "organisation_code",
        "user",
        "patient",
        "reason_code",
        "reason_text",
        "started_at",
        "expires_at",
        "what_they_opened",
        "review_outcome",
        "review_note",
        "reviewed_by",
        "reviewed_at",
    )
    readonly_fields = tuple(name for name in fields if name not in BreakGlassReviewForm.Meta.fields)

    @admin.display(description="What they opened")
    def what_they_opened(self, grant):
        """The evidence for the review: this professional's look-ups of this patient, from the access log."""
        if grant.pk is None:
            return "-"
        query = urlencode(
            {"professional": grant.user.email, "patient": grant.patient_id, "at__gte": grant.started_at.isoformat()}
        )
        return format_html(
            '<a href="{}?{}">Their accesses to this record since breaking the glass</a> · '
            '<a href="{}">Everyone who has seen this record</a>',
            reverse("admin:audit_accessevent_changelist"),
            query,
            reverse("admin:audit_accessevent_patient", args=[grant.patient_id]),
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.reviewer = request.user  # a class made for this request by modelform_factory
        return form

    def has_add_permission(self, request):
        return False

    def get_object(self, request, object_id, from_field=None):
        grant = super().get_object(request, object_id, from_field)
        if grant is not None:
            # A posted form sets review_outcome on the instance before it is valid, let alone saved; whether
            # the review is closed is decided on what is stored.
            grant.stored_outcome = grant.review_outcome
        return grant

    def has_change_permission(self, request, obj=None):
        if obj is not None and getattr(obj, "stored_outcome", obj.review_outcome) in FINAL_REVIEW_OUTCOMES:
            return False  # shown read-only; a POST is refused
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if not form.has_changed():
            return  # saving an unchanged follow-up is not a second review
        actions.review_break_glass(by=request.user, break_glass=obj, outcome=obj.review_outcome, note=obj.review_note)


# --- the patient page: who is involved ------------------------------------------------------------------------


class InvolvementInline(admin.TabularInline):
    """Shown for context; involvements are started and ended on their own page, where access follows."""

    model = Involvement
    fields = ("care_team", "reason", "started_at", "ended_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("care_team__organisation")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class SharingPatientAdmin(PatientAdmin):
    inlines = [*PatientAdmin.inlines, InvolvementInline]


admin.site.unregister(Patient)
admin.site.register(Patient, SharingPatientAdmin)
