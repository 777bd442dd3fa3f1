"""REST API of the audit trail: signed checkpoints, Merkle proofs, the public key.

Auditors and model services may read it. Hashes are lowercase hex; a checkpoint's `note` is
the full C2SP signed note, which anyone holding the public key can check offline.
"""

from __future__ import annotations

import re

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import keys, merkle, selectors
from audit.models import Checkpoint
from audit.tree import StoredTree
from core import roles as r
from core.errors import ApplicationError
from core.permissions import role_permission
from models_registry.services import invalid

READERS = (r.AUDITOR, r.MODEL_SERVICE)


class CheckpointOut(serializers.ModelSerializer):
    size = serializers.IntegerField(source="tree_size")

    class Meta:
        model = Checkpoint
        fields = ["size", "root", "origin", "key_id", "note", "created_at"]


class PublicKeyOut(serializers.Serializer):
    origin = serializers.CharField(help_text="the origin line of this log's checkpoints")
    key_name = serializers.CharField(help_text="the key's own name; signs only if = origin")
    warning = serializers.CharField(
        required=False, help_text="present when the key's name is not the origin"
    )
    key_id = serializers.CharField(help_text="4-byte C2SP key id, hex")
    public_key = serializers.CharField(help_text="base64 of the raw 32-byte Ed25519 key")
    vkey = serializers.CharField(help_text="the C2SP verifier-key string")


class InclusionOut(serializers.Serializer):
    seq = serializers.IntegerField()
    leaf_index = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    leaf_hash = serializers.CharField()
    root = serializers.CharField()
    proof = serializers.ListField(child=serializers.CharField())


# "from" is a Python keyword, so this shape is spelled out as a dict.
ConsistencyOut = inline_serializer(
    "ConsistencyProof",
    {
        "from": serializers.IntegerField(),
        "to": serializers.IntegerField(),
        "old_root": serializers.CharField(),
        "new_root": serializers.CharField(),
        "proof": serializers.ListField(child=serializers.CharField()),
    },
)


class ProofEventOut(serializers.Serializer):
    seq = serializers.IntegerField()
    canonical = serializers.CharField(help_text="the event's canonical JSON text")
    leaf_hash = serializers.CharField()
    leaf_index = serializers.IntegerField()
    proof = serializers.ListField(child=serializers.CharField(), allow_null=True)


class ProofCheckpointOut(serializers.Serializer):
    size = serializers.IntegerField()
    root = serializers.CharField()
    note = serializers.CharField()


class DecisionProofOut(serializers.Serializer):
    checkpoint = ProofCheckpointOut(allow_null=True)
    events = ProofEventOut(many=True)


class PublicKeyApi(APIView):
    """The checkpoint public key: raw Ed25519 key (base64) and the C2SP verifier-key string."""

    permission_classes = [role_permission(*READERS)]

    @extend_schema(responses=PublicKeyOut)
    def get(self, request: Request) -> Response:
        return Response(keys.public_key())


class LatestCheckpointApi(APIView):
    permission_classes = [role_permission(*READERS)]

    @extend_schema(responses=CheckpointOut)
    def get(self, request: Request) -> Response:
        checkpoint = Checkpoint.objects.order_by("-tree_size").first()
        if checkpoint is None:
            raise ApplicationError(
                "No checkpoint has been signed yet.", code="not_found", status=404
            )
        return Response(CheckpointOut(checkpoint).data)


class CheckpointListApi(APIView):
    """Every signed checkpoint, newest first (cursor-paginated)."""

    permission_classes = [role_permission(*READERS)]

    class Pagination(CursorPagination):
        ordering = "-tree_size"
        page_size = 100

    @extend_schema(responses=CheckpointOut(many=True))
    def get(self, request: Request) -> Response:
        paginator = self.Pagination()
        page = paginator.paginate_queryset(Checkpoint.objects.all(), request, view=self)
        return paginator.get_paginated_response(CheckpointOut(page, many=True).data)


# ASCII digits only: str.isdigit() also takes "²" and "١", which int() then refuses or
# reads; 19 digits is as far as a 64-bit tree size goes.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,19}")


def _positive(request: Request, name: str, *, minimum: int = 1) -> int:
    value = request.query_params.get(name, "")
    if not _WHOLE_NUMBER.fullmatch(value) or int(value) < minimum:
        raise invalid({name: [f"is required: a whole number ≥ {minimum}"]})
    return int(value)


def _sealed_or_409(size: int) -> None:
    sealed = selectors.sealed_size()
    if size > sealed:
        raise ApplicationError(
            f"size {size} is beyond the sealed log ({sealed} events); the next checkpoint "
            "will seal it",
            code="not_sealed",
        )


class InclusionProofApi(APIView):
    """Proof that event `seq` is leaf seq−1 of the tree of size `size` (default: the latest
    checkpoint's)."""

    permission_classes = [role_permission(*READERS)]

    @extend_schema(
        parameters=[OpenApiParameter("seq", int, required=True), OpenApiParameter("size", int)],
        responses=InclusionOut,
    )
    def get(self, request: Request) -> Response:
        seq = _positive(request, "seq")
        size = (
            _positive(request, "size")
            if "size" in request.query_params
            else selectors.latest_size()
        )
        if seq > size:
            raise invalid({"seq": [f"event #{seq} is not in a tree of size {size}"]})
        _sealed_or_409(size)
        tree = StoredTree()
        return Response(
            {
                "seq": seq,
                "leaf_index": seq - 1,
                "tree_size": size,
                "leaf_hash": tree.node(0, seq - 1).hex(),
                "root": tree.root(size).hex(),
                "proof": [h.hex() for h in tree.inclusion_proof(seq - 1, size)],
            }
        )


class ConsistencyProofApi(APIView):
    """Proof that the tree of size `to` extends the tree of size `from`."""

    permission_classes = [role_permission(*READERS)]

    @extend_schema(
        parameters=[
            OpenApiParameter("from", int, required=True),
            OpenApiParameter("to", int, required=True),
        ],
        responses=ConsistencyOut,
    )
    def get(self, request: Request) -> Response:
        old, new = _positive(request, "from", minimum=0), _positive(request, "to")
        if old > new:
            raise invalid({"from": ["must not be larger than to"]})
        _sealed_or_409(new)
        tree = StoredTree()
        return Response(
            {
                "from": old,
                "to": new,
                "old_root": (tree.root(old) if old else merkle.EMPTY_ROOT).hex(),
                "new_root": tree.root(new).hex(),
                "proof": [h.hex() for h in tree.consistency_proof(old, new)],
            }
        )


class DecisionProofApi(APIView):
    """Every audit event of a decision with its inclusion proof against the latest checkpoint.
    Events logged after that checkpoint come with `proof: null` until the next one."""

    permission_classes = [role_permission(*READERS)]

    @extend_schema(responses=DecisionProofOut)
    def get(self, request: Request, decision_id: int) -> Response:
        from reviews.selectors import decisions_visible_to

        decision = get_object_or_404(decisions_visible_to(request.user), pk=decision_id)
        return Response(selectors.decision_proof(decision.pk))


# --- exports -----------------------------------------------------------------------------------


def exports_visible_to(user):
    """Auditors see every export; anyone else only their own."""
    from audit.models import Export

    if r.has_role(user, r.AUDITOR):
        return Export.objects.all()
    return Export.objects.filter(requested_by=user)


def export_data(export, request: Request) -> dict:
    from django.urls import reverse

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
        from audit import services

        serializer = self.ExportIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        export = services.export_request(actor=request.user, **serializer.validated_data)
        export.refresh_from_db()
        return Response(export_data(export, request), status=202)


class ExportDetailApi(APIView):
    permission_classes = [role_permission(*READERS)]

    @extend_schema(responses=ExportOut)
    def get(self, request: Request, export_id: int) -> Response:
        export = get_object_or_404(exports_visible_to(request.user), pk=export_id)
        return Response(export_data(export, request))


class ExportDownloadApi(APIView):
    """The export package (zip: data file, manifest.json, optional audit bundle)."""

    permission_classes = [role_permission(*READERS)]

    @extend_schema(responses={(200, "application/zip"): OpenApiResponse(description="zip")})
    def get(self, request: Request, export_id: int):
        from django.http import FileResponse

        from audit import services

        export = get_object_or_404(exports_visible_to(request.user), pk=export_id)
        path = services.export_download(export=export, actor=request.user)
        return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)
