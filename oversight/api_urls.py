from django.urls import path

from oversight import api, report_api

urlpatterns = [
    path("exports/", api.ExportCreateApi.as_view(), name="api-exports"),
    path("exports/<int:export_id>/", api.ExportDetailApi.as_view(), name="api-export"),
    path(
        "exports/<int:export_id>/download/",
        api.ExportDownloadApi.as_view(),
        name="api-export-download",
    ),
    path("reports/overrides/", report_api.OverrideReportApi.as_view(), name="api-report-overrides"),
    path(
        "reports/selection/", report_api.SelectionReportApi.as_view(), name="api-report-selection"
    ),
    path("reports/drift/", report_api.DriftReportApi.as_view(), name="api-report-drift"),
    path("reports/evaluate/", report_api.EvaluateApi.as_view(), name="api-report-evaluate"),
    path("breakers/<slug:name>/", report_api.BreakerApi.as_view(), name="api-breaker"),
    path(
        "breakers/<slug:name>/reset/",
        report_api.BreakerResetApi.as_view(),
        name="api-breaker-reset",
    ),
]
