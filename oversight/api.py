"""REST API of decision-log exports: /api/v1/exports/..."""

from __future__ import annotations

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import roles as r
from core.permissions import role_permission
from oversight import selectors, services
from oversight.models import Export

READERS = (r.AUDITOR, r.MODEL_SERVICE)


def export_data(export: Export, request: Request) -> dict:
    done = export.status == "done"
    return {
        "id": export.pk,
        "status": export.status,
        "progress": export.progress,
        "rows": export.rows,
        "format": export.format,
        "filters": export.filters,
        "pseudonymise": export.pseudonymise,
        "include_bundle": export.include_bundle,
        "includes_protected_attributes": export.include_groups,
        "requested_at": export.requested_at,
        "finished_at": export.finished_at,
        "sha256": export.sha256 or None,
        "size_bytes": export.size_bytes,
        "manifest": export.manifest or None,
        "error": export.error or None,
        "download_url": request.build_absolute_uri(reverse("api-export-download", args=[export.pk]))
        if done
        else None,
    }


class ExportOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["queued", "running", "done", "failed"])
    progress = serializers.IntegerField(help_text="0-100")
    rows = serializers.IntegerField()
    format = serializers.CharField()
    filters = serializers.JSONField()
    download_url = serializers.URLField(allow_null=True)
    sha256 = serializers.CharField(allow_null=True)
    manifest = serializers.JSONField(allow_null=True)
    error = serializers.CharField(allow_null=True)


class ExportCreateApi(APIView):
    """Export the decision log (the decisions you may see) as CSV, JSON Lines or Parquet, as a
    background job: 202 now, then poll GET /api/v1/exports/{id}/."""

    permission_classes = [role_permission(*READERS)]

    class ExportIn(serializers.Serializer):
        format = serializers.ChoiceField(choices=["csv", "jsonl", "parquet"])
        filters = serializers.JSONField(
            required=False,
            help_text="since, until (ISO times), model, version, status, routed, reason, "
            'groups ({"race": "black"})',
        )
        pseudonymise = serializers.BooleanField(default=False)
        include_bundle = serializers.BooleanField(default=False)

    @extend_schema(request=ExportIn, responses={202: ExportOut})
    def post(self, request: Request) -> Response:
        serializer = self.ExportIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        export = services.export_request(actor=request.user, **serializer.validated_data)
        export.refresh_from_db()
        return Response(export_data(export, request), status=202)


class ExportDetailApi(APIView):
    permission_classes = [role_permission(*READERS)]

    @extend_schema(responses=ExportOut)
    def get(self, request: Request, export_id: int) -> Response:
        export = get_object_or_404(selectors.exports_visible_to(request.user), pk=export_id)
        return Response(export_data(export, request))


class ExportDownloadApi(APIView):
    """The export package (zip: data file, manifest.json, optional audit bundle)."""

    permission_classes = [role_permission(*READERS)]

    @extend_schema(responses={(200, "application/zip"): OpenApiResponse(description="zip")})
    def get(self, request: Request, export_id: int):
        export = get_object_or_404(selectors.exports_visible_to(request.user), pk=export_id)
        path = services.export_download(export=export, actor=request.user)
        return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)
