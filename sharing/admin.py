"""Django admin for information governance: organisations and what they share, professionals and care teams,
who is involved with whom, break-glass review, API tokens, and the two audit trails (read-only).

Writes that grant or revoke access go through `sharing.actions`, exactly as in the app: adding an involvement
grants its team's view of the patient at once and ending one revokes it; team memberships keep the team's
Django group in step. Involvements and audit rows are never deleted. The guardian permission tables are
deliberately not registered: grants follow involvements and are never edited by hand.
"""

import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from patients.admin import NhsNumberSearchMixin
from patients.nhs_numbers import normalise

from . import actions
from .models import (
    AccessEvent,
    ApiToken,
    AuditEvent,
    BreakGlass,
    CareTeam,
    CareTeamMembership,
    Involvement,
    Organisation,
    Professional,
    SharingAgreement,
)


def _audit_agreement(request, agreement):
    """Sharing agreements decide what everyone else sees, so each change is an IG audit event."""
    actions.audit(
        by=request.user,
        action="sharing-agreement.changed",
        target=agreement,
        organisation=agreement.organisation.ods_code,
        category=agreement.category,
        shares=agreement.shares,
        since=agreement.since,
    )


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


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ("name", "ods_code", "kind", "region", "active")
    list_filter = ("kind", "region", "active")
    search_fields = ("name", "ods_code")
    inlines = [SharingAgreementInline]

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        if formset.model is SharingAgreement:
            for agreement in formset.new_objects + [changed for changed, _ in formset.changed_objects]:
                _audit_agreement(request, agreement)


@admin.register(SharingAgreement)
class SharingAgreementAdmin(admin.ModelAdmin):
    list_display = ("organisation", "category", "shares", "since", "updated_at")
    list_filter = ("category", "shares", "organisation__kind", "organisation__region")
    search_fields = ("organisation__name", "organisation__ods_code")
    list_select_related = ("organisation",)
    autocomplete_fields = ("organisation",)

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            _audit_agreement(request, obj)


# --- professionals ------------------------------------------------------------------------------------------------


class ProfessionalCreationForm(forms.ModelForm):
    """Provisions the sign-in account with the profile: people sign in with their email address and set a
    password through "forgot password"; the service then makes them set up an authenticator app."""

    email = forms.EmailField(help_text="Their work email address: they sign in with it.")
    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150)

    class Meta:
        model = Professional
        fields = (
            "email",
            "first_name",
            "last_name",
            "organisation",
            "role",
            "job_title",
            "registration_number",
            "active",
        )

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if get_user_model().objects.filter(Q(username__iexact=email) | Q(email__iexact=email)).exists():
            raise ValidationError("An account with this email address already exists.")
        return email


class ProfessionalMembershipInline(admin.TabularInline):
    """Which teams a professional is in; memberships are changed on the care team, where access is granted."""

    model = CareTeamMembership
    fields = ("team", "role_in_team")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "care teams (change memberships on the care team)"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Professional)
class ProfessionalAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "organisation", "role", "job_title", "registration_number", "active")
    list_filter = ("role", "active", "organisation__kind", "organisation__region", "organisation")
    search_fields = (
        "user__email",
        "user__first_name",
        "user__last_name",
        "registration_number",
        "organisation__ods_code",
        "organisation__name",
    )
    list_select_related = ("user", "organisation")
    autocomplete_fields = ("organisation",)
    inlines = [ProfessionalMembershipInline]

    @admin.display(ordering="user__last_name")
    def name(self, professional):
        return professional.name

    @admin.display(ordering="user__email")
    def email(self, professional):
        return professional.user.email

    def get_fields(self, request, obj=None):
        if obj is None:
            return ProfessionalCreationForm.Meta.fields
        return ("user", "organisation", "role", "job_title", "registration_number", "active")

    def get_readonly_fields(self, request, obj=None):
        return ("user",) if obj else ()

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ProfessionalCreationForm
        return super().get_form(request, obj, **kwargs)

    def get_inlines(self, request, obj):
        return self.inlines if obj else []

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            if not change:
                data = form.cleaned_data
                obj.user = get_user_model().objects.create_user(
                    username=data["email"],
                    email=data["email"],
                    first_name=data["first_name"],
                    last_name=data["last_name"],
                )  # no password: unusable until they set one
            super().save_model(request, obj, form, change)


# --- care teams ---------------------------------------------------------------------------------------------------


class CareTeamMembershipInline(admin.TabularInline):
    model = CareTeamMembership
    fields = ("professional", "role_in_team")
    autocomplete_fields = ("professional",)
    extra = 0


@admin.register(CareTeam)
class CareTeamAdmin(admin.ModelAdmin):
    list_display = ("name", "organisation", "kind", "phone", "members")
    list_filter = ("kind", "organisation__kind", "organisation__region")
    search_fields = ("name", "organisation__name", "organisation__ods_code")
    list_select_related = ("organisation",)
    autocomplete_fields = ("organisation",)
    inlines = [CareTeamMembershipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(ordering="member_count")
    def members(self, team):
        return team.member_count

    def save_formset(self, request, form, formset, change):
        """Memberships change through the actions, so the team's group (its access) changes with them."""
        if formset.model is not CareTeamMembership:
            return super().save_formset(request, form, formset, change)
        team = form.instance
        formset.save(commit=False)
        for membership in formset.deleted_objects:
            actions.remove_team_member(by=request.user, membership=membership)
        for membership, changed_fields in formset.changed_objects:
            if "professional" in changed_fields:
                previous = CareTeamMembership.objects.select_related("professional__user", "team").get(pk=membership.pk)
                actions.remove_team_member(by=request.user, membership=previous)
                actions.add_team_member(
                    by=request.user,
                    team=team,
                    professional=membership.professional,
                    role_in_team=membership.role_in_team,
                )
            else:
                membership.save(update_fields=["role_in_team"])
        for membership in formset.new_objects:
            created = actions.add_team_member(
                by=request.user, team=team, professional=membership.professional, role_in_team=membership.role_in_team
            )
            membership.pk = created.pk

    def delete_model(self, request, obj):
        """The team's group goes too, taking its members' access and any grants left on it."""
        with transaction.atomic():
            group = obj.group
            actions.audit(by=request.user, action="care-team.deleted", target=obj, team=obj.name)
            super().delete_model(request, obj)
            group.delete()

    def delete_queryset(self, request, queryset):
        for team in queryset:
            self.delete_model(request, team)


@admin.register(CareTeamMembership)
class CareTeamMembershipAdmin(admin.ModelAdmin):
    list_display = ("professional", "team", "organisation", "role_in_team")
    list_filter = ("team__kind", "team__organisation__region")
    search_fields = (
        "professional__user__email",
        "professional__user__last_name",
        "team__name",
        "team__organisation__ods_code",
    )
    list_select_related = ("professional__user", "professional__organisation", "team__organisation")
    autocomplete_fields = ("team", "professional")

    @admin.display(ordering="team__organisation__name")
    def organisation(self, membership):
        return membership.team.organisation

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            if change and {"team", "professional"} & set(form.changed_data):
                previous = CareTeamMembership.objects.select_related("professional__user", "team").get(pk=obj.pk)
                actions.remove_team_member(by=request.user, membership=previous)
                change = False
            if change:
                obj.save(update_fields=["role_in_team"])
                return
            created = actions.add_team_member(
                by=request.user, team=obj.team, professional=obj.professional, role_in_team=obj.role_in_team
            )
            obj.pk, obj._state.adding = created.pk, False

    def delete_model(self, request, obj):
        actions.remove_team_member(by=request.user, membership=obj)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("professional__user", "team"):
            actions.remove_team_member(by=request.user, membership=membership)


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
        with transaction.atomic():
            if not change:
                created = actions.start_involvement(
                    by=request.user,
                    patient=obj.patient,
                    care_team=obj.care_team,
                    reason=obj.reason,
                    started_at=obj.started_at,
                    source_id=obj.source_id,
                )
                obj.pk, obj._state.adding = created.pk, False
                if obj.ended_at:
                    actions.end_involvement(by=request.user, involvement=created, ended_at=obj.ended_at)
            elif "ended_at" in form.changed_data:
                if obj.ended_at:
                    actions.end_involvement(by=request.user, involvement=obj, ended_at=obj.ended_at)
                else:  # reopened
                    obj.save(update_fields=["ended_at"])
                    actions.sync_team_access(patient=obj.patient, care_team=obj.care_team)
                    actions.audit(by=request.user, action="involvement.reopened", target=obj, patient_id=obj.patient_id)


# --- break glass --------------------------------------------------------------------------------------------------


class BreakGlassReviewForm(forms.ModelForm):
    class Meta:
        model = BreakGlass
        fields = ("review_outcome", "review_note")

    def clean_review_outcome(self):
        outcome = self.cleaned_data["review_outcome"]
        if outcome == BreakGlass.Outcome.PENDING:
            raise ValidationError("Choose the outcome of the review.")
        return outcome


@admin.register(BreakGlass)
class BreakGlassAdmin(NhsNumberSearchMixin, admin.ModelAdmin):
    """The IG review queue, oldest unreviewed first. Break glass itself happens only in the app."""

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
    list_filter = ("review_outcome", "reason_code", OrganisationCodeFilter)
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
        "review_outcome",
        "review_note",
        "reviewed_by",
        "reviewed_at",
    )
    readonly_fields = tuple(name for name in fields if name not in BreakGlassReviewForm.Meta.fields)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        actions.review_break_glass(by=request.user, break_glass=obj, outcome=obj.review_outcome, note=obj.review_note)


# --- API tokens ---------------------------------------------------------------------------------------------------


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created here and shown once; afterwards they can only be revoked (kept for the record)."""

    list_display = ("name", "prefix", "organisation", "user", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "organisation__kind")
    search_fields = ("name", "=prefix", "organisation__ods_code", "organisation__name", "user__email")
    list_select_related = ("organisation", "user")
    autocomplete_fields = ("organisation",)
    raw_id_fields = ("user",)
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "organisation", "user")
        return ("name", "prefix", "organisation", "user", "created_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj else ()

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        token, secret = actions.create_api_token(
            by=request.user, name=obj.name, organisation=obj.organisation, user=obj.user
        )
        obj.pk, obj._state.adding = token.pk, False
        messages.warning(request, f"Copy the token now: it will not be shown again. {secret}")

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        for token in queryset.filter(revoked_at__isnull=True):
            actions.revoke_api_token(by=request.user, token=token)


# --- the audit trails: read-only ----------------------------------------------------------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    """Append-only rows: viewable, never added, changed or deleted here (the model refuses too)."""

    actions = None
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AccessPageFilter(admin.SimpleListFilter):
    title = "page"
    parameter_name = "page"

    def lookups(self, request, model_admin):
        return (
            ("record:summary", "Record summary"),
            ("record:", "Any record page"),
            ("search:", "Searches"),
            ("fhir", "FHIR API"),
        )

    def queryset(self, request, queryset):
        return queryset.filter(page__startswith=self.value()) if self.value() else queryset


@admin.register(AccessEvent)
class AccessEventAdmin(ReadOnlyAdmin):
    list_display = (
        "at",
        "outcome",
        "basis",
        "reason",
        "page",
        "user_email",
        "professional_name",
        "organisation_code",
        "patient_nhs_number",
    )
    list_filter = ("outcome", "basis", OrganisationCodeFilter, AccessPageFilter)
    search_fields = ("user_email", "professional_name", "=patient_nhs_number", "=request_id")
    date_hierarchy = "at"

    def get_search_results(self, request, queryset, search_term):
        """NHS numbers as people type them (with spaces), and patient ids (UUIDs) as exact matches."""
        term = search_term.strip()
        digits = normalise(term)
        if digits.isdigit() and len(digits) == 10:
            return queryset.filter(patient_nhs_number=digits), False
        try:
            return queryset.filter(patient_id=uuid.UUID(term)), False
        except ValueError:
            return super().get_search_results(request, queryset, search_term)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "action", "actor_email", "target_type", "target_id", "patient_id")
    list_filter = ("action", "target_type")
    search_fields = ("actor_email", "=action", "=target_id")
    date_hierarchy = "at"

    def get_search_results(self, request, queryset, search_term):
        try:
            return queryset.filter(patient_id=uuid.UUID(search_term.strip())), False
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
