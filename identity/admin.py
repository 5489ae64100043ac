"""Admin for IG: the partners whose clinical systems may open records in context (docs/launch.md).

A partner is saved through identity.actions (audited: created, changed, deactivated, with the fields that changed and
the key's fingerprint, never the key). Its key is checked when saved with the same code that checks launches, so a
key admin accepts is one a launch can be verified with. Partners are deactivated, never deleted (their audit rows
name them). Token uses (LaunchUse) are not in admin: they are replay protection, forgotten after the token expires;
the audit trail holds every launch, opened or refused.
"""

from django import forms
from django.contrib import admin

from . import actions
from .launch import KeyProblem, load_public_keys
from .models import LaunchPartner


class LaunchPartnerForm(forms.ModelForm):
    class Meta:
        model = LaunchPartner
        fields = ("name", "organisation", "issuer", "algorithm", "public_key", "active")
        widgets = {"public_key": forms.Textarea(attrs={"rows": 12, "cols": 80, "spellcheck": "false"})}

    def clean_issuer(self):
        return self.cleaned_data["issuer"].strip()

    def clean(self):
        cleaned = super().clean()
        key, algorithm = cleaned.get("public_key"), cleaned.get("algorithm")
        if key and algorithm:
            try:
                load_public_keys(key, algorithm)
            except KeyProblem as problem:
                self.add_error("public_key", str(problem))
            cleaned["public_key"] = key.strip()
        return cleaned


@admin.register(LaunchPartner)
class LaunchPartnerAdmin(admin.ModelAdmin):
    form = LaunchPartnerForm
    list_display = ("name", "issuer", "organisation", "algorithm", "active", "created_at")
    list_filter = ("active", "algorithm")
    list_select_related = ("organisation",)
    search_fields = ("name", "issuer", "=organisation__ods_code", "organisation__name")
    autocomplete_fields = ("organisation",)
    readonly_fields = ("key_fingerprint", "created_at")
    fieldsets = (
        (None, {"fields": ("name", "organisation", "active")}),
        ("What the partner's launch tokens carry", {"fields": ("issuer", "algorithm")}),
        ("The partner's public key", {"fields": ("public_key", "key_fingerprint")}),
        (None, {"fields": ("created_at",)}),
    )

    @admin.display(description="key fingerprint (SHA-256, as in the audit trail)")
    def key_fingerprint(self, obj):
        return actions.key_fingerprint(obj.public_key) if obj and obj.public_key else "-"

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        actions.save_partner(by=request.user, partner=obj, changed=list(form.changed_data))
