from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("patients/", include("patients.urls")),
    path("patients/", include("sharing.urls")),
    path("fhir/", include("sharing.fhir.urls")),
    path("", include("optout.urls")),
]

handler403 = "carerecord.views.forbidden"
