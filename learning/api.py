"""REST API of the label loop: labels, retraining, the gated promotion, the webhook."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

from django.contrib.auth.models import User
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import renderers, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import roles as r
from core.errors import ErrorDetailSerializer, JSONErrors, forbidden, not_found
from core.lazy import lazy_module
from core.pagination import CursorPagination
from core.permissions import role_permission
from learning import selectors, services
from learning.models import LabelRecord, RetrainingRun, TrainingExample
from models_registry.api import VersionOutSerializer
from models_registry.models import MLModel
from models_registry.selectors import model_for
from outbox.services import message_resend

pa = lazy_module("pyarrow")
pq = lazy_module("pyarrow.parquet")

LABEL_READERS = (r.AUDITOR, r.MODEL_OWNER, r.MODEL_SERVICE)
PARQUET_ROWS = 10_000


def _labels_model(user: User, name: str) -> MLModel:
    return model_for(user, name, selectors.models_with_labels_for(user))


def _owned(user: User, name: str) -> MLModel:
    model = model_for(user, name)
    if not selectors.is_owner(user, model):
        raise forbidden(f"Only the owner of {model.name} may do this.")
    return model


class LabelOutSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="record_id", help_text="the label's id")
    decision = serializers.IntegerField(source="decision_id")
    supersedes = serializers.IntegerField(
        allow_null=True, help_text="the label this one replaces (an appeal's result)"
    )
    current = serializers.BooleanField(help_text="false once a later label superseded it")

    class Meta:
        model = TrainingExample
        fields = [
            "id",
            "decision",
            "external_id",
            "features",
            "label",
            "source",
            "reasons",
            "weight",
            "supersedes",
            "current",
            "labelled_at",
            "stored_at",
            "delivery_id",
        ]


class LabelFilterSerializer(serializers.Serializer):
    since = serializers.DateTimeField(
        required=False, help_text="labels stored in the training store at or after this time"
    )
    source = serializers.ChoiceField(choices=LabelRecord.Source.choices, required=False)


class LabelListApi(APIView):
    """The model's training store: every delivered human label, oldest first; for the model's
    services (and its owner and auditors). Cursor-paginated."""

    permission_classes = [role_permission(*LABEL_READERS)]

    class Pagination(CursorPagination):
        ordering = "id"
        page_size = 500
        page_size_query_param = "page_size"
        max_page_size = 5000

    @extend_schema(
        parameters=[
            LabelFilterSerializer,
            OpenApiParameter("page_size", int),
            OpenApiParameter("cursor", str),
        ],
        responses=LabelOutSerializer(many=True),
    )
    def get(self, request: Request, name: str) -> Response:
        model = _labels_model(request.user, name)
        filters = LabelFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = self.Pagination()
        page = paginator.paginate_queryset(
            selectors.examples(model, **filters.validated_data), request, view=self
        )
        return paginator.get_paginated_response(LabelOutSerializer(page, many=True).data)


class ParquetRenderer(renderers.BaseRenderer):
    media_type = "application/vnd.apache.parquet"
    format = "parquet"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data).encode()  # errors only; the data itself is streamed


def parquet_schema():
    """The labels' Parquet schema (pyarrow is imported when a Parquet file is asked for)."""
    return pa.schema(
        [
            ("id", pa.int64()),
            ("decision", pa.int64()),
            ("external_id", pa.string()),
            ("features", pa.string()),
            ("label", pa.string()),
            ("source", pa.string()),
            ("reasons", pa.string()),
            ("weight", pa.float64()),
            ("supersedes", pa.int64()),
            ("current", pa.bool_()),
            ("labelled_at", pa.timestamp("us", tz="UTC")),
            ("stored_at", pa.timestamp("us", tz="UTC")),
            ("delivery_id", pa.string()),
        ]
    )


def _parquet_chunks(rows) -> Iterator[bytes]:
    """The Parquet file in row groups of PARQUET_ROWS, yielded as each group is written."""
    sink = io.BytesIO()
    schema = parquet_schema()
    writer = pq.ParquetWriter(sink, schema)
    batch: list[TrainingExample] = []

    def flush() -> bytes:
        columns = {
            "id": [e.record_id for e in batch],
            "decision": [e.decision_id for e in batch],
            "external_id": [e.external_id for e in batch],
            "features": [json.dumps(e.features, sort_keys=True) for e in batch],
            "label": [e.label for e in batch],
            "source": [e.source for e in batch],
            "reasons": [",".join(e.reasons) for e in batch],
            "weight": [e.weight for e in batch],
            "supersedes": [e.supersedes for e in batch],
            "current": [e.current for e in batch],
            "labelled_at": [e.labelled_at for e in batch],
            "stored_at": [e.stored_at for e in batch],
            "delivery_id": [e.delivery_id for e in batch],
        }
        writer.write_table(pa.table(columns, schema=schema))
        batch.clear()
        return _drain(sink)

    for example in rows.iterator(chunk_size=PARQUET_ROWS):
        batch.append(example)
        if len(batch) >= PARQUET_ROWS:
            yield flush()
    if batch:
        yield flush()
    writer.close()
    yield _drain(sink)


def _drain(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data


class LabelParquetApi(JSONErrors, APIView):
    """The same rows as …/labels/ (same filters), as one Parquet file, streamed. `features`
    is a JSON object per row and `reasons` a comma-separated list."""

    permission_classes = [role_permission(*LABEL_READERS)]
    renderer_classes = [ParquetRenderer, renderers.JSONRenderer]

    @extend_schema(
        parameters=[LabelFilterSerializer],
        responses={
            (200, "application/vnd.apache.parquet"): OpenApiResponse(description="Parquet file")
        },
    )
    def get(self, request: Request, name: str):
        model = _labels_model(request.user, name)
        filters = LabelFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rows = selectors.examples(model, **filters.validated_data).order_by("id")
        response = StreamingHttpResponse(
            _parquet_chunks(rows), content_type="application/vnd.apache.parquet"
        )
        response["Content-Disposition"] = f'attachment; filename="{model.name}-labels.parquet"'
        return response


class RunOutSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    parent = serializers.IntegerField(source="parent.number", default=None)
    candidate = serializers.IntegerField(source="candidate.number", default=None)
    requested_by = serializers.CharField(source="requested_by.username", default=None)
    gate_passed = serializers.BooleanField(source="evaluation.passed", default=None)

    class Meta:
        model = RetrainingRun
        fields = [
            "id",
            "model",
            "status",
            "trigger",
            "requested_by",
            "requested_at",
            "started_at",
            "finished_at",
            "parent",
            "candidate",
            "label_cutoff",
            "labels_by_source",
            "base_rows",
            "training_seconds",
            "gate_passed",
            "error",
        ]


def _runs(model: MLModel):
    return RetrainingRun.objects.filter(model=model).select_related(
        "model", "parent", "candidate", "requested_by", "evaluation"
    )


class RetrainApi(APIView):
    """Retrain the champion on its base data plus the current human labels (the model's
    owner): 202 with the queued run; GET lists the runs (owner and auditors)."""

    permission_classes = [role_permission(r.MODEL_OWNER, r.AUDITOR)]

    @extend_schema(responses=RunOutSerializer(many=True))
    def get(self, request: Request, name: str) -> Response:
        model = model_for(request.user, name)
        if not (selectors.is_owner(request.user, model) or r.has_role(request.user, r.AUDITOR)):
            raise forbidden(f"Only the owner of {model.name} and auditors see its retraining.")
        runs = _runs(model).order_by("-requested_at", "-pk")[:100]
        return Response(RunOutSerializer(runs, many=True).data)

    @extend_schema(request=None, responses={202: RunOutSerializer})
    def post(self, request: Request, name: str) -> Response:
        model = _owned(request.user, name)
        run = services.retraining_request(model=model, actor=request.user)
        return Response(RunOutSerializer(_runs(model).get(pk=run.pk)).data, status=202)


class GateRefusalDetailSerializer(ErrorDetailSerializer):
    failed_checks = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text='when the gate refused: every failed check: {"code", "message", and '
        "attribute, group, metric, candidate, champion where they apply}",
    )
    evaluation = serializers.IntegerField(
        required=False, help_text="when the gate refused: the stored evaluation's id"
    )


class GateRefusalSerializer(serializers.Serializer):
    error = GateRefusalDetailSerializer()


class VersionPromoteApi(APIView):
    """Make a version the champion (its model's owner), through the promotion gate: it is
    measured against the champion on the holdout, and refused (409, every failed check listed)
    when it is worse overall or widens a group gap beyond the tolerances, unless the owner
    gives a `justification` of at least 20 characters (audited, shown on the model card)."""

    permission_classes = [role_permission(r.MODEL_OWNER)]

    class PromoteIn(serializers.Serializer):
        justification = serializers.CharField(
            required=False, allow_blank=True, max_length=5000, default=""
        )

    @extend_schema(
        request=PromoteIn,
        responses={
            200: VersionOutSerializer,
            409: OpenApiResponse(GateRefusalSerializer, description="refused by the gate"),
        },
    )
    def post(self, request: Request, name: str, number: int) -> Response:
        model = _owned(request.user, name)
        version = get_object_or_404(model.versions, number=number)
        data = self.PromoteIn(data=request.data)
        data.is_valid(raise_exception=True)
        version, _ = services.version_promote_gated(
            version=version, actor=request.user, justification=data.validated_data["justification"]
        )
        return Response(VersionOutSerializer(version).data)


class WebhookOutSerializer(serializers.Serializer):
    url = serializers.URLField()
    set_by = serializers.CharField(source="set_by.username", default=None)
    set_at = serializers.DateTimeField()
    secret = serializers.SerializerMethodField(help_text="never shown again once set")

    def get_secret(self, webhook) -> str:
        return "(set; not shown)"


class WebhookApi(APIView):
    """The model's label webhook (its owner): batches of labels POSTed as JSON, signed with
    `X-Oversight-Signature: sha256=HMAC(secret, "<X-Oversight-Timestamp>.<body>")`."""

    permission_classes = [role_permission(r.MODEL_OWNER)]

    class WebhookIn(serializers.Serializer):
        url = serializers.CharField(max_length=500)
        secret = serializers.CharField(
            min_length=16, max_length=500, trim_whitespace=False, write_only=True
        )

    @extend_schema(responses={200: WebhookOutSerializer, 204: None})
    def get(self, request: Request, name: str) -> Response:
        webhook = selectors.webhook_of(_owned(request.user, name))
        if webhook is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(WebhookOutSerializer(webhook).data)

    @extend_schema(request=WebhookIn, responses=WebhookOutSerializer)
    def put(self, request: Request, name: str) -> Response:
        model = _owned(request.user, name)
        data = self.WebhookIn(data=request.data)
        data.is_valid(raise_exception=True)
        webhook = services.webhook_set(model=model, actor=request.user, **data.validated_data)
        return Response(WebhookOutSerializer(webhook).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, name: str) -> Response:
        services.webhook_remove(model=_owned(request.user, name), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeliveryOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    key = serializers.CharField(help_text="the delivery id")
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    last_error = serializers.CharField()
    next_attempt_at = serializers.DateTimeField()


class DeliveryResendApi(APIView):
    """Send a dead label or webhook delivery of the model again (its owner)."""

    permission_classes = [role_permission(r.MODEL_OWNER)]

    @extend_schema(request=None, responses=DeliveryOutSerializer)
    def post(self, request: Request, name: str, message_id: int) -> Response:
        model = _owned(request.user, name)
        message = selectors.message_of_model(model, message_id)
        if message is None:
            raise not_found("No such delivery.")
        message = message_resend(message_id=message.pk, actor=request.user)
        return Response(DeliveryOutSerializer(message).data)
