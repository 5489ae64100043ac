from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "identity"
    verbose_name = "Sign-in and launch"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import adapters, signals

        adapters.connect()  # first: the session's role and assurance are set before the sign-in is audited
        signals.connect()
        _unregister_allauth_social_admin()


def _unregister_allauth_social_admin():
    """allauth's social account models stay out of admin: the provider is configured from settings, a subject
    links through Professional.sso_subject (in the professional's page), and tokens are not stored."""
    from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
    from django.contrib import admin

    for model in (SocialApp, SocialAccount, SocialToken):
        if admin.site.is_registered(model):
            admin.site.unregister(model)
