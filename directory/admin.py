"""Django admin for the directory: organisations, professionals, care teams and their members, API tokens.

Every save goes through `directory.actions`, so each change is audited and team memberships keep the team's
Django group (its access) in step.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q

from . import actions
from .models import ApiToken, CareTeam, CareTeamMembership, Organisation, Professional

# --- organisations --------------------------------------------------------------------------------------------


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ("name", "ods_code", "kind", "region", "active")
    list_filter = ("kind", "region", "active")
    search_fields = ("name", "ods_code")

    def save_model(self, request, obj, form, change):
        actions.save_organisation(by=request.user, organisation=obj, changed=form.changed_data)


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
        if change:
            actions.save_professional(by=request.user, professional=obj, changed=form.changed_data)
            return
        data = form.cleaned_data
        created = actions.provision_professional(
            by=request.user,
            email=data["email"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            organisation=data["organisation"],
            role=data["role"],
            job_title=data.get("job_title", ""),
            registration_number=data.get("registration_number", ""),
            active=data.get("active", True),
        )  # no password: unusable until they set one
        obj.pk, obj.user, obj._state.adding = created.pk, created.user, False


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
                actions.change_member_role(by=request.user, membership=membership, role_in_team=membership.role_in_team)
        for membership in formset.new_objects:
            created = actions.add_team_member(
                by=request.user, team=team, professional=membership.professional, role_in_team=membership.role_in_team
            )
            membership.pk = created.pk

    def delete_model(self, request, obj):
        """The team's group goes too, taking its members' access and any grants left on it."""
        actions.delete_care_team(by=request.user, team=obj)

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
                actions.change_member_role(by=request.user, membership=obj, role_in_team=obj.role_in_team)
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
