"""Pages of the oversight app. The exports and a decision's audit page stay where auditors
know them, under /audit/ beside the audit app's own pages."""

from django.urls import path

from oversight import views

app_name = "oversight"
urlpatterns = [
    path("audit/decisions/<int:decision_id>/", views.decision_events, name="decision"),
    path("audit/exports/", views.export_list, name="exports"),
    path(
        "audit/exports/<int:export_id>/download/",
        views.export_download,
        name="export-download",
    ),
]
