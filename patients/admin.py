"""Django admin for the record: demographics and support network, and every category of entry.

Entries arrive from partner systems and change only through new imports, so IG uses these pages to find and
check them: by NHS number, source organisation, the sensitive flag. Tables here grow to millions of rows, so
patients are chosen by autocomplete, lists skip the full count, and filters never scan an entry table for
their choices.
"""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from directory.models import Organisation

from .categories import REGISTRY
from .models import (
    Observation,
    Patient,
    Result,
    SourcePatientId,
    SourceResource,
    SupportPerson,
)
from .nhs_numbers import normalise


class NhsNumberSearchMixin:
    """Lets people search by NHS number as they type it, with spaces or dashes ("943 476 5919")."""

    def get_search_results(self, request, queryset, search_term):
        digits = normalise(search_term.strip())
        if digits.isdigit() and len(digits) == 10:
            search_term = digits
        return super().get_search_results(request, queryset, search_term)


class GPPracticeFilter(admin.RelatedFieldListFilter):
    """Only GP practices are offered as registered practices."""

    def field_choices(self, field, request, model_admin):
        return field.get_choices(
            include_blank=False, ordering=("name",), limit_choices_to={"kind": Organisation.Kind.GP_PRACTICE}
        )


class SupportPersonInline(admin.TabularInline):
    model = SupportPerson
    fields = ("name", "relationship", "phone", "notes", "source_organisation", "source_id", "sensitive")
    autocomplete_fields = ("source_organisation",)
    extra = 0


@admin.register(Patient)
class PatientAdmin(NhsNumberSearchMixin, admin.ModelAdmin):
    list_display = (
        "nhs_number_display",
        "family_name",
        "given_name",
        "date_of_birth",
        "sex",
        "postcode",
        "registered_gp",
    )
    list_filter = (("registered_gp", GPPracticeFilter), "registered_gp__region", "sex")
    search_fields = ("=nhs_number", "^family_name", "^given_name", "=postcode")
    list_select_related = ("registered_gp",)
    autocomplete_fields = ("registered_gp",)
    readonly_fields = ("id", "created_at", "updated_at", "who_has_seen_this_record")
    show_full_result_count = False
    inlines = [SupportPersonInline]

    @admin.display(description="NHS number", ordering="nhs_number")
    def nhs_number_display(self, patient):
        return patient.nhs_number_display

    @admin.display(description="Who has seen this record")
    def who_has_seen_this_record(self, patient):
        """The access log's view of this patient (by URL name only: this app knows nothing of sharing's code)."""
        if patient._state.adding:
            return "-"
        return format_html(
            '<a href="{}">Every access to this record, newest first</a>',
            reverse("admin:audit_accessevent_patient", args=[patient.pk]),
        )


@admin.register(SupportPerson)
class SupportPersonAdmin(NhsNumberSearchMixin, admin.ModelAdmin):
    list_display = ("name", "relationship", "patient", "source_organisation", "sensitive")
    list_filter = ("relationship", "sensitive", "entered_in_error")
    search_fields = ("=patient__nhs_number", "name", "=source_id")
    list_select_related = ("patient", "source_organisation")
    autocomplete_fields = ("patient", "source_organisation")
    show_full_result_count = False


class EntryAdmin(NhsNumberSearchMixin, admin.ModelAdmin):
    """What every category's page shares; subclasses add the category's own columns and filters."""

    columns = ()
    filters = ()
    text_search = ()

    list_select_related = ("patient", "source_organisation")
    autocomplete_fields = ("patient", "source_organisation")
    show_full_result_count = False

    def get_list_display(self, request):
        return (*self.columns, "patient", "effective_at", "source_organisation", "sensitive", "entered_in_error")

    def get_list_filter(self, request):
        return (
            *self.filters,
            "sensitive",
            "entered_in_error",
            "source_organisation__kind",
            "source_organisation__region",
            "source_organisation",
        )

    def get_search_fields(self, request):
        return ("=patient__nhs_number", "=source_id", *self.text_search)


class ObservationInline(admin.TabularInline):
    """Patient and date follow the report (see ResultAdmin), as the record's visibility rules do."""

    model = Observation
    fields = ("name", "code", "value", "value_text", "unit", "reference_low", "reference_high", "flag")
    extra = 0


class ResultAdmin(EntryAdmin):
    """Reports carry their observations inline."""

    inlines = [ObservationInline]

    def save_formset(self, request, form, formset, change):
        if formset.model is Observation:
            for observation in formset.save(commit=False):
                observation.patient_id = form.instance.patient_id
                observation.effective_at = form.instance.effective_at
                observation.save()
            for observation in formset.deleted_objects:
                observation.delete()
            return
        super().save_formset(request, form, formset, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        report = form.instance
        report.observations.exclude(patient_id=report.patient_id, effective_at=report.effective_at).update(
            patient_id=report.patient_id, effective_at=report.effective_at
        )


@admin.register(Observation)
class ObservationAdmin(NhsNumberSearchMixin, admin.ModelAdmin):
    list_display = ("name", "display_value", "flag", "code", "effective_at", "patient")
    list_filter = ("flag", "code_system")
    search_fields = ("=patient__nhs_number", "=code", "name")
    list_select_related = ("patient",)
    raw_id_fields = ("result",)
    autocomplete_fields = ("patient",)
    show_full_result_count = False


CUSTOM = {Result: ResultAdmin}


def register_entry_admins():
    """One admin page per registered category, with the columns the registry names; a category may bring a
    class of its own (`CUSTOM`) for what the generic page cannot do."""
    for entry in REGISTRY.values():
        base = CUSTOM.get(entry.model, EntryAdmin)
        attributes = {"columns": entry.admin_columns, "filters": entry.admin_filters, "text_search": entry.admin_search}
        admin.site.register(entry.model, type(f"{entry.model.__name__}Admin", (base,), attributes))


register_entry_admins()


# --- import bookkeeping: how a source's own resource ids map to patients and names ---------------------------------


@admin.register(SourcePatientId)
class SourcePatientIdAdmin(NhsNumberSearchMixin, admin.ModelAdmin):
    list_display = ("resource_id", "organisation", "patient", "source_updated_at")
    list_filter = ("organisation__kind", "organisation__region")
    search_fields = ("=resource_id", "=patient__nhs_number", "=organisation__ods_code")
    list_select_related = ("organisation", "patient")
    autocomplete_fields = ("organisation", "patient")
    show_full_result_count = False


@admin.register(SourceResource)
class SourceResourceAdmin(admin.ModelAdmin):
    list_display = ("resource_id", "name", "code", "organisation", "source_updated_at")
    list_filter = ("organisation__kind", "organisation__region")
    search_fields = ("=resource_id", "name", "=code", "=organisation__ods_code")
    list_select_related = ("organisation",)
    autocomplete_fields = ("organisation",)
    show_full_result_count = False
