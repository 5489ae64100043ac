"""Django admin for patients: finding a patient's identity and demographics, and nothing of their record.

IG work objections, break glass, the audit trail, the directory and sharing agreements in admin; they do not
browse clinical entries there. So no entry model is registered at all: not the registry's categories, not
observations, not the support network, not the import bookkeeping that ties a source's ids to patients. Admin
applies none of the record's rules (sharing agreements, the sensitive flag, an upheld objection) and rests on no
care relationship, so an entry page here would show a sensitive diagnosis or a restricted letter to anyone with
a Django permission. Registering them for superusers only, each view audited, was rejected: superuser status is
no licence to read records (the access decision ignores it), and an audited leak is still a leak. Entries are
read on the record pages (care team or break glass, every page audited) or checked at their source.

What is left shows demographics, and every look is in the access log with basis "ig-admin", so it appears in
"who has seen this record" beside everyone else's:
- a patient's page writes one AccessEvent per view (page "admin:patient");
- the list shows nobody until IG search (NHS number as typed, name, postcode), then writes one AccessEvent per
  patient shown on the page, as a clinician's search does (page "admin:patient-search"; a search that finds
  nobody writes one row naming nobody). A million patients' demographics to page through serve no IG task, and
  auditing such pages would bury the trail, so there is nothing to browse;
- the patient picker (autocomplete, when IG add an involvement) is the same search: nobody without a term, and
  each patient it offers is audited (page "admin:patient-picker").
Patients are never deleted here: the confirmation page would list every entry of the record, which would go
with them.

**Data quality** (H-06): the list's "data quality" filter lists, without a search, every patient whose sources
disagree on who they are (patients.demographics.conflicting_patients) or whose Patient id a partner tried to move
to another NHS number (an `fhir.identity-refused` audit row), with what differs and between which organisations
(field names and ODS codes, never the values: a restricted patient's address is no one's to read here). It is a
list of patients like a search's, so each patient it shows is audited the same way (page
"admin:demographics-conflicts"). A patient's page lists each source's copy by organisation and date, the same way.
"""

from django.contrib import admin
from django.contrib.admin.views.main import SEARCH_VAR
from django.core.paginator import Paginator
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from audit.writers import record_admin_view
from directory.models import Organisation
from directory.profiles import professional_for

from . import demographics
from .models import Patient, SourceDemographics
from .nhs_numbers import looks_like_nhs_number, normalise

PATIENT_PAGE = "admin:patient"
PATIENT_SEARCH_PAGE = "admin:patient-search"
PATIENT_PICKER_PAGE = "admin:patient-picker"
DATA_QUALITY_PAGE = "admin:demographics-conflicts"


def record_admin_look(request, patients, *, page, record_none=False):
    """One AccessEvent per patient shown on an admin page (basis "ig-admin"), as the signed-in professional."""
    return record_admin_view(
        request=request,
        professional=professional_for(request.user),
        patients=patients,
        page=page,
        record_none=record_none,
    )


class NhsNumberSearchMixin:
    """Lets people search by NHS number as they type it, with spaces or dashes ("943 476 5919")."""

    def get_search_results(self, request, queryset, search_term):
        digits = normalise(search_term.strip())
        if looks_like_nhs_number(digits):
            search_term = digits
        return super().get_search_results(request, queryset, search_term)


class GPPracticeFilter(admin.RelatedFieldListFilter):
    """Only GP practices are offered as registered practices."""

    def field_choices(self, field, request, model_admin):
        return field.get_choices(
            include_blank=False, ordering=("name",), limit_choices_to={"kind": Organisation.Kind.GP_PRACTICE}
        )


class DataQualityFilter(admin.SimpleListFilter):
    """Patients whose sources disagree on who they are, or whose Patient id a partner tried to move."""

    title = "data quality"
    parameter_name = "data_quality"
    CONFLICTS = "conflicts"

    def lookups(self, request, model_admin):
        return [(self.CONFLICTS, "Sources disagree, or an id was refused")]

    def queryset(self, request, queryset):
        if self.value() != self.CONFLICTS:
            return queryset
        conflicting = demographics.conflicting_patients().values("pk")
        refused = demographics.identity_refused_patients().values("pk")
        return queryset.filter(Q(pk__in=conflicting) | Q(pk__in=refused))


def _data_quality_listed(request) -> bool:
    return request.GET.get(DataQualityFilter.parameter_name) == DataQualityFilter.CONFLICTS


def what_differs(patients) -> None:
    """Set `data_quality` on each patient shown: what its sources disagree on, between which organisations (ODS
    codes), and any refused id move. Two queries for the page, whatever its length."""
    by_patient = {patient.pk: [] for patient in patients}
    for source in SourceDemographics.objects.filter(patient_id__in=by_patient).select_related("organisation"):
        by_patient[source.patient_id].append(source)
    refused = set(demographics.identity_refused_patients().filter(pk__in=by_patient).values_list("pk", flat=True))
    for patient in patients:
        notes = [
            f"{d.label}: {', '.join(sorted(s.organisation.ods_code for s in d.sources))} differ"
            for d in demographics.disagreements(by_patient[patient.pk], patient.registered_gp_id)
        ]
        if patient.pk in refused:
            notes.append("a partner's Patient id was refused a move to another NHS number")
        patient.data_quality = "; ".join(notes)


class PickerPaginator(Paginator):
    """The autocomplete's pages: each page of patients offered is written to the access log as it is served."""

    def __init__(self, *args, request, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request

    def page(self, number):
        page = super().page(number)
        # Evaluated here, and the view iterates this same queryset: what is logged is exactly what is sent.
        record_admin_look(self.request, list(page.object_list), page=PATIENT_PICKER_PAGE)
        return page


@admin.register(Patient)
class PatientAdmin(NhsNumberSearchMixin, admin.ModelAdmin):
    list_display = (
        "nhs_number_display",
        "family_name",
        "given_name",
        "date_of_birth",
        "sex",
        "postcode_display",
        "registered_gp",
        "data_quality_display",
    )
    list_filter = (DataQualityFilter, ("registered_gp", GPPracticeFilter), "registered_gp__region", "sex")
    search_fields = ("=nhs_number", "^family_name", "^given_name", "=postcode")
    search_help_text = (
        "An NHS number, a family or given name (the start of it) or a postcode. Nobody is listed until you search, "
        "and every patient a search shows is recorded in the access log."
    )
    list_select_related = ("registered_gp",)
    autocomplete_fields = ("registered_gp",)
    readonly_fields = ("id", "created_at", "updated_at", "sources", "who_has_seen_this_record")
    show_full_result_count = False
    actions = None
    # No support network or entries inline: the Patient page is identity and demographics only.
    inlines = []

    @admin.display(description="NHS number", ordering="nhs_number")
    def nhs_number_display(self, patient):
        return patient.nhs_number_display

    @admin.display(description="Postcode", ordering="postcode")
    def postcode_display(self, patient):
        return patient.postcode_display  # "SW9 1NQ", however the source sent it

    @admin.display(description="Data quality")
    def data_quality_display(self, patient):
        return getattr(patient, "data_quality", "")

    @admin.display(description="What each source says")
    def sources(self, patient):
        """Each source's copy by organisation and date, and where they disagree (names of fields, not values)."""
        if patient._state.adding:
            return "-"
        copies = list(SourceDemographics.objects.filter(patient=patient).select_related("organisation"))
        if not copies:
            return "No source has sent demographics (recorded before sources were kept)."

        def said(copy):
            return date_format(timezone.localtime(demographics.said_at(copy)), "DATETIME_FORMAT")

        lines = [
            f"{copy.organisation.name} ({copy.organisation.ods_code}), said "
            f"{said(copy)}{', restricted' if copy.restricted else ''}"
            for copy in demographics.ranked(copies, patient.registered_gp_id)
        ]
        lines += [
            f"Disagree on {d.label}: {', '.join(sorted(s.organisation.ods_code for s in d.sources))}"
            for d in demographics.disagreements(copies, patient.registered_gp_id)
        ]
        return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines))

    @admin.display(description="Who has seen this record")
    def who_has_seen_this_record(self, patient):
        """The access log's view of this patient (by URL name only: this app knows nothing of sharing's code)."""
        if patient._state.adding:
            return "-"
        return format_html(
            '<a href="{}">Every access to this record, newest first</a>',
            reverse("admin:audit_accessevent_patient", args=[patient.pk]),
        )

    def has_delete_permission(self, request, obj=None):
        return False

    def _is_picker(self, request):
        match = getattr(request, "resolver_match", None)
        return match is not None and match.view_name == f"{self.admin_site.name}:autocomplete"

    def get_search_results(self, request, queryset, search_term):
        """Nobody without a search term (list and picker alike): there is no browsing the patient index, except
        IG's data-quality list."""
        if not search_term.strip():
            if _data_quality_listed(request) and not self._is_picker(request):
                return queryset, False
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        if self._is_picker(request):
            return PickerPaginator(queryset, per_page, orphans, allow_empty_first_page, request=request)
        return super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)

    def changelist_view(self, request, extra_context=None):
        """A search's page of results: one AccessEvent per patient shown (none listed, none written, without one)."""
        response = super().changelist_view(request, extra_context)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        searched = request.GET.get(SEARCH_VAR, "").strip()
        if changelist is not None and (searched or _data_quality_listed(request)):
            # Evaluated here and cached on the queryset the template iterates: the rows are what is shown.
            shown = list(changelist.result_list)
            page = PATIENT_SEARCH_PAGE if searched else DATA_QUALITY_PAGE
            record_admin_look(request, shown, page=page, record_none=True)
            what_differs(shown)
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """A patient's page: one AccessEvent per view (a save that redirects shows nothing new)."""
        response = super().change_view(request, object_id, form_url, extra_context)
        patient = (getattr(response, "context_data", None) or {}).get("original")
        if patient is not None and response.status_code == 200:
            record_admin_look(request, [patient], page=PATIENT_PAGE)
        return response
