"""Admin for what partners sent: the submissions (fhirapi.models.Submission), read-only, for IG.

A submission row says who sent what kind of thing, when and through which token or command; it holds no
patient data (no patient, no resource, no clinical content: the versions it stored, which do, are not shown
here, not even counted by patient), so a look at it is not an AccessEvent, as a look at the audit trail's
`fhir.submission` rows, which carry the same, is not. The one thing a sender controls in it besides its
identifiers is the endpoint's path (`PUT /fhir/Condition/<its id>`), which that audit row holds too.

Like the audit trail the table grows with every submission: no full count, no facet counts, sorted only by
when it was received, filtered by typed ODS code rather than a list of every organisation.
"""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from audit.admin import CappedCountPaginator, DateRangeFilter, InputFilter, NoDirectWritesMixin

from .models import Submission

BUNDLE_TYPES = ("transaction", "batch", "collection", "document", "message")


class SenderFilter(InputFilter):
    title = "organisation"
    parameter_name = "ods_code"
    label = "ODS code"

    def queryset(self, request, queryset):
        code = self.term().upper()
        return queryset.filter(organisation__ods_code=code) if code else queryset


class BundleTypeFilter(admin.SimpleListFilter):
    """A fixed list (the kinds carerecord imports): choices drawn from the table would be a DISTINCT over it."""

    title = "sent as"
    parameter_name = "sent_as"

    def lookups(self, request, model_admin):
        return [("resource", "A single resource"), *((kind, kind.capitalize()) for kind in BUNDLE_TYPES)]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "resource":
            return queryset.filter(bundle_type="")
        return queryset.filter(bundle_type=value) if value in BUNDLE_TYPES else queryset


@admin.register(Submission)
class SubmissionAdmin(NoDirectWritesMixin, admin.ModelAdmin):
    """Each submission applied (one rolled back left no row): what a Provenance on the FHIR API says."""

    list_display = ("received_at", "organisation", "endpoint", "sent_as", "message_id")
    list_filter = (SenderFilter, BundleTypeFilter, ("received_at", DateRangeFilter))
    list_select_related = ("organisation",)
    search_fields = ("=request_id", "=message_id", "=bundle_id")
    search_help_text = "A request id (X-Request-ID), a message id or a Bundle identifier (system|value), exactly."
    fields = (
        "id",
        "received_at",
        "organisation",
        "actor",
        "token",
        "endpoint",
        "request_id",
        "audit_row",
        "bundle_type",
        "bundle_id",
        "message_id",
    )
    readonly_fields = fields
    ordering = ("-received_at",)
    sortable_by = ("received_at",)
    actions = None
    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description="sent as", ordering=None)
    def sent_as(self, submission):
        return submission.bundle_type or "resource"

    @admin.display(description="audit row")
    def audit_row(self, submission):
        """The submission's `fhir.submission` audit row: its target is the request id (a command's rows name
        their run in their detail instead)."""
        if not submission.request_id or " /" not in submission.endpoint:
            return "-"
        query = urlencode({"target_type": "SubmissionTarget", "target_id": submission.request_id})  # indexed
        url = reverse("admin:audit_auditevent_changelist") + "?" + query
        return format_html('<a href="{}">{}</a>', url, "In the change log")
