"""Django admin for information governance: organisations and what they share, professionals and care teams,
who is involved with whom, break-glass review, API tokens, and the two audit trails (read-only, filterable
without scanning them, exportable as audited CSV, and "who has seen this record" per patient).

Writes that grant or revoke access go through `sharing.actions`, exactly as in the app: adding an involvement
grants its team's view of the patient at once and ending one revokes it; team memberships keep the team's
Django group in step. Involvements and audit rows are never deleted. The guardian permission tables are
deliberately not registered: grants follow involvements and are never edited by hand.
"""

import datetime
import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import PAGE_VAR
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from patients.admin import NhsNumberSearchMixin
from patients.models import Patient
from patients.nhs_numbers import normalise

from . import actions, audit_export
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
            reverse("admin:sharing_accessevent_changelist"),
            query,
            reverse("admin:sharing_accessevent_patient", args=[grant.patient_id]),
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
#
# Both tables grow by millions of rows a year, so nothing here may scan them whole on an ordinary page view:
# no full COUNT (the paginator stops counting at a cap), no date_hierarchy or DISTINCT-backed filter choices
# (typed filters and fixed lists instead), no facet counts. Filters on who and whom resolve to the indexed id
# columns where they can.


class CappedCountPaginator(Paginator):
    """Counts at most `cap` rows (`SELECT COUNT(*) FROM (... LIMIT cap + 1)`), so a changelist over millions
    of rows costs the same as one over ten thousand; past the cap IG narrows the list with the filters, or
    exports it. `capped` says the true count is larger (the changelist template says so)."""

    cap = 10_000
    capped = False

    @cached_property
    def count(self):
        counted = self.object_list[: self.cap + 1].count()
        self.capped = counted > self.cap
        return min(counted, self.cap)


def _other_params(changelist, own):
    """The changelist's current query (search, ordering, other filters) for a filter's form to carry along."""
    return [(name, value) for name, value in changelist.params.items() if name not in own]


def _person(email, *, id_field, email_field):
    """Rows by one person: by account id while the account exists (indexed, and it follows a changed email
    address), else by the address the rows recorded (a deleted account's history stays findable)."""
    user_ids = list(get_user_model().objects.filter(email__iexact=email).values_list("pk", flat=True))
    if user_ids:
        return Q(**{f"{id_field}__in": user_ids})
    return Q(**{f"{email_field}__iexact": email})


def _patient(term, *, nhs_number_field=None):
    """Rows about one patient, from a patient id (UUID) or an NHS number as typed; (None, None) if the term is
    neither. Returns the match and the patient's id when known. An NHS number is turned into the patient's id
    (indexed); only a number no longer in the record falls back to the number the rows recorded."""
    try:
        patient_id = uuid.UUID(term)
    except ValueError:
        patient_id = None
    if patient_id is not None:
        return Q(patient_id=patient_id), patient_id
    digits = normalise(term)
    if not (digits.isdigit() and len(digits) == 10):
        return None, None
    patient_id = Patient.objects.filter(nhs_number=digits).values_list("pk", flat=True).first()
    if patient_id is not None:
        return Q(patient_id=patient_id), patient_id
    return (Q(**{nhs_number_field: digits}) if nhs_number_field else Q(pk__in=[])), None


class InputFilter(admin.SimpleListFilter):
    """A filter typed into a box. Choices drawn from the data would be a DISTINCT over millions of rows, and
    a list of every professional or patient is no use to anyone."""

    template = "admin/sharing/input_filter.html"
    label = ""
    hint = ""

    def lookups(self, request, model_admin):
        return ()

    def has_output(self):
        return True  # without output the ChangeList drops the filter, and would silently ignore its value

    def choices(self, changelist):
        self.other_params = _other_params(changelist, {self.parameter_name})
        yield {
            "selected": not self.term(),
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "All",
        }

    def term(self):
        return (self.value() or "").strip()


class ProfessionalFilter(InputFilter):
    title = "professional"
    parameter_name = "professional"
    label = "Email address"
    id_field, email_field = "user_id", "user_email"

    def queryset(self, request, queryset):
        email = self.term()
        if not email:
            return queryset
        return queryset.filter(_person(email, id_field=self.id_field, email_field=self.email_field))


class ActorFilter(ProfessionalFilter):
    title = "who made the change"
    parameter_name = "actor"
    hint = 'Or "system" for imports and scheduled jobs.'
    id_field, email_field = "actor_id", "actor_email"

    def queryset(self, request, queryset):
        if self.term().lower() == "system":
            return queryset.filter(actor_id__isnull=True, actor_email="")
        return super().queryset(request, queryset)


class PatientFilter(InputFilter):
    """Sets `patient_id` when the term names one patient, so an export can be audited against them."""

    title = "patient"
    parameter_name = "patient"
    label = "NHS number or patient id"
    nhs_number_field = "patient_nhs_number"
    patient_id = None

    def queryset(self, request, queryset):
        term = self.term()
        if not term:
            return queryset
        match, self.patient_id = _patient(term, nhs_number_field=self.nhs_number_field)
        if match is None:
            messages.warning(request, f"“{term}” is not an NHS number or a patient id.")
            return queryset.none()
        return queryset.filter(match)


class AuditPatientFilter(PatientFilter):
    nhs_number_field = None  # audit rows keep only the patient's id


class OrganisationCodeInputFilter(InputFilter):
    """Typed rather than listed: London has well over a thousand ODS codes."""

    title = "organisation"
    parameter_name = "organisation_code"
    label = "ODS code"

    def queryset(self, request, queryset):
        code = self.term().upper()
        return queryset.filter(organisation_code=code) if code else queryset


class DateRangeFilter(admin.DateFieldListFilter):
    """Django's quick ranges (today, past 7 days, this month, this year) plus any range typed as two dates.

    Both are `<field>__gte` and `<field>__lt` in the query string, so a link and a typed range are the same
    query (Django 5.2 has no range filter of its own). A typed date means local midnight; the quick links send
    full datetimes. Unlike date_hierarchy, nothing is read from the table to draw the filter.
    """

    template = "admin/sharing/date_range_filter.html"

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = "date"  # rather than the field's name, "at"
        for name in list(self.used_parameters):
            moments = [moment for value in self.used_parameters[name] if (moment := self._moment(value))]
            if moments:
                self.used_parameters[name] = moments
            else:  # an empty box in the form
                del self.used_parameters[name]

    @staticmethod
    def _moment(value):
        value = str(value).strip()
        if not value:
            return None
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError as error:
            raise IncorrectLookupParameters(error) from error
        return timezone.make_aware(moment) if timezone.is_naive(moment) else moment

    def _date_value(self, name):
        moments = self.used_parameters.get(name)
        return timezone.localtime(moments[-1]).date().isoformat() if moments else ""

    def choices(self, changelist):
        self.other_params = _other_params(changelist, set(self.expected_parameters()))
        self.since_value = self._date_value(self.lookup_kwarg_since)
        self.until_value = self._date_value(self.lookup_kwarg_until)
        yield from super().choices(changelist)


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


# What audit actions begin with ("break-glass.reviewed"): a fixed list rather than a DISTINCT over the table.
# tests/sharing/test_audit_admin.py checks that every action the code writes belongs to one of these.
AUDIT_ACTION_FAMILIES = (
    ("break-glass", "Break glass"),
    ("involvement", "Involvements"),
    ("care-team", "Care teams"),
    ("sharing-agreement", "Sharing agreements"),
    ("objection", "Objections (opt-out)"),
    ("regional-process", "Regional opt-out process"),
    ("api-token", "API tokens"),
    ("audit", "Audit trail exports"),
)


class ActionFamilyFilter(admin.SimpleListFilter):
    title = "action"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return AUDIT_ACTION_FAMILIES

    def queryset(self, request, queryset):
        return queryset.filter(action__startswith=f"{self.value()}.") if self.value() else queryset


class NoDirectWritesMixin:
    """No add, change or delete forms: the rows change only through audited actions, or never."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(NoDirectWritesMixin, admin.ModelAdmin):
    """Append-only rows: viewable, never added, changed or deleted here (the model refuses too), and
    exportable as CSV by anyone who may view them — each export audited (`sharing.audit_export`)."""

    actions = None
    change_list_template = "admin/sharing/audit_change_list.html"
    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice is a scan per choice
    sortable_by = ("at",)  # the indexed column: sorting by any other would sort the whole table for one page
    export_columns = ()

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def get_urls(self):
        export = path(
            "export/",
            self.admin_site.admin_view(require_POST(self.export_view)),
            name=f"{self.opts.app_label}_{self.opts.model_name}_export",
        )
        return [export, *super().get_urls()]

    def export_view(self, request):
        """The changelist as filtered, searched and ordered (its query string is this URL's), as a CSV.

        POST, so that a link followed by accident cannot take a copy of the audit trail."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            messages.error(request, "Those filters are not valid, so nothing was exported.")
            return redirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"))
        patient_ids = {
            spec.patient_id for spec in changelist.filter_specs if isinstance(spec, PatientFilter) and spec.patient_id
        }
        return audit_export.export_response(
            by=request.user,
            queryset=changelist.queryset,
            columns=self.export_columns,
            filters=request.GET.urlencode(),
            patient_id=patient_ids.pop() if len(patient_ids) == 1 else None,
        )


@admin.register(AccessEvent)
class AccessEventAdmin(ReadOnlyAdmin):
    """Who looked at which record, when, and on what basis: IG's answer to "who has seen my record?"."""

    list_display = (
        "at",
        "outcome",
        "basis",
        "reason",
        "page",
        "user_email",
        "professional_name",
        "organisation_code",
        "patient",
    )
    list_filter = (
        ProfessionalFilter,
        PatientFilter,
        OrganisationCodeInputFilter,
        ("at", DateRangeFilter),
        "basis",
        "outcome",
        AccessPageFilter,
    )
    search_fields = ("user_email", "professional_name", "=patient_nhs_number", "=request_id")
    search_help_text = "An email address, a professional's name, an NHS number, a patient id or a request id."
    export_columns = audit_export.ACCESS_EVENT_COLUMNS

    def get_urls(self):
        by_patient = path(
            "patient/<uuid:patient_id>/",
            self.admin_site.admin_view(self.patient_view),
            name="sharing_accessevent_patient",
        )
        return [by_patient, *super().get_urls()]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "who_has_seen_this_record"]

    @admin.display(description="Patient")
    def patient(self, event):
        if event.patient_id is None:
            return "-"
        return format_html(
            '<a href="{}" title="Everyone who has seen this record">{}</a>',
            reverse("admin:sharing_accessevent_patient", args=[event.patient_id]),
            event.patient_nhs_number or str(event.patient_id)[:8],
        )

    @admin.display(description="Who has seen this record")
    def who_has_seen_this_record(self, event):
        if event.patient_id is None:
            return "-"
        return format_html(
            '<a href="{}">Every access to this patient’s record, newest first</a>',
            reverse("admin:sharing_accessevent_patient", args=[event.patient_id]),
        )

    def get_search_results(self, request, queryset, search_term):
        """NHS numbers as people type them (with spaces) and patient ids (UUIDs) as exact matches; a whole
        email address by the account's id where it still exists, like the professional filter."""
        term = search_term.strip()
        match, _ = _patient(term, nhs_number_field="patient_nhs_number")
        if match is not None:
            return queryset.filter(match), False
        if "@" in term and get_user_model().objects.filter(email__iexact=term).exists():
            return queryset.filter(_person(term, id_field="user_id", email_field="user_email")), False
        return super().get_search_results(request, queryset, search_term)

    def patient_view(self, request, patient_id):
        """Every access to one patient's record, newest first: what IG sends a patient who asks who has seen
        it. Exact counts are affordable here, on the (patient, at) index."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        events = AccessEvent.objects.filter(patient_id=patient_id).order_by("-at", "-pk")
        paginator = Paginator(events, self.list_per_page)
        page = paginator.get_page(request.GET.get(PAGE_VAR))
        codes = {event.organisation_code for event in page.object_list}
        organisations = dict(Organisation.objects.filter(ods_code__in=codes).values_list("ods_code", "name"))
        patient = Patient.objects.filter(pk=patient_id).first()
        label = str(patient) if patient else f"patient id {patient_id}"
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Who has seen this record",
            "subtitle": label,
            "patient": patient,
            "patient_id": patient_id,
            "page_obj": page,
            "page_range": paginator.get_elided_page_range(page.number),
            "page_var": PAGE_VAR,
            "rows": [(event, organisations.get(event.organisation_code, "")) for event in page.object_list],
            "changelist_query": urlencode({"patient": patient_id}),
        }
        return TemplateResponse(request, "admin/sharing/accessevent/patient.html", context)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """IG-relevant changes (grants, memberships, reviews, objections, exports): who did what, to what."""

    list_display = ("at", "action", "actor_email", "target_type", "target_id", "patient_id")
    list_filter = (ActionFamilyFilter, ActorFilter, AuditPatientFilter, ("at", DateRangeFilter))
    search_fields = ("actor_email", "=action", "=target_id")
    search_help_text = "An email address, an exact action (e.g. break-glass.reviewed), a target id or a patient id."
    export_columns = audit_export.AUDIT_EVENT_COLUMNS

    def get_search_results(self, request, queryset, search_term):
        try:
            return queryset.filter(patient_id=uuid.UUID(search_term.strip())), False
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
