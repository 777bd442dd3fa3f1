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
from core.api_schema import error
from core.permissions import role_permission
from oversight import selectors, services
from oversight.models import Export

READERS = (r.AUDITOR, r.MODEL_SERVICE)


class ExportOut(serializers.ModelSerializer):
    """An export and, once done, where to download it."""

    status = serializers.ChoiceField(choices=Export.Status.choices)
    progress = serializers.IntegerField(help_text="0-100")
    includes_protected_attributes = serializers.BooleanField(source="include_groups")
    sha256 = serializers.SerializerMethodField(help_text="of the zip, once done")
    manifest = serializers.SerializerMethodField(help_text="the package's manifest.json")
    error = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Export
        fields = [
            "id", "status", "progress", "rows", "format", "filters", "pseudonymise",
            "include_bundle", "includes_protected_attributes", "requested_at", "finished_at",
            "sha256", "size_bytes", "manifest", "error", "download_url",
        ]  # fmt: skip

    def get_sha256(self, export: Export) -> str | None:
        return export.sha256 or None

    def get_manifest(self, export: Export) -> dict | None:
        return export.manifest or None

    def get_error(self, export: Export) -> str | None:
        return export.error or None

    def get_download_url(self, export: Export) -> str | None:
        if export.status != Export.Status.DONE:
            return None
        url = reverse("api-export-download", args=[export.pk])
        return self.context["request"].build_absolute_uri(url)


def _export_out(export: Export, request: Request) -> dict:
    return ExportOut(export, context={"request": request}).data


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
        return Response(_export_out(export, request), status=202)


class ExportDetailApi(APIView):
    permission_classes = [role_permission(*READERS)]

    @extend_schema(responses=ExportOut)
    def get(self, request: Request, export_id: int) -> Response:
        export = get_object_or_404(selectors.exports_visible_to(request.user), pk=export_id)
        return Response(_export_out(export, request))


class ExportDownloadApi(APIView):
    """The export package (zip: data file, manifest.json, optional audit bundle)."""

    permission_classes = [role_permission(*READERS)]

    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiResponse(description="zip"),
            409: error("The export is not done (queued, running or failed)."),
            410: error("The export's file is gone from the export directory."),
        }
    )
    def get(self, request: Request, export_id: int):
        export = get_object_or_404(selectors.exports_visible_to(request.user), pk=export_id)
        path = services.export_download(export=export, actor=request.user)
        return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)
