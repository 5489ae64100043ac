from django.urls import path

from .categories import Category
from .views import record, search

urlpatterns = [
    path("", search.my_patients, name="my-patients"),
    path("search/", search.search, name="patient-search"),
    path("<uuid:patient_id>/", record.summary, name="record-summary"),
    path("<uuid:patient_id>/sharing/", record.coverage, name="record-coverage"),
    path("<uuid:patient_id>/results/<str:code>/", record.result_trend, name="record-result-trend"),
    *[
        path(
            f"<uuid:patient_id>/{category.value}/",
            record.category_page,
            {"category": category},
            name=f"record-{category.value}",
        )
        for category in Category
    ],
]
