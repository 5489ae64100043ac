"""Bulk loads in admin: every job with its progress, and the dead-letter list, where IG send a job again after a
fix or cancel one that waits (both audited, bulk/actions.py). A job's inputs are patient data: admin shows their
names and sizes, never their content; its error is kept without patient identifiers."""

from django.contrib import admin, messages

from audit.admin import CappedCountPaginator, NoDirectWritesMixin

from . import actions
from .models import DeadLetter, Job, JobInput


class InputsInline(admin.TabularInline):
    model = JobInput
    fields = ("seq", "name", "content_type", "size")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Job)
class JobAdmin(NoDirectWritesMixin, admin.ModelAdmin):
    list_display = ("created_at", "kind", "status", "scope", "requested_by", "attempts", "done", "total", "short_error")
    list_filter = ("status", "kind")
    search_fields = ("=submission_id", "=id")
    search_help_text = "A submission id (Idempotency-Key) or a job id, exactly."
    ordering = ("-created_at",)
    sortable_by = ("created_at",)
    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = ["send_again", "cancel"]
    inlines = [InputsInline]
    fieldsets = (
        (None, {"fields": ("kind", "status", "progress", "attempts", "max_attempts", "last_error")}),
        ("Who and what", {"fields": ("organisation", "requested_by", "token", "submission_id", "channel", "digest")}),
        (
            "When",
            {"fields": ("created_at", "dispatched_at", "started_at", "heartbeat_at", "next_attempt_at", "finished_at")},
        ),
        ("Result", {"fields": ("summary",)}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [field for fieldset in self.fieldsets for field in fieldset[1]["fields"]]

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="error")
    def short_error(self, obj):
        return obj.last_error if len(obj.last_error) <= 100 else obj.last_error[:99] + "…"

    @admin.display(description="summary")
    def summary(self, obj):
        return obj.result.get("summary", "")

    def has_send_again_permission(self, request):
        return request.user.has_perm("bulk.change_job")

    has_cancel_permission = has_send_again_permission

    @admin.action(description="Send the selected dead letters again", permissions=["send_again"])
    def send_again(self, request, queryset):
        self._each(request, queryset, actions.retry, "sent again")

    @admin.action(description="Cancel the selected waiting jobs", permissions=["cancel"])
    def cancel(self, request, queryset):
        self._each(request, queryset, actions.cancel, "cancelled")

    def _each(self, request, queryset, action, done_text):
        done, refused = 0, []
        for job in queryset:
            try:
                action(job, by=request.user)
                done += 1
            except actions.NotAllowed as exc:
                refused.append(str(exc))
        if done:
            self.message_user(request, f"{done} jobs {done_text}.", messages.SUCCESS)
        for text in refused[:10]:
            self.message_user(request, text, messages.ERROR)


@admin.register(DeadLetter)
class DeadLetterAdmin(JobAdmin):
    """The jobs that need action: their retries spent, or failed in a way no retry mends."""

    list_filter = ("kind",)
    actions = ["send_again"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(status=Job.Status.DEAD)
