"""Django admin for what is shared with whom: sharing agreements (also inline on each organisation),
involvements, and the break-glass review queue.

Writes that grant or revoke access go through `sharing.actions`, exactly as in the app: adding an involvement
grants its team's view of the patient at once and ending one revokes it. Involvements are never deleted. The
guardian permission tables are deliberately not registered: grants follow involvements and are never edited by
hand.
"""

import datetime
import json
from types import SimpleNamespace

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode

from audit.admin import NoDirectWritesMixin, QueueFilter
from audit.writers import record_admin_view
from directory.admin import OrganisationAdmin
from directory.models import Organisation
from directory.profiles import professional_for
from patients.admin import NhsNumberSearchMixin, PatientAdmin
from patients.models import Patient

from . import actions, alerts
from .models import BreakGlass, EntryProblem, Involvement, PrivacyAlert, SharingAgreement
from .queue import NEEDS_REVIEW, UNREVIEWED, review_overdue


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


class AssertedByFilter(admin.SimpleListFilter):
    title = "asserted by"
    parameter_name = "asserted"

    def lookups(self, request, model_admin):
        return (("partner", "A partner system (API token)"), ("here", "Recorded here (IG, or the service)"))

    def queryset(self, request, queryset):
        if self.value() == "partner":
            return queryset.filter(asserted_by_token__isnull=False)
        if self.value() == "here":
            return queryset.filter(asserted_by_token__isnull=True)
        return queryset


class InvolvementReviewFilter(QueueFilter):
    """IG's queue, like break glass: what partner systems asserted and nobody has reviewed, and relationships
    past their review date (still current). Listed oldest first (`InvolvementAdmin.get_ordering`)."""

    title = "review"
    parameter_name = "review"
    QUEUE = "needed"
    default = QUEUE  # the list opens on the queue; "All" lists every relationship

    def lookups(self, request, model_admin):
        return (
            (self.QUEUE, "Needs review (from a partner system and not reviewed, or overdue)"),
            ("unreviewed", "From a partner system, not yet reviewed"),
            ("overdue", "Review overdue"),
            ("reviewed", "Reviewed"),
        )

    def filter_queue(self, queryset, value):
        now = timezone.now()
        if value == self.QUEUE:
            return queryset.filter(UNREVIEWED | review_overdue(now))
        if value == "unreviewed":
            return queryset.filter(UNREVIEWED)
        if value == "overdue":
            return queryset.filter(review_overdue(now))
        return queryset.filter(reviewed_at__isnull=False)


class InvolvementForm(forms.ModelForm):
    """The involvement, and on an existing one IG's review: ticking "reviewed" records it (audited, through
    `actions.review_involvement`) with the note; the review date may be changed with it or on its own."""

    reviewed = forms.BooleanField(
        required=False,
        label="Mark as reviewed",
        help_text="This relationship is right. It leaves the review queue; the next review date is the one "
        "below if you change it, else a year on while it lasts.",
    )
    note = forms.CharField(required=False, label="Review note", widget=forms.Textarea(attrs={"rows": 3}))

    class Meta:
        model = Involvement
        fields = ("patient", "care_team", "reason", "started_at", "ended_at", "source_id", "review_on")


@admin.register(Involvement)
class InvolvementAdmin(NhsNumberSearchMixin, admin.ModelAdmin):
    form = InvolvementForm
    list_display = (
        "patient",
        "care_team",
        "organisation",
        "reason",
        "started_at",
        "ended_at",
        "current",
        "asserted_by",
        "review_on",
        "reviewed_at",
    )
    list_filter = (
        InvolvementReviewFilter,
        AssertedByFilter,
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
        "=asserted_by",
    )
    list_select_related = ("patient", "care_team__organisation")
    autocomplete_fields = ("patient", "care_team")
    date_hierarchy = "started_at"
    show_full_result_count = False
    main_fieldset = (
        None,
        {
            "fields": ("patient", "care_team", "reason", "started_at", "ended_at", "source_id"),
            "description": (
                "Saving an involvement gives the care team access to the patient's record at once; an end "
                "date in the past takes it away at once. Involvements are history: end them, never delete."
            ),
        },
    )
    asserted_fieldset = ("Who asserted it", {"fields": ("asserted_by", "asserted_by_token")})
    review_fieldset = (
        "Review",
        {
            "fields": ("review_on", "reviewed_at", "reviewed_by", "review_note", "reviewed", "note"),
            "description": (
                "What partner systems assert waits here for review, as break glass does. Not right? End it "
                "above (an end date now) and say why in the note."
            ),
        },
    )
    READ_ONLY_ONCE_MADE = ("patient", "care_team", "reason", "started_at", "source_id")
    ALWAYS_READ_ONLY = ("asserted_by", "asserted_by_token", "reviewed_at", "reviewed_by", "review_note")

    @admin.display(ordering="care_team__organisation__name")
    def organisation(self, involvement):
        return involvement.care_team.organisation

    @admin.display(boolean=True)
    def current(self, involvement):
        return involvement.is_current

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return (self.main_fieldset, ("Review", {"fields": ("review_on",)}))
        return (self.main_fieldset, self.asserted_fieldset, self.review_fieldset)

    def get_readonly_fields(self, request, obj=None):
        return (*self.READ_ONLY_ONCE_MADE, *self.ALWAYS_READ_ONLY) if obj else self.ALWAYS_READ_ONLY

    def get_ordering(self, request):
        if request.GET.get(InvolvementReviewFilter.parameter_name):
            return ("started_at", "pk")  # a queue: the longest waiting first
        return super().get_ordering(request)

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
                review_on=obj.review_on,
            )
            obj.pk, obj._state.adding = created.pk, False
            return
        if "ended_at" in form.changed_data:
            if obj.ended_at:
                actions.end_involvement(by=request.user, involvement=obj, ended_at=obj.ended_at)
            else:
                actions.reopen_involvement(by=request.user, involvement=obj)
        review_on_changed = "review_on" in form.changed_data
        if form.cleaned_data.get("reviewed"):
            actions.review_involvement(
                by=request.user,
                involvement=obj,
                note=form.cleaned_data.get("note", ""),
                review_on=obj.review_on if review_on_changed else None,
            )
        elif review_on_changed:
            actions.update_involvement(by=request.user, involvement=obj, review_on=obj.review_on)


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


class BreakGlassStatusFilter(QueueFilter):
    """The queue as IG works it, and where the list opens: what still needs a decision (never reviewed, or waiting
    on a follow-up). "All" lists reviewed ones too."""

    title = "review status"
    parameter_name = "status"
    OPEN = "open"
    default = OPEN

    def lookups(self, request, model_admin):
        return ((self.OPEN, "Needing action (not reviewed or follow-up)"), ("to-review", "Not yet reviewed"))

    def filter_queue(self, queryset, value):
        if value == "to-review":
            return queryset.filter(review_outcome=BreakGlass.Outcome.PENDING)
        return queryset.filter(review_outcome__in=NEEDS_REVIEW)


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

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The review page shows who broke the glass into whose record, and why (the reason may be clinical):
        one AccessEvent per view, basis "ig-admin", page "admin:break-glass-review", in the patient's "who has
        seen this record". The queue lists a patient's name and NHS number only, as the access log does."""
        response = super().change_view(request, object_id, form_url, extra_context)
        grant = (getattr(response, "context_data", None) or {}).get("original")
        if grant is not None and response.status_code == 200:
            record_admin_view(
                request=request,
                professional=professional_for(request.user),
                patients=[grant.patient],
                page="admin:break-glass-review",
            )
        return response

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


# --- privacy alerts (11B) -----------------------------------------------------------------------------------------


@admin.register(PrivacyAlert)
class PrivacyAlertAdmin(NoDirectWritesMixin, admin.ModelAdmin):
    """The privacy alerts page (`sharing.alerts`, one day at a time, ?day=YYYY-MM-DD), listed on the admin index
    under Sharing. For whoever may read the access log it is drawn from (IG: `audit.view_accessevent`). Its rows
    are access-log rows (the model is a proxy), shown read-only like the log's own."""

    list_per_page = 50

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff and request.user.has_perm("audit.view_accessevent")

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        today = timezone.localdate()
        try:
            day = datetime.date.fromisoformat(request.GET.get("day", "")) if request.GET.get("day") else today
        except ValueError:
            messages.warning(request, "That is not a date (YYYY-MM-DD): showing today.")
            day = today
        day = min(day, today)
        found = alerts.alerts_for(day)
        # An alert naming a patient shows their NHS number: IG's look at it is on that patient's trail too.
        named = [SimpleNamespace(pk=a.patient_id, nhs_number=a.patient_nhs_number) for a in found if a.patient_id]
        if named:
            record_admin_view(
                request=request,
                professional=professional_for(request.user),
                patients=named,
                page="admin:privacy-alerts",
            )
        by_rule = [(rule, [alert for alert in found if alert.rule == rule]) for rule in alerts.Rule]
        changelist = reverse("admin:sharing_privacyalert_changelist")
        involvements = reverse("admin:sharing_involvement_changelist")
        now = timezone.now()
        queue = Involvement.objects.filter(UNREVIEWED)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Privacy alerts",
            "subtitle": f"{day:%A} {day.day} {day:%B %Y}",
            "day": day,
            "is_today": day == today,
            "previous_url": f"{changelist}?{urlencode({'day': (day - datetime.timedelta(days=1)).isoformat()})}",
            "next_url": f"{changelist}?{urlencode({'day': (day + datetime.timedelta(days=1)).isoformat()})}",
            "by_rule": by_rule,
            "alert_count": len(found),
            "queue_count": _capped_count(queue),
            "overdue_count": _capped_count(Involvement.objects.filter(review_overdue(now))),
            "queue_url": f"{involvements}?{urlencode({'review': InvolvementReviewFilter.QUEUE})}",
            "unreviewed_url": f"{involvements}?{urlencode({'review': 'unreviewed'})}",
            "overdue_url": f"{involvements}?{urlencode({'review': 'overdue'})}",
            "cap": COUNT_CAP,
        }
        return TemplateResponse(request, "admin/sharing/privacy_alerts.html", context)


COUNT_CAP = 10_000


def _capped_count(queryset) -> int:
    """At most COUNT_CAP + 1 rows counted: the page says "more than" past the cap."""
    return queryset.order_by()[: COUNT_CAP + 1].count()


# --- problems reported with entries (issue 17) --------------------------------------------------------------------


class EntryProblemForm(forms.ModelForm):
    class Meta:
        model = EntryProblem
        fields = ("status", "ig_note")


class EntryProblemQueueFilter(QueueFilter):
    """Opens on the reports IG still have to pass on (open); any one status, or all."""

    title = "status"
    parameter_name = "status__exact"  # Django's own name for a status filter, so earlier links keep working
    default = EntryProblem.Status.OPEN

    def lookups(self, request, model_admin):
        return EntryProblem.Status.choices


@admin.register(EntryProblem)
class EntryProblemAdmin(admin.ModelAdmin):
    """What professionals reported as wrong with an entry, for IG to follow up: open ones are those not sent to the
    source (it has no nominated contact, or the email failed), which IG pass on. Status and note change through
    `actions.change_entry_problem` (audited); reports are never added or deleted here.

    The list names no patient. A report's page shows the entry's words and the patient's NHS number, so each view
    of it (and of its history, whose title names the entry) is an AccessEvent, page "admin:entry-problem"."""

    form = EntryProblemForm
    list_display = ("reported_at", "status", "source_organisation", "reporter_organisation_code", "sent_at")
    list_filter = (EntryProblemQueueFilter, ("source_organisation", admin.RelatedOnlyFieldListFilter))
    search_fields = ("=source_organisation__ods_code", "=reporter_organisation_code")
    list_select_related = ("source_organisation",)
    date_hierarchy = "reported_at"
    fields = (
        "patient_nhs_number",
        "source_organisation",
        "entry_summary",
        "entry_reference",
        "what_is_wrong",
        "reporter_name",
        "reporter_organisation_code",
        "reported_at",
        "sent_to",
        "sent_at",
        "status",
        "ig_note",
    )
    readonly_fields = tuple(name for name in fields if name not in EntryProblemForm.Meta.fields)

    @admin.display(description="Patient's NHS number")
    def patient_nhs_number(self, problem):
        return problem.patient.nhs_number_display

    @admin.display(description="Entry")
    def entry_reference(self, problem):
        """The source's own identifier for the entry, which IG pass on (the entry is not shown: only its id)."""
        try:
            model = apps.get_model(problem.entry_model)
        except (LookupError, ValueError):
            return f"{problem.entry_model} {problem.entry_id}"
        source_id = model.objects.filter(pk=problem.entry_id).values_list("source_id", flat=True).first()
        kind = model.category.label if hasattr(model, "category") else model._meta.verbose_name
        if source_id is None:
            return f"{kind}: no longer held"
        return f"{kind}, the source's identifier {source_id}"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("patient", "source_organisation")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _record_look(self, request, response, key):
        problem = (getattr(response, "context_data", None) or {}).get(key)
        if problem is not None and response.status_code == 200:
            record_admin_view(
                request=request,
                professional=professional_for(request.user),
                patients=[problem.patient],
                page="admin:entry-problem",
            )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        self._record_look(request, response, "original")
        return response

    def history_view(self, request, object_id, extra_context=None):
        response = super().history_view(request, object_id, extra_context)
        self._record_look(request, response, "object")
        return response

    def log_change(self, request, obj, message):
        """Admin's own log (the index's "recent actions") names the report by its number, never the entry's words;
        what changed is in the audit trail."""
        from django.contrib.admin.models import CHANGE, LogEntry
        from django.contrib.contenttypes.models import ContentType

        return LogEntry.objects.create(
            user_id=request.user.pk,
            content_type=ContentType.objects.get_for_model(obj),
            object_id=str(obj.pk),
            object_repr=f"Entry problem {obj.pk}",
            action_flag=CHANGE,
            change_message=json.dumps(message) if isinstance(message, list) else message,
        )

    def save_model(self, request, obj, form, change):
        if form.has_changed():
            actions.change_entry_problem(by=request.user, problem=obj, status=obj.status, ig_note=obj.ig_note)
