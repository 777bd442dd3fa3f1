"""Pages of the oversight app. The exports and a decision's audit page stay where auditors
know them, under /audit/ beside the audit app's own pages; the group reports are under
/oversight/."""

from django.urls import path

from oversight import owner_views, report_views, views

app_name = "oversight"
urlpatterns = [
    path("audit/decisions/<int:decision_id>/", views.decision_events, name="decision"),
    path("audit/exports/", views.export_list, name="exports"),
    path(
        "audit/exports/<int:export_id>/download/",
        views.export_download,
        name="export-download",
    ),
    path("audit/decisions/", views.decision_find, name="decision-find"),
    path("models/<slug:name>/activity/", owner_views.model_activity_page, name="model-activity"),
    path("models/<slug:name>/policy/what-if/", owner_views.what_if, name="what-if"),
    path("oversight/", report_views.reports_index, name="reports"),
    path("oversight/models/<slug:name>/", report_views.model_report, name="report"),
    path(
        "oversight/models/<slug:name>/<str:table>.<str:fmt>",
        report_views.report_download,
        name="report-download",
    ),
    path("oversight/models/<slug:name>/evaluate/", report_views.evaluate, name="evaluate"),
    path(
        "oversight/models/<slug:name>/breaker/reset/",
        report_views.breaker_reset,
        name="breaker-reset",
    ),
]
