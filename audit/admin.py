"""Admin for the audit trails: read-only, filterable, exportable (each export audited).

Audit rows keep patients and organisations as values (ids, NHS numbers, ODS codes). To turn an NHS number
typed by IG into a patient id, and ids into names, this module asks `subjects`, which the patients and
directory apps fill in when they start: audit imports nothing of ours.
"""

import datetime
import uuid

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import PAGE_VAR, SEARCH_VAR
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import cached_property
from django.utils.html import escape, format_html
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from . import export, pages, reasons, seals, subject_access, subjects
from .forms import PeriodForm, VerifyForm
from .models import AccessEvent, AuditArchive, AuditEvent, AuditSeal
from .names import FAMILIES, Action
from .writers import audit, record_admin_view

SUBJECT_ACCESS_PAGE = "admin:subject-access"

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


class QueueFilter(admin.SimpleListFilter):
    """A list filter that opens on a default choice — an IG queue opens on what needs action — with "All" as an
    explicit choice of its own (Django's "All" is the absence of the parameter, which here means the default).

    Subclasses give `lookups` (the default among them) and `default`; `filter_queue(queryset, value)` filters for
    any value but "all" (by default on `field`; override it for values that are not a field's). An unknown value
    lists everything rather than failing; so does a search with no choice made (the term may name a closed item),
    unless `search_looks_everywhere` is off."""

    ALL = "all"
    default = ""
    field = "status"  # what the default `filter_queue` matches a chosen value against
    search_looks_everywhere = True

    def __init__(self, request, params, model, model_admin):
        # A search with no queue chosen looks everywhere: what IG type in (a reference, an NHS number) may be closed.
        searching = self.search_looks_everywhere and request.GET.get(SEARCH_VAR, "").strip()
        if searching and self.parameter_name not in params:
            self.default = self.ALL
        super().__init__(request, params, model, model_admin)

    def value(self):
        return super().value() or self.default

    def choices(self, changelist):
        for value, label in [(self.ALL, "All"), *self.lookup_choices]:
            yield {
                "selected": self.value() == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        value = self.value()
        if value == self.ALL or value not in {str(choice) for choice, _ in self.lookup_choices}:
            return queryset
        return self.filter_queue(queryset, value)

    def filter_queue(self, queryset, value):
        """One of the lookups' values: by default, the rows whose `field` has it (a status)."""
        return queryset.filter(**{self.field: value})


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


def nhs_number_display(digits: str) -> str:
    """An NHS number as written on a letter, "943 476 5919" (audit keeps the ten digits as given)."""
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}" if len(digits) == 10 and digits.isdigit() else digits


def _breakable(text: str):
    """An email address (or a name written as one) that may wrap after its dots and before its @, not anywhere."""
    return mark_safe(escape(text).replace("@", "<wbr>@").replace(".", ".<wbr>"))  # noqa: S308 (escaped first)


def local_datetime(moment) -> str:
    """The one date and time format, in UK time: "2 Dec 2026, 18:47"."""
    return date_format(timezone.localtime(moment), "DATETIME_FORMAT")


@admin.register(AccessEvent)
class AccessEventAdmin(ReadOnlyAdmin):
    """Who looked at which record, when, and on what basis: IG's answer to "who has seen my record?".

    The list reads in words (the page's name, the basis or the refusal's reason) and fits a 1280 px screen: who,
    their role and organisation in one column, outcome and basis in another; the codes stay on each row's page and
    in the CSV export, for machines."""

    list_display = ("when", "who", "patient", "how", "page_name")
    sortable_by = ("when",)  # the indexed column, `at`
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

    class Media:
        css = {"all": ["carerecord/css/admin-audit.css"]}

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("patient/<uuid:patient_id>/", wrap(self.patient_view), name="audit_accessevent_patient"),
            path(
                "patient/<uuid:patient_id>/subject-access/",
                wrap(self.subject_access_view),
                name="audit_accessevent_subjectaccess",
            ),
            path("patient/<uuid:patient_id>/letter/", wrap(self.letter_view), name="audit_accessevent_letter"),
            *super().get_urls(),
        ]

    def get_readonly_fields(self, request, obj=None):
        fields = []
        for name in super().get_readonly_fields(request, obj):
            fields.append(name)
            if name == "reason":
                fields.append("how")
            elif name == "page":
                fields.append("page_name")
        return [*fields, "who_has_seen_this_record"]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        """The row's heading in words ("2 Dec 2026, 18:47: Dr Ada Lovelace, Letters and discharge information")
        rather than its codes."""
        if obj is not None:
            who = obj.professional_name or obj.user_email or "not signed in"
            context["subtitle"] = f"{local_datetime(obj.at)}: {who}, {pages.page_name(obj.page)}"
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    @admin.display(description="When", ordering="at")
    def when(self, event):
        """Wraps, if at all, between the date and the time: "2 Dec 2026," then "18:47"."""
        day, comma, time = local_datetime(event.at).rpartition(", ")
        return format_html(
            '<span class="app-audit-nowrap">{}{}</span> <span class="app-audit-nowrap">{}</span>',
            day,
            comma.strip(),
            time,
        )

    @admin.display(description="Who")
    def who(self, event):
        name = (
            event.professional_name
            or event.user_email
            or ("A clinical system" if event.organisation_code else "Not signed in")
        )
        role = " · ".join(part for part in (event.professional_role, event.organisation_code) if part)
        email = event.user_email if event.professional_name else ""
        return format_html(
            '<span class="app-audit-who">{}</span>{}{}',
            _breakable(name),
            format_html('<span class="app-audit-detail">{}</span>', role) if role else "",
            format_html('<span class="app-audit-detail">{}</span>', _breakable(email)) if email else "",
        )

    @admin.display(description="Patient")
    def patient(self, event):
        if event.patient_id is None:
            return "-"
        return format_html(
            '<a href="{}" title="Everyone who has seen this record">{}</a>',
            reverse("admin:audit_accessevent_patient", args=[event.patient_id]),
            nhs_number_display(event.patient_nhs_number) or str(event.patient_id)[:8],
        )

    @admin.display(description="Outcome and basis")
    def how(self, event):
        return reasons.how(basis=event.basis, outcome=event.outcome, page=event.page, reason=event.reason)

    @admin.display(description="Page seen")
    def page_name(self, event):
        return pages.page_name(event.page)

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

    def _context(self, request, **context):
        return {**self.admin_site.each_context(request), "opts": self.opts, **context}

    def patient_view(self, request, patient_id):
        """Every access to one patient's record, newest first, in words. Exact counts are affordable here, on the
        (patient, at) index. It names the patient (name, NHS number) and nothing more: the subject access letter,
        which shows their address, is a page of its own, audited."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        events = AccessEvent.objects.filter(patient_id=patient_id).order_by("-at", "-pk")
        paginator = Paginator(events, self.list_per_page)
        page = paginator.get_page(request.GET.get(PAGE_VAR))
        codes = {event.organisation_code for event in page.object_list}
        organisations = subjects.organisation_names(codes)
        patient = subjects.patient(patient_id)
        label = str(patient) if patient else f"patient id {patient_id}"
        rows = [
            {
                "event": event,
                "when": local_datetime(event.at),
                "organisation": organisations.get(event.organisation_code, ""),
                "how": self.how(event),
                "page_name": self.page_name(event),
            }
            for event in page.object_list
        ]
        context = self._context(
            request,
            title="Who has seen this record",
            subtitle=label,
            patient=patient,
            patient_id=patient_id,
            page_obj=page,
            page_range=paginator.get_elided_page_range(page.number),
            page_var=PAGE_VAR,
            rows=rows,
            changelist_query=urlencode({"patient": patient_id}),
        )
        return TemplateResponse(request, "admin/audit/accessevent/patient.html", context)

    def subject_access_view(self, request, patient_id):
        """The subject access request's form: the period the letter covers (all time unless narrowed). Names the
        patient and nothing more (their details are on the letter, which is audited)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        patient = subjects.patient(patient_id)
        return self._period_page(request, patient_id, patient, PeriodForm(initial=request.GET.dict()))

    def _period_page(self, request, patient_id, patient, form, status=200):
        context = self._context(
            request,
            title="Answer a subject access request",
            subtitle=str(patient) if patient else f"patient id {patient_id}",
            patient=patient,
            patient_id=patient_id,
            form=form,
        )
        status = status if patient else 404
        return TemplateResponse(request, "admin/audit/accessevent/subject_access.html", context, status=status)

    def letter_view(self, request, patient_id):
        """The letter a patient asking "who has looked at my record?" receives, ready to print: their details,
        what each basis means, and every look in the period grouped per day and person, refused attempts apart
        (`subject_access.history_of`: a few queries however long the history). Opening it shows the patient's
        details, so it writes an AccessEvent (page "admin:subject-access") and an AuditEvent whose id is the
        letter's reference."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        patient = subjects.patient(patient_id)
        form = PeriodForm(request.GET)
        if patient is None or not form.is_valid():
            return self._period_page(request, patient_id, patient, form, status=400)
        history = subject_access.history_of(patient.pk, *form.bounds())
        since, until = form.cleaned_data["since"], form.cleaned_data["until"]
        with transaction.atomic():
            record_admin_view(
                request=request,
                professional=subjects.professional_for(request.user),
                patients=[patient],
                page=SUBJECT_ACCESS_PAGE,
            )
            letter = audit(
                by=request.user,
                action=Action.SUBJECT_ACCESS_LETTER,
                target=export.AuditTrail(self.opts.label_lower),
                patient_id=patient.pk,
                kind="subject-access",
                since=since.isoformat() if since else "",
                until=until.isoformat() if until else "",
                rows=history.events,
                looks=len(history.visits),
                refused=len(history.refused),
            )
        context = {
            "patient": patient,
            "history": history,
            "since": since,
            "until": until,
            "today": timezone.localdate(),
            "reference": f"SAR-{letter.pk:06d}",
            "explained": subject_access.EXPLANATIONS,
            "back": reverse("admin:audit_accessevent_patient", args=[patient.pk]),
            "change_period": reverse("admin:audit_accessevent_subjectaccess", args=[patient.pk])
            + "?"
            + urlencode({"since": since or "", "until": until or ""}),
        }
        return TemplateResponse(request, "admin/audit/accessevent/letter.html", context)


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


@admin.register(AuditSeal)
class AuditSealAdmin(NoDirectWritesMixin, admin.ModelAdmin):
    """The seals over the audit trail (audit/seals.py), and IG's check of the trail against them: viewable by
    whoever may view the seals, never added, changed or deleted here (the sealer writes them)."""

    actions = None
    list_display = ("sealed_at", "table", "first_id", "last_id", "row_count", "hash")
    list_filter = ("table",)
    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    sortable_by = ()
    change_list_template = "admin/audit/auditseal/change_list.html"

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def get_urls(self):
        check = path("check/", self.admin_site.admin_view(self.check_view), name="audit_auditseal_check")
        return [check, *super().get_urls()]

    def check_view(self, request):
        """GET: the form; POST: the check run now, its findings shown and written to the trail (`audit.verified`,
        naming the IG officer)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = VerifyForm(request.POST or None)
        report = None
        if request.method == "POST" and form.is_valid():
            report = seals.verify(since=form.since_moment())
            with transaction.atomic():
                seals.record_verification(report, actor_id=request.user.pk, actor_email=request.user.email, via="admin")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Check the audit trail",
            "form": form,
            "report": report,
        }
        return TemplateResponse(
            request, "admin/audit/auditseal/check.html", context, status=400 if form.errors else 200
        )


@admin.register(AuditArchive)
class AuditArchiveAdmin(NoDirectWritesMixin, admin.ModelAdmin):
    """The months taken off the live trail (`manage.py audit_partitions --archive`): which, when, by whom, how
    many rows and their digest, so a restored dump can be checked. Written by the command only."""

    actions = None
    list_display = ("month", "table", "partition", "row_count", "archived_at", "archived_by")
    list_filter = ("table",)
    sortable_by = ()

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]
