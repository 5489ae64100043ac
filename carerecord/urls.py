from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

from . import dashboard, metrics, views

# Admin sign-in goes through allauth, so staff pass the same password + TOTP steps as everyone else.
admin.site.login = secure_admin_login(admin.site.login)
# IG's dashboard is the admin index.
dashboard.install(admin.site)

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),  # Prometheus, for a scraper holding METRICS_TOKEN
    path("accounts/stay-signed-in/", views.stay_signed_in, name="stay-signed-in"),
    # Single sign-on's own steps (the OIDC callback with carerecord's adapter, role selection, signed out) come
    # before allauth's, whose paths they share.
    path("accounts/", include("identity.sso_urls")),
    path("accounts/", include("allauth.urls")),
    path("", include("identity.urls")),
    path("admin/", admin.site.urls),
    path("patients/", include("portal.urls")),
    path("fhir/", include("fhirapi.urls")),
    path("", include("sharing.urls")),
    path("", include("optout.urls")),
]

handler403 = "portal.views.errors.forbidden"
