from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

from . import views

# Admin sign-in goes through allauth, so staff pass the same password + TOTP steps as everyone else.
admin.site.login = secure_admin_login(admin.site.login)

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("patients/", include("portal.urls")),
    path("fhir/", include("fhirapi.urls")),
    path("", include("sharing.urls")),
    path("", include("optout.urls")),
]

handler403 = "portal.views.errors.forbidden"
