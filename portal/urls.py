from django.urls import path

from patients.categories import Category

from .views import attachments, break_glass, changes, emergency, objection, record, report_problem, search, timeline
from .views.print import record_print

urlpatterns = [
    path("", search.my_patients, name="my-patients"),
    path("search/", search.search, name="patient-search"),
    path("<uuid:patient_id>/", record.summary, name="record-summary"),
    path("<uuid:patient_id>/sharing/", record.coverage, name="record-coverage"),
    path("<uuid:patient_id>/timeline/", timeline.timeline, name="record-timeline"),
    path("<uuid:patient_id>/changes/", changes.changes, name="record-changes"),
    path("<uuid:patient_id>/print/", record_print, name="record-print"),
    path("<uuid:patient_id>/emergency/", emergency.emergency, name="record-emergency"),
    path("<uuid:patient_id>/results/<str:code>/", record.result_trend, name="record-result-trend"),
    path("<uuid:patient_id>/break-glass/", break_glass.break_glass, name="break-glass"),
    path("<uuid:patient_id>/objection/", objection.record_objection, name="record-objection"),
    path("<uuid:patient_id>/report-problem/<str:entry>/", report_problem.report_problem, name="record-report-problem"),
    path(
        "<uuid:patient_id>/letters/attachments/<int:attachment_id>/",
        attachments.letter_attachment,
        name="record-letter-attachment",
    ),
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
