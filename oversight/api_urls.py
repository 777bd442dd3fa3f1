from django.urls import path

from oversight import api

urlpatterns = [
    path("exports/", api.ExportCreateApi.as_view(), name="api-exports"),
    path("exports/<int:export_id>/", api.ExportDetailApi.as_view(), name="api-export"),
    path(
        "exports/<int:export_id>/download/",
        api.ExportDownloadApi.as_view(),
        name="api-export-download",
    ),
]
