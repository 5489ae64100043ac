from django.urls import path

from . import views

urlpatterns = [
    path("about/", views.information, name="optout-information"),
    path("opt-out/", views.how_to_opt_out, name="optout-how"),
    path("opt-out/request/", views.request_objection, name="optout-request"),
    path("opt-out/request/check/", views.check_answers, name="optout-request-check"),
    path("opt-out/request/done/", views.request_done, name="optout-request-done"),
]
