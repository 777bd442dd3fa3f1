"""REST API of decisions: /api/v1/decisions/..."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.api import READERS as PROOF_READERS
from audit.api import DecisionProofOut
from audit.selectors import object_proof
from audit.services import viewed
from core import roles as r
from core.errors import forbidden
from core.permissions import role_permission
from reviews import selectors, services
from reviews.models import REASONS, Decision, Review, ReviewTask
from reviews.stats import DAYS_HELP, reviewer_stats, stats_since

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


def _out(request: Request, decisions, *, many: bool = False) -> dict | list:
    """Decisions as the caller may see them: a reviewer holding an unanswered blind task on a
    decision gets it without the model's answer (the hidden set in one query for a page)."""
    rows = list(decisions) if many else [decisions]
    hidden = selectors.decisions_hidden_from(request.user, [d.pk for d in rows])
    context = {"with_groups": selectors.may_see_groups(request.user)}
    data = DecisionOutSerializer(rows, context=context, many=True).data
    data = [selectors.without_model(row) if row["id"] in hidden else row for row in data]
    return data if many else data[0]


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
        viewed(
            actor=request.user,
            action="decision.viewed",
            object_type="decision",
            object_id=decision.pk,
        )
        return Response(_out(request, decision))


class DecisionProofApi(APIView):
    """Every audit event of a decision with its inclusion proof against the latest checkpoint.
    Events logged after that checkpoint come with `proof: null` until the next one."""

    permission_classes = [role_permission(*PROOF_READERS)]

    @extend_schema(responses=DecisionProofOut)
    def get(self, request: Request, decision_id: int) -> Response:
        decision = get_object_or_404(selectors.decisions_visible_to(request.user), pk=decision_id)
        return Response(object_proof(object_type="decision", object_id=decision.pk))


# --- the review queue -------------------------------------------------------------------------

REVIEWERS = (r.REVIEWER,)


def _task_or_404(request: Request, task_id: int):
    task = selectors.task_for(request.user, task_id)
    if task is None:
        raise Http404("No such task.")
    return task


def _task_response(request: Request, task, code: int = status.HTTP_200_OK) -> Response:
    task = _task_or_404(request, task.pk)
    return Response(selectors.task_data(task, request.user), status=code)


class TaskOut(serializers.Serializer):
    """A review task as its holder sees it (documentation of the response)."""

    id = serializers.IntegerField()
    kind = serializers.CharField()
    state = serializers.CharField()
    priority = serializers.IntegerField()
    due_at = serializers.DateTimeField()
    claimed_at = serializers.DateTimeField()
    lease_expires_at = serializers.DateTimeField()
    blind = serializers.BooleanField()
    note = serializers.CharField()
    assignee = serializers.CharField()
    decision = serializers.JSONField(
        help_text="features, routing and, unless blind, the model's outcome, confidence and "
        "explanation"
    )


class ReviewTaskListApi(APIView):
    """The tasks you hold now."""

    permission_classes = [role_permission(*REVIEWERS)]

    @extend_schema(responses=TaskOut(many=True))
    def get(self, request: Request) -> Response:
        claims = selectors.my_claims(request.user)
        return Response([selectors.task_data(task, request.user) for task in claims])


class ReviewTaskClaimApi(APIView):
    """Claim the next task: highest priority, then earliest due. 204 when nothing is eligible."""

    permission_classes = [role_permission(*REVIEWERS)]

    class ClaimSerializer(serializers.Serializer):
        model = serializers.CharField(required=False)
        kind = serializers.ChoiceField(choices=ReviewTask.Kind.choices, required=False)

    @extend_schema(request=ClaimSerializer, responses={200: TaskOut, 204: None})
    def post(self, request: Request) -> Response:
        filters = self.ClaimSerializer(data=request.data or request.query_params)
        filters.is_valid(raise_exception=True)
        task = services.task_claim_next(reviewer=request.user, **filters.validated_data)
        if task is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return _task_response(request, task)


class ReviewTaskDetailApi(APIView):
    """A task you hold (seniors and auditors may open any)."""

    permission_classes = [role_permission(r.REVIEWER, r.AUDITOR)]

    @extend_schema(responses=TaskOut)
    def get(self, request: Request, task_id: int) -> Response:
        task = _task_or_404(request, task_id)
        return Response(selectors.task_data(task, request.user))


class ReviewSubmitApi(APIView):
    """Answer the task you hold: agree, or override with an outcome, reason code and rationale.
    In blind review give your outcome and rationale. 409 when your lease was lost."""

    permission_classes = [role_permission(*REVIEWERS)]

    class AnswerSerializer(serializers.Serializer):
        verdict = serializers.ChoiceField(choices=Review.Verdict.choices, required=False)
        outcome = serializers.CharField(required=False)
        reason_code = serializers.CharField(required=False, allow_blank=True)
        rationale = serializers.CharField(required=False, allow_blank=True)
        explanation_for_person = serializers.CharField(
            required=False,
            allow_blank=True,
            help_text="with an override, optional: words for the person the decision is about, "
            "quoted in their notice (otherwise the reason code's public wording is)",
        )

    @extend_schema(
        request=AnswerSerializer,
        responses={
            201: inline_serializer(
                "ReviewOut",
                {
                    "id": serializers.IntegerField(),
                    "task": serializers.IntegerField(),
                    "verdict": serializers.CharField(),
                    "outcome": serializers.CharField(),
                    "agrees_with_model": serializers.BooleanField(),
                    "model_outcome": serializers.CharField(),
                    "seconds_spent": serializers.FloatField(),
                    "model_hidden": serializers.BooleanField(),
                    "decision_status": serializers.CharField(),
                    "final_outcome": serializers.CharField(),
                },
            )
        },
    )
    def post(self, request: Request, task_id: int) -> Response:
        data = _valid_data(self.AnswerSerializer, request.data)
        review = services.review_submit(task_id=task_id, reviewer=request.user, **data)
        decision = Decision.objects.get(pk=review.decision_id)
        body = {
            "id": review.pk,
            "task": review.task_id,
            "verdict": review.verdict,
            "outcome": review.outcome,
            "agrees_with_model": review.agrees_with_model,
            "model_outcome": decision.model_outcome,  # revealed once answered
            "seconds_spent": review.seconds_spent,
            "model_hidden": review.model_hidden,
            "decision_status": decision.status,
            "final_outcome": decision.final_outcome,
        }
        return Response(body, status=status.HTTP_201_CREATED)


def _valid_data(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class ReviewTaskReleaseApi(APIView):
    """Give a task you hold back to the queue."""

    permission_classes = [role_permission(*REVIEWERS)]

    @extend_schema(request=None, responses=TaskOut)
    def post(self, request: Request, task_id: int) -> Response:
        task = services.task_release(task_id=task_id, reviewer=request.user)
        return _task_response_any(request, task)


def _task_response_any(request: Request, task) -> Response:
    """A task the caller no longer holds, shown as a senior would see it (nothing is hidden
    that they have not already seen)."""
    task.refresh_from_db()
    data = selectors.task_data(task, request.user)
    data["decision"] = {"id": task.decision_id}
    return Response(data)


class ReviewTaskRenewApi(APIView):
    """Extend the lease on a task you are working on."""

    permission_classes = [role_permission(*REVIEWERS)]

    @extend_schema(request=None, responses=TaskOut)
    def post(self, request: Request, task_id: int) -> Response:
        task = services.task_renew(task_id=task_id, reviewer=request.user)
        return _task_response(request, task)


class ReviewTaskEscalateApi(APIView):
    """Hand a task you hold to a senior reviewer, with a note; returns the senior's new task (or
    your closed task, when there is nothing for a senior to settle). 409 when the decision is
    already final or your lease was lost."""

    permission_classes = [role_permission(*REVIEWERS)]

    class EscalateSerializer(serializers.Serializer):
        note = serializers.CharField(allow_blank=True, max_length=5000)

    @extend_schema(request=EscalateSerializer, responses={201: TaskOut})
    def post(self, request: Request, task_id: int) -> Response:
        data = _valid_data(self.EscalateSerializer, request.data)
        task = services.task_escalate(task_id=task_id, reviewer=request.user, note=data["note"])
        data = selectors.task_data(task, request.user)
        data["decision"] = {"id": task.decision_id}
        return Response(data, status=status.HTTP_201_CREATED)


class GoldMarkApi(APIView):
    """Mark a decision's known correct outcome (its model's owner); it is served to `copies`
    reviewers like any task and their accuracy is reported."""

    permission_classes = [role_permission(r.MODEL_OWNER)]

    class GoldSerializer(serializers.Serializer):
        outcome = serializers.CharField()
        copies = serializers.IntegerField(default=1)
        note = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    @extend_schema(
        request=GoldSerializer,
        responses={
            201: inline_serializer(
                "GoldOut",
                {"decision": serializers.IntegerField(), "outcome": serializers.CharField()},
            )
        },
    )
    def post(self, request: Request, decision_id: int) -> Response:
        decision = get_object_or_404(selectors.decisions_visible_to(request.user), pk=decision_id)
        data = _valid_data(self.GoldSerializer, request.data)
        gold = services.gold_mark(decision=decision, actor=request.user, **data)
        return Response(
            {"decision": decision.pk, "outcome": gold.outcome}, status=status.HTTP_201_CREATED
        )


class ReviewStatsApi(APIView):
    """Per reviewer, over the reviews of the last `days` days (90 by default): reviews, override
    rate, median seconds, Cohen's kappa with other reviewers on double-reviewed decisions,
    accuracy on gold items, automation-bias flag. Gold answers count only towards accuracy."""

    permission_classes = [role_permission(r.SENIOR_REVIEWER, r.AUDITOR)]

    class StatsOut(serializers.Serializer):
        reviewer = serializers.CharField()
        reviews = serializers.IntegerField()
        override_rate = serializers.FloatField(allow_null=True)
        median_seconds = serializers.FloatField(allow_null=True)
        double_reviewed = serializers.IntegerField()
        kappa = serializers.FloatField(allow_null=True)
        gold_reviews = serializers.IntegerField()
        gold_accuracy = serializers.FloatField(allow_null=True)
        automation_bias = serializers.BooleanField()

    @extend_schema(
        parameters=[OpenApiParameter("days", int, description=DAYS_HELP)],
        responses=StatsOut(many=True),
    )
    def get(self, request: Request) -> Response:
        since = stats_since(request.query_params.get("days"))
        return Response([s.as_dict() for s in reviewer_stats(since=since)])
