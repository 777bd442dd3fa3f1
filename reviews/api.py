"""REST API of decisions: /api/v1/decisions/..."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import roles as r
from core.errors import forbidden
from core.permissions import role_permission
from reviews import selectors, services
from reviews.models import REASONS, Decision

READERS = (r.AUDITOR, r.SENIOR_REVIEWER, r.MODEL_OWNER, r.MODEL_SERVICE)


class DecisionInSerializer(serializers.Serializer):
    """One prediction. Without outcome and confidence, Oversight scores it with the champion."""

    model = serializers.CharField(help_text="the registered model's name")
    version = serializers.IntegerField(required=False, help_text="a version number to score with")
    external_id = serializers.CharField(
        max_length=200, help_text="idempotency key, unique per model"
    )
    subject_ref = serializers.CharField(max_length=200, help_text="pseudonymous subject reference")
    features = serializers.DictField(help_text="one value per schema feature")
    groups = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="protected attributes, kept apart from features",
    )
    outcome = serializers.CharField(required=False, help_text="the client's own outcome")
    confidence = serializers.FloatField(required=False, help_text="the client's own confidence")
    explanation = serializers.DictField(required=False, help_text="the client's own explanation")


class DecisionOutSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    model_version = serializers.IntegerField(source="model_version.number", default=None)
    groups = serializers.SerializerMethodField()
    tasks = serializers.SerializerMethodField()

    class Meta:
        model = Decision
        fields = [
            "id",
            "model",
            "model_version",
            "external_id",
            "subject_ref",
            "status",
            "scored_by",
            "features",
            "groups",
            "model_outcome",
            "confidence",
            "probabilities",
            "margin",
            "routed",
            "routing",
            "explanation",
            "final_outcome",
            "finalized_by",
            "finalized_at",
            "received_at",
            "tasks",
        ]

    def get_groups(self, decision: Decision) -> dict[str, str] | None:
        """Protected attributes; null for roles that may not see them."""
        if not self.context.get("with_groups"):
            return None
        return {p.name: p.value for p in decision.protected.all()}

    def get_tasks(self, decision: Decision) -> list[dict]:
        return [{"id": t.pk, "kind": t.kind, "state": t.state} for t in decision.tasks.all()]


def _with_related(qs: QuerySet[Decision]) -> QuerySet[Decision]:
    return (
        qs.select_related("model", "model_version")
        .defer("model_version__artifact")  # select_related would otherwise read the artifact
        .prefetch_related("protected", "tasks")
    )


def _out(request: Request, decisions, **kwargs) -> dict:
    context = {"with_groups": selectors.may_see_groups(request.user)}
    return DecisionOutSerializer(decisions, context=context, **kwargs).data


class DecisionCreateApi(APIView):
    permission_classes = [role_permission(*READERS)]

    class FilterSerializer(serializers.Serializer):
        model = serializers.CharField(required=False)
        status = serializers.ChoiceField(choices=Decision.Status.choices, required=False)
        routed = serializers.BooleanField(required=False, allow_null=True, default=None)
        reason = serializers.ChoiceField(choices=REASONS, required=False)
        since = serializers.DateTimeField(required=False)
        until = serializers.DateTimeField(required=False)

    class Pagination(CursorPagination):
        ordering = "-id"
        page_size = 100
        page_size_query_param = "page_size"
        max_page_size = 1000

    @extend_schema(
        parameters=[
            FilterSerializer,
            OpenApiParameter("page_size", int),
            OpenApiParameter("cursor", str),
        ],
        responses=DecisionOutSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        """Decisions you may see, newest first, filtered; cursor-paginated."""
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        decisions = _with_related(
            selectors.decisions_filtered(request.user, **filters.validated_data)
        )
        paginator = self.Pagination()
        page = paginator.paginate_queryset(decisions, request, view=self)
        return paginator.get_paginated_response(_out(request, page, many=True))

    @extend_schema(
        request=DecisionInSerializer,
        responses={201: DecisionOutSerializer, 200: DecisionOutSerializer},
    )
    def post(self, request: Request) -> Response:
        """Send one prediction. A repeated external_id with the same body returns the stored
        decision (200); with a different body, 409."""
        _require_service(request)
        (result,) = services.decisions_ingest(items=[request.data], actor=request.user, prefix="")
        decision = _with_related(Decision.objects.filter(pk=result.decision.pk)).get()
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return Response(_out(request, decision), status=code)


def _require_service(request: Request) -> None:
    if not r.has_role(request.user, r.MODEL_SERVICE):
        raise forbidden("Sending decisions needs a model service token.")


BulkResult = inline_serializer(
    "BulkResult",
    {
        "created": serializers.IntegerField(),
        "existing": serializers.IntegerField(),
        "items": inline_serializer(
            "BulkItem",
            {
                "index": serializers.IntegerField(),
                "id": serializers.IntegerField(),
                "created": serializers.BooleanField(),
                "status": serializers.CharField(),
                "model_outcome": serializers.CharField(),
                "confidence": serializers.FloatField(),
                "routed": serializers.BooleanField(),
                "reasons": serializers.ListField(child=serializers.CharField()),
                "final_outcome": serializers.CharField(),
            },
            many=True,
        ),
    },
)


class DecisionBulkApi(APIView):
    permission_classes = [role_permission(r.MODEL_SERVICE)]

    @extend_schema(
        request=inline_serializer("BulkIn", {"items": DecisionInSerializer(many=True)}),
        responses={201: BulkResult, 200: BulkResult},
    )
    def post(self, request: Request) -> Response:
        """Up to 1,000 predictions, all or nothing: one bad item is a 400 listing every bad
        item by index and field, and nothing is stored."""
        items = request.data.get("items") if isinstance(request.data, dict) else None
        results = services.decisions_ingest(items=items, actor=request.user)
        created = sum(result.created for result in results)
        body = {
            "created": created,
            "existing": len(results) - created,
            "items": [
                {
                    "index": result.index,
                    "id": result.decision.pk,
                    "created": result.created,
                    "status": result.decision.status,
                    "model_outcome": result.decision.model_outcome,
                    "confidence": result.decision.confidence,
                    "routed": result.decision.routed,
                    "reasons": result.decision.reasons,
                    "final_outcome": result.decision.final_outcome,
                }
                for result in results
            ],
        }
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class DecisionDetailApi(APIView):
    permission_classes = [role_permission(*READERS)]

    @extend_schema(responses=DecisionOutSerializer)
    def get(self, request: Request, decision_id: int) -> Response:
        decision = get_object_or_404(
            _with_related(selectors.decisions_visible_to(request.user)), pk=decision_id
        )
        return Response(_out(request, decision))
