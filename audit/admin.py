"""Admin for the audit trails: read-only, filterable, exportable (each export audited).

Audit rows keep patients and organisations as values (ids, NHS numbers, ODS codes). To turn an NHS number
typed by IG into a patient id, and ids into names, this module asks `subjects`, which the patients and
directory apps fill in when they start: audit imports nothing of ours.
"""

import datetime
import uuid

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import PAGE_VAR
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from . import export, subjects
from .models import AccessEvent, AuditEvent
from .names import FAMILIES

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
    digits = subjects.nhs_number_in(term)
    if digits is None:
        return None, None
    patient_id = subjects.patient_id_for(digits)
    if patient_id is not None:
        return Q(patient_id=patient_id), patient_id
    return (Q(**{nhs_number_field: digits}) if nhs_number_field else Q(pk__in=[])), None


class InputFilter(admin.SimpleListFilter):
    """A filter typed into a box. Choices drawn from the data would be a DISTINCT over millions of rows, and
    a list of every professional or patient is no use to anyone."""

    template = "admin/audit/input_filter.html"
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

    template = "admin/audit/date_range_filter.html"

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
            ("my-patients", "My patients lists"),
            ("fhir", "FHIR API"),
            ("admin:", "IG administration (admin pages)"),
        )

    def queryset(self, request, queryset):
        return queryset.filter(page__startswith=self.value()) if self.value() else queryset


class ActionFamilyFilter(admin.SimpleListFilter):
    title = "action"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return FAMILIES

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
    exportable as CSV by anyone who may view them — each export audited (`audit.export`)."""

    actions = None
    change_list_template = "admin/audit/audit_change_list.html"
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
        return export.export_response(
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
    export_columns = export.ACCESS_EVENT_COLUMNS

    def get_urls(self):
        by_patient = path(
            "patient/<uuid:patient_id>/",
            self.admin_site.admin_view(self.patient_view),
            name="audit_accessevent_patient",
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
            reverse("admin:audit_accessevent_patient", args=[event.patient_id]),
            event.patient_nhs_number or str(event.patient_id)[:8],
        )

    @admin.display(description="Who has seen this record")
    def who_has_seen_this_record(self, event):
        if event.patient_id is None:
            return "-"
        return format_html(
            '<a href="{}">Every access to this patient’s record, newest first</a>',
            reverse("admin:audit_accessevent_patient", args=[event.patient_id]),
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
        organisations = subjects.organisation_names(codes)
        patient = subjects.patient(patient_id)
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
        return TemplateResponse(request, "admin/audit/accessevent/patient.html", context)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """IG-relevant changes (grants, memberships, reviews, objections, exports): who did what, to what."""

    list_display = ("at", "action", "actor_email", "target_type", "target_id", "patient_id")
    list_filter = (ActionFamilyFilter, ActorFilter, AuditPatientFilter, ("at", DateRangeFilter))
    search_fields = ("actor_email", "=action", "=target_id")
    search_help_text = "An email address, an exact action (e.g. break-glass.reviewed), a target id or a patient id."
    export_columns = export.AUDIT_EVENT_COLUMNS

    def get_search_results(self, request, queryset, search_term):
        try:
            return queryset.filter(patient_id=uuid.UUID(search_term.strip())), False
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
