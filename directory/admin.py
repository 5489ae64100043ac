"""Django admin for the directory: organisations, professionals, care teams and their members, API tokens.

Every save goes through `directory.actions`, so each change is audited and team memberships keep the team's
Django group (its access) in step. The rules those actions keep (nobody changes their own profile's
organisation or active flag, or switches off their own organisation; members work for their team's
organisation) are form errors here. Django's user admin is wrapped only to name who switched an account off.
"""

import datetime

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from . import actions
from .models import ApiToken, CareTeam, CareTeamMembership, Organisation, Professional, RoleProfile

# --- organisations --------------------------------------------------------------------------------------------


class OrganisationForm(forms.ModelForm):
    changed_by = None  # the signed-in user: set per request by OrganisationAdmin.get_form

    def clean(self):
        cleaned = super().clean()
        try:
            actions.check_organisation_change(
                by=self.changed_by, organisation=self.instance, changed=self.changed_data, active=cleaned.get("active")
            )
        except PermissionDenied as refused:
            raise ValidationError(str(refused)) from None
        return cleaned


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    """`listed` (on the public partners page) changes only through the two admin actions, each audited:
    organisations a feed adds wait, unlisted, until IG approve them."""

    list_display = ("name", "ods_code", "kind", "region", "active", "listed")
    list_filter = ("listed", "kind", "region", "active")
    search_fields = ("name", "ods_code")
    actions = ["approve_listing", "remove_listing"]
    readonly_fields = ("listed",)  # an organisation IG add is listed; the actions change it
    form = OrganisationForm

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.changed_by = request.user  # a class made for this request
        return form

    def save_model(self, request, obj, form, change):
        actions.save_organisation(by=request.user, organisation=obj, changed=form.changed_data)

    @admin.action(description="Approve: list the selected organisations on the partners page", permissions=["change"])
    def approve_listing(self, request, queryset):
        for organisation in queryset.filter(listed=False):
            actions.set_organisation_listed(by=request.user, organisation=organisation, listed=True)

    @admin.action(description="Take the selected organisations off the partners page", permissions=["change"])
    def remove_listing(self, request, queryset):
        for organisation in queryset.filter(listed=True):
            actions.set_organisation_listed(by=request.user, organisation=organisation, listed=False)


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
            "sso_subject",
            "active",
        )

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if get_user_model().objects.filter(Q(username__iexact=email) | Q(email__iexact=email)).exists():
            raise ValidationError("An account with this email address already exists.")
        return email


class ProfessionalChangeForm(forms.ModelForm):
    changed_by = None  # the signed-in user: set per request by ProfessionalAdmin.get_form

    def clean(self):
        cleaned = super().clean()
        try:
            actions.check_professional_change(by=self.changed_by, professional=self.instance, changed=self.changed_data)
        except PermissionDenied as refused:
            raise ValidationError(str(refused)) from None
        return cleaned


class ProfessionalMembershipInline(admin.TabularInline):
    """Which teams a professional is in; memberships are changed on the care team, where access is granted."""

    model = CareTeamMembership
    fields = ("team", "role_in_team", "review_on")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "care teams (change memberships on the care team)"

    def has_add_permission(self, request, obj=None):
        return False


class RoleProfileInline(admin.TabularInline):
    """A professional's further roles (an organisation and a role there): a session acts in one at a time, chosen
    at single sign-on or on "change role". Saved through directory.actions (audited); switching one off ends
    their sessions and takes them out of that organisation's teams unless they work there otherwise."""

    model = RoleProfile
    fields = ("organisation", "role", "job_title", "provider_role_id", "national_role_code", "active", "from_sign_in")
    readonly_fields = ("national_role_code", "from_sign_in")
    autocomplete_fields = ("organisation",)
    extra = 0
    can_delete = False  # switch one off instead: the audit trail keeps what it was
    verbose_name_plural = "other role profiles"

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
    inlines = [RoleProfileInline, ProfessionalMembershipInline]

    @admin.display(ordering="user__last_name")
    def name(self, professional):
        return professional.name

    @admin.display(ordering="user__email")
    def email(self, professional):
        return professional.user.email

    def get_fields(self, request, obj=None):
        if obj is None:
            return ProfessionalCreationForm.Meta.fields
        return ("user", "organisation", "role", "job_title", "registration_number", "sso_subject", "active")

    def get_readonly_fields(self, request, obj=None):
        return ("user",) if obj else ()

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = ProfessionalCreationForm if obj is None else ProfessionalChangeForm
        form = super().get_form(request, obj, **kwargs)
        form.changed_by = request.user  # a class made for this request
        return form

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
            sso_subject=data.get("sso_subject") or None,
            active=data.get("active", True),
        )  # no password: unusable until they set one
        obj.pk, obj.user, obj._state.adding = created.pk, created.user, False

    def save_formset(self, request, form, formset, change):
        """Role profiles change through the actions (audited); memberships are read-only here."""
        if formset.model is not RoleProfile:
            return super().save_formset(request, form, formset, change)
        formset.save(commit=False)
        for role_profile, changed_fields in formset.changed_objects:
            actions.save_role_profile(by=request.user, role_profile=role_profile, changed=changed_fields)
        for role_profile in formset.new_objects:
            created = actions.add_role_profile(
                by=request.user,
                professional=form.instance,
                organisation=role_profile.organisation,
                role=role_profile.role,
                job_title=role_profile.job_title,
                provider_role_id=role_profile.provider_role_id or None,
                active=role_profile.active,
            )
            role_profile.pk = created.pk


# --- care teams ---------------------------------------------------------------------------------------------------


class CareTeamMembershipInline(admin.TabularInline):
    """A member must work for the team's organisation (CareTeamMembership.clean: an error on the row)."""

    model = CareTeamMembership
    fields = ("professional", "role_in_team", "review_on")
    autocomplete_fields = ("professional",)
    extra = 0


class ReviewFilter(admin.SimpleListFilter):
    """Memberships that should have been checked by now (and those coming up), so they do not outlive the job."""

    title = "review"
    parameter_name = "review"

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue"), ("due", "Due in the next 30 days"), ("none", "No review date")]

    def queryset(self, request, queryset):
        today = timezone.localdate()
        if self.value() == "overdue":
            return queryset.filter(review_on__lt=today)
        if self.value() == "due":
            return queryset.filter(review_on__gte=today, review_on__lte=today + datetime.timedelta(days=30))
        if self.value() == "none":
            return queryset.filter(review_on=None)
        return queryset


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
                    review_on=membership.review_on,
                )
            else:
                actions.change_member_role(
                    by=request.user,
                    membership=membership,
                    role_in_team=membership.role_in_team,
                    review_on=membership.review_on,
                )
        for membership in formset.new_objects:
            created = actions.add_team_member(
                by=request.user,
                team=team,
                professional=membership.professional,
                role_in_team=membership.role_in_team,
                review_on=membership.review_on,
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
    list_display = ("professional", "team", "organisation", "role_in_team", "review_on")
    list_filter = (ReviewFilter, "team__kind", "team__organisation__region")
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
                actions.change_member_role(
                    by=request.user, membership=obj, role_in_team=obj.role_in_team, review_on=obj.review_on
                )
                return
            created = actions.add_team_member(
                by=request.user,
                team=obj.team,
                professional=obj.professional,
                role_in_team=obj.role_in_team,
                review_on=obj.review_on,
            )
            obj.pk, obj._state.adding = created.pk, False

    def delete_model(self, request, obj):
        actions.remove_team_member(by=request.user, membership=obj)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("professional__user", "team"):
            actions.remove_team_member(by=request.user, membership=membership)


# --- API tokens ---------------------------------------------------------------------------------------------------


class ApiTokenCreationForm(forms.ModelForm):
    lifetime_hours = forms.IntegerField(
        label="Lifetime (hours)",
        min_value=1,
        required=False,
        help_text="A professional's token always expires: empty means the default "
        f"({actions.personal_token_hours():g} hours). An organisation's token: empty means until revoked.",
    )

    class Meta:
        model = ApiToken
        fields = ("name", "organisation", "user", "lifetime_hours")

    def clean(self):
        cleaned = super().clean()
        hours = cleaned.get("lifetime_hours")
        if hours is None and cleaned.get("user"):
            hours = actions.personal_token_hours()
        cleaned["hours"] = hours
        # What create_api_token will set, so that the model's checks (a personal token expires) see it.
        self.instance.expires_at = timezone.now() + datetime.timedelta(hours=hours) if hours else None
        return cleaned


class TokenStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("usable", "Usable"), ("expired", "Expired"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "usable":
            return queryset.filter(Q(expires_at=None) | Q(expires_at__gt=now), revoked_at=None)
        if self.value() == "expired":
            return queryset.filter(expires_at__lte=now, revoked_at=None)
        if self.value() == "revoked":
            return queryset.exclude(revoked_at=None)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created here and shown once; afterwards they can only be revoked (kept for the record)."""

    list_display = ("name", "prefix", "organisation", "user", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = (TokenStateFilter, "organisation__kind")
    search_fields = ("name", "=prefix", "organisation__ods_code", "organisation__name", "user__email")
    list_select_related = ("organisation", "user")
    autocomplete_fields = ("organisation",)
    raw_id_fields = ("user",)
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ApiTokenCreationForm.Meta.fields
        return ("name", "prefix", "organisation", "user", "created_at", "expires_at", "last_used_at", "revoked_at")

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenCreationForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj else ()

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        token, secret = actions.create_api_token(
            by=request.user,
            name=obj.name,
            organisation=obj.organisation,
            user=obj.user,
            hours=form.cleaned_data["hours"],
        )
        obj.pk, obj._state.adding = token.pk, False
        messages.warning(request, f"Copy the token now: it will not be shown again. {secret}")

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        for token in queryset.filter(revoked_at__isnull=True):
            actions.revoke_api_token(by=request.user, token=token)


# --- sign-in accounts ---------------------------------------------------------------------------------------------

User = get_user_model()
if admin.site.is_registered(User):
    _UserAdmin = type(admin.site._registry[User])
    admin.site.unregister(User)

    @admin.register(User)
    class AccountAdmin(_UserAdmin):
        """Django's user admin, naming who switched an account off: `directory.signals` then ends its sessions
        and revokes its tokens, and the audit row names them."""

        def save_model(self, request, obj, form, change):
            obj._carerecord_changed_by = request.user
            super().save_model(request, obj, form, change)
