"""Admin for HL7 v2 feeds, for IG: the feeds (who may send, as which organisation), the laboratories' code
mappings, and the queue of messages that could not be applied.

Feeds and code mappings are saved through `feeds.actions` (audited, naming what changed). A feed's shared secret
is typed into a form field and only its hash is kept; it is never shown again. Messages are never edited or
deleted here: the queue opens on those that need action (held, invalid, failed, never processed) with the reason
and where the problem is, and "Retry" re-runs the selected messages' raw text (feeds.actions.retry, audited).
A message holds patient data (its raw text: names, NHS number, results). Its page shows only the segments IG need
to match and route it (`routing_view`); results, notes and diagnoses are read on the record, under the record's
rules. Opening one writes an AccessEvent
(basis ig-admin) for its patient — or, held for want of a match, one naming nobody, as for a search that found
no one — like every other admin view of patient data; the list writes one per patient it shows.
"""

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.urls import reverse
from django.utils.html import format_html

from audit.admin import CappedCountPaginator, InputFilter, NoDirectWritesMixin
from audit.admin import QueueFilter as AuditQueueFilter
from audit.names import Action
from audit.writers import audit, record_admin_view
from bulk import actions as bulk
from directory.profiles import professional_for

from . import actions, replays
from .models import CodeMapping, Feed, Message
from .retention import NEEDS_ACTION

Status = Message.Status
# What IG need to match and route a message: who it is about, from where, about which visit or order. The clinical
# content (results, notes, diagnoses, allergies) is the record's, read through the record's own rules (H-01).
ROUTING_SEGMENTS = {"FHS", "BHS", "MSH", "SFT", "EVN", "PID", "PD1", "PV1", "PV2", "MRG", "ORC", "OBR", "BTS", "FTS"}
MESSAGE_PAGE = "admin:hl7-message"
QUEUE_PAGE = "admin:hl7-queue"


class FeedForm(forms.ModelForm):
    shared_secret = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="The secret the sender puts in MSH-8. Only its hash is kept: leave blank to keep the current one.",
    )
    clear_shared_secret = forms.BooleanField(required=False, help_text="Require no shared secret any more.")

    class Meta:
        model = Feed
        fields = (
            "name",
            "organisation",
            "active",
            "message_types",
            "unaccepted",
            "allowed_addresses",
            "client_certificate_sha256",
            "sending_application",
            "sending_facility",
        )

    def clean_message_types(self):
        value = self.cleaned_data["message_types"]
        types = [part.strip().upper() for part in value.split(",") if part.strip()]
        for kind in types:
            head, _, event = kind.partition("^")
            if len(head) != 3 or not head.isalnum() or (event and event != "*" and not event.isalnum()):
                raise forms.ValidationError(f"{kind!r} is not a message type (e.g. ADT^A01, ORU^R01, or ORU^*).")
        return ",".join(dict.fromkeys(types))

    def clean_shared_secret(self):
        secret = self.cleaned_data["shared_secret"]
        if secret and len(secret) < 16:
            raise forms.ValidationError("Use a long random secret (16 characters or more).")
        return secret


@admin.register(Feed)
class FeedAdmin(admin.ModelAdmin):
    """One configured connection per sending system. Not deleted (its messages keep it): set it inactive."""

    form = FeedForm
    list_display = ("name", "organisation", "active", "message_types", "unaccepted", "secret_set", "updated_at")
    list_filter = ("active", "unaccepted")
    list_select_related = ("organisation",)
    search_fields = ("name", "=organisation__ods_code", "organisation__name")
    autocomplete_fields = ("organisation",)
    readonly_fields = ("secret_set", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "organisation", "active")}),
        ("What it may send", {"fields": ("message_types", "unaccepted")}),
        (
            "How the sender is recognised",
            {
                "fields": (
                    "allowed_addresses",
                    "client_certificate_sha256",
                    "secret_set",
                    "shared_secret",
                    "clear_shared_secret",
                    "sending_application",
                    "sending_facility",
                )
            },
        ),
        (None, {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(boolean=True, description="shared secret set")
    def secret_set(self, obj):
        return bool(obj.shared_secret_hash)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        changed = [name for name in form.changed_data if name not in ("shared_secret", "clear_shared_secret")]
        if form.cleaned_data.get("clear_shared_secret") and obj.shared_secret_hash:
            actions.set_secret(obj, "")
            changed.append("shared_secret")
        elif form.cleaned_data.get("shared_secret"):
            actions.set_secret(obj, form.cleaned_data["shared_secret"])
            changed.append("shared_secret")
        actions.save_feed(by=request.user, feed=obj, changed=changed)


@admin.register(CodeMapping)
class CodeMappingAdmin(admin.ModelAdmin):
    """A laboratory's local test code → SNOMED CT or LOINC, so trends join across laboratories (H-10)."""

    list_display = ("local_code", "local_system", "organisation", "system", "code", "display", "updated_at")
    list_filter = ("system",)
    list_select_related = ("organisation",)
    search_fields = ("=local_code", "=code", "display", "=organisation__ods_code")
    autocomplete_fields = ("organisation",)

    def save_model(self, request, obj, form, change):
        actions.save_code_mapping(by=request.user, mapping=obj, changed=list(form.changed_data))

    def delete_model(self, request, obj):
        with transaction.atomic():
            _audit_mapping_deleted(request.user, obj)
            obj.delete()

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for mapping in queryset:
                self.delete_model(request, mapping)


def _audit_mapping_deleted(by, mapping):
    audit(
        by=by,
        action=Action.HL7_CODE_MAPPING_CHANGED,
        target=mapping,
        deleted=True,
        organisation=mapping.organisation.ods_code,
        local=f"{mapping.local_system}|{mapping.local_code}",
        national=f"{mapping.system}|{mapping.code}",
    )


class QueueFilter(AuditQueueFilter):
    """Opens on what needs action (held, invalid, failed, never processed); any one status, or all. A search by
    control id stays within the chosen (or default) queue."""

    title = "status"
    parameter_name = "queue"
    NEEDS_ACTION = "needs-action"
    default = NEEDS_ACTION
    search_looks_everywhere = False

    def lookups(self, request, model_admin):
        return [(self.NEEDS_ACTION, "Needs action"), *Status.choices]

    def filter_queue(self, queryset, value):
        if value == self.NEEDS_ACTION:
            return queryset.filter(status__in=NEEDS_ACTION)
        return queryset.filter(status=value)


class MessageTypeFilter(InputFilter):
    title = "message type"
    parameter_name = "type"
    label = "e.g. ADT^A01"

    def queryset(self, request, queryset):
        term = self.term().upper()
        if not term:
            return queryset
        return queryset.filter(message_type=term) if "^" in term else queryset.filter(message_type__startswith=term)


class LocalIdFilter(InputFilter):
    title = "hospital number"
    parameter_name = "local_id"
    label = "Local identifier, exactly"

    def queryset(self, request, queryset):
        return queryset.filter(local_id=self.term()) if self.term() else queryset


@admin.register(Message)
class MessageAdmin(NoDirectWritesMixin, admin.ModelAdmin):
    """Every HL7 v2 message as received, oldest first in the queue; never edited or deleted here."""

    list_display = (
        "received_at",
        "status",
        "message_type",
        "control_id",
        "feed",
        "local_id",
        "short_reason",
        "error_location",
        "attempts",
    )
    list_filter = (QueueFilter, MessageTypeFilter, LocalIdFilter, "feed")
    list_select_related = ("feed", "organisation")
    search_fields = ("=control_id",)
    search_help_text = "A message control id (MSH-10), exactly."
    ordering = ("received_at", "pk")
    sortable_by = ("received_at",)
    actions = ["retry", "replay_in_background"]
    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fieldsets = (
        (None, {"fields": ("status", "reason", "error_location", "ack_code", "attempts", "applied_at")}),
        (
            "The message",
            {"fields": ("message_type", "control_id", "version", "sent_at", "received_at", "feed", "organisation")},
        ),
        ("Whom it is about", {"fields": ("local_id", "patient", "submission")}),
        ("As received", {"fields": ("peer", "raw_text", "raw_cleared_at")}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [field for fieldset in self.fieldsets for field in fieldset[1]["fields"]]

    @admin.display(description="reason")
    def short_reason(self, obj):
        return obj.reason if len(obj.reason) <= 120 else obj.reason[:119] + "…"

    @admin.display(description="raw message (who and where; clinical segments counted, not shown)")
    def raw_text(self, obj):
        if not obj.raw:
            return "(cleared by retention)" if obj.raw_cleared_at else "(empty)"
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', routing_view(obj.raw))

    def has_retry_permission(self, request):
        return request.user.has_perm("feeds.change_message")

    @admin.action(description="Retry the selected messages", permissions=["retry"])
    def retry(self, request, queryset):
        outcomes, skipped = {}, 0
        for message in queryset.select_related("feed__organisation", "organisation").order_by("received_at", "pk"):
            try:
                reply = actions.retry(message, by=request.user)
            except actions.CannotRetry:
                skipped += 1
                continue
            outcomes[reply.status] = outcomes.get(reply.status, 0) + 1
        summary = ", ".join(f"{Status(status).label.lower()}: {count}" for status, count in sorted(outcomes.items()))
        level = messages.SUCCESS if set(outcomes) <= {Status.APPLIED, Status.IGNORED} else messages.WARNING
        self.message_user(request, f"Retried {sum(outcomes.values())} messages ({summary or 'none'}).", level)
        if skipped:
            self.message_user(request, f"{skipped} could not be retried: their raw text was cleared.", messages.ERROR)

    @admin.action(description="Replay the selected messages in the background (bulk-load queue)", permissions=["retry"])
    def replay_in_background(self, request, queryset):
        """For a selection too large to retry while the page waits: one job, followed in Bulk loads."""
        if not bulk.enabled():
            self.message_user(request, "The queue is off here (no CELERY_BROKER_URL): use Retry.", messages.ERROR)
            return
        ids = list(queryset.order_by("received_at", "pk").values_list("pk", flat=True))
        job, _ = replays.submit(ids, by=request.user, channel={"endpoint": "admin replay"})
        link = reverse("admin:bulk_job_change", args=[job.pk])
        self.message_user(
            request, format_html('Queued as job <a href="{}">{}</a>: {} messages.', link, job.pk, len(ids))
        )

    def changelist_view(self, request, extra_context=None):
        """The queue's page: one AccessEvent per patient it names (local ids and reasons are patient data too)."""
        response = super().changelist_view(request, extra_context)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if changelist is not None and request.method == "GET":
            shown = [message.patient for message in changelist.result_list if message.patient_id]
            if shown:
                _record_look(request, shown, QUEUE_PAGE)
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """A message's page shows its raw text: one AccessEvent per view, for its patient or naming nobody."""
        response = super().change_view(request, object_id, form_url, extra_context)
        message = (getattr(response, "context_data", None) or {}).get("original")
        if message is not None and response.status_code == 200:
            _record_look(request, [message.patient] if message.patient_id else [], MESSAGE_PAGE)
        return response

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("patient")


def routing_view(raw: str) -> str:
    """The raw message with its routing and identity segments as received, and every other segment (OBX, NTE,
    AL1, DG1, PRB...) only counted: enough to match a held message or find a bad field, never its results."""
    lines, hidden = [], {}
    for segment in raw.replace("\r\n", "\r").replace("\n", "\r").split("\r"):
        name = segment[:3]
        if not segment.strip():
            continue
        if name in ROUTING_SEGMENTS:
            lines.append(segment)
        else:
            hidden[name] = hidden.get(name, 0) + 1
            if hidden[name] == 1:
                lines.append(f"{name} … (clinical content not shown here)")
    counts = ", ".join(f"{name} ×{count}" for name, count in hidden.items())
    return "\n".join(lines + ([f"\nNot shown: {counts}. Read them on the patient's record."] if counts else []))


def _record_look(request, patients, page):
    record_admin_view(
        request=request, professional=professional_for(request.user), patients=patients, page=page, record_none=True
    )
