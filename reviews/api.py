"""REST API of decisions: /api/v1/decisions/..."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.fields import empty
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.api import READERS as PROOF_READERS
from audit.api import DecisionProofOut, ProofEventOut
from audit.services import viewed
from core import roles as r
from core.errors import forbidden
from core.pagination import CursorPagination
from core.permissions import role_permission
from reviews import selectors, services
from reviews.models import REASONS, Decision, Review, ReviewTask
from reviews.stats import DAYS_HELP, MAX_DAYS, reviewer_stats, stats_since

READERS = (r.AUDITOR, r.SENIOR_REVIEWER, r.MODEL_OWNER, r.MODEL_SERVICE)


class DecisionInSerializer(serializers.Serializer):
    """One prediction. Without outcome and confidence, Oversight scores it with the champion."""

    model = serializers.CharField(help_text="the registered model's name")
    version = serializers.IntegerField(required=False, help_text="a version number to score with")
    external_id = serializers.CharField(
        max_length=200, help_text="idempotency key, unique per model"
    )
    subject_ref = serializers.CharField(max_length=200, help_text="pseudonymous subject reference")
    features = serializers.DictField(
        help_text="one value per feature of the model's schema: every required feature, each "
        "within its type and range (GET /api/v1/models/{name}/ lists them)"
    )
    groups = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="protected attributes, kept apart from features",
    )
    outcome = serializers.CharField(required=False, help_text="the client's own outcome")
    confidence = serializers.FloatField(required=False, help_text="the client's own confidence")
    explanation = serializers.DictField(required=False, help_text="the client's own explanation")


class SeenOut(serializers.Serializer):
    """Renders what a selector gives a viewer (reviews.selectors.decision_seen, task_seen): an
    optional field whose key the selector left out, because the viewer may not see it, is
    absent from the response, not null."""

    def to_representation(self, instance):
        data = super().to_representation(instance)
        return {name: value for name, value in data.items() if self._given(name, instance)}

    def _given(self, name: str, instance) -> bool:
        field = self.fields[name]
        return name in instance or field.required or field.default is not empty


class TaskRefOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ReviewTask.Kind.choices)
    state = serializers.ChoiceField(choices=ReviewTask.State.choices)


HIDDEN = "absent while the model's answer is hidden from you (blind review)"


class DecisionOut(SeenOut):
    """A decision as the caller may see it (reviews.selectors.decision_seen)."""

    id = serializers.IntegerField()
    model = serializers.CharField()
    model_version = serializers.IntegerField(allow_null=True)
    external_id = serializers.CharField()
    subject_ref = serializers.CharField()
    status = serializers.ChoiceField(choices=Decision.Status.choices)
    scored_by = serializers.ChoiceField(choices=Decision.ScoredBy.choices)
    features = serializers.DictField()
    groups = serializers.DictField(
        child=serializers.CharField(),
        allow_null=True,
        default=None,
        help_text="protected attributes; null for roles that may not see them",
    )
    model_outcome = serializers.CharField(required=False, help_text=HIDDEN)
    confidence = serializers.FloatField(required=False, help_text=HIDDEN)
    probabilities = serializers.DictField(
        child=serializers.FloatField(), required=False, help_text=HIDDEN
    )
    margin = serializers.FloatField(required=False, allow_null=True, help_text=HIDDEN)
    routed = serializers.BooleanField()
    routing = serializers.DictField(
        help_text="reasons and the conditions tested; under blind review only the reasons and "
        "the names of the high-stakes rules that do not test the model's answer"
    )
    explanation = serializers.JSONField(required=False, help_text=HIDDEN)
    final_outcome = serializers.CharField(required=False, allow_blank=True, help_text=HIDDEN)
    finalized_by = serializers.CharField(allow_blank=True)
    finalized_at = serializers.DateTimeField(allow_null=True)
    received_at = serializers.DateTimeField()
    tasks = TaskRefOut(many=True)
    model_hidden = serializers.BooleanField(
        required=False, help_text="true when the model's answer is hidden from you"
    )


def _with_related(qs: QuerySet[Decision]) -> QuerySet[Decision]:
    return (
        qs.select_related("model", "model_version")
        .defer("model_version__artifact")  # select_related would otherwise read the artifact
        .prefetch_related("protected", "tasks")
    )


def _out(request: Request, decisions, *, many: bool = False) -> dict | list:
    """Decisions as the caller may see them (the blind ones found in one query for a page)."""
    rows = list(decisions) if many else [decisions]
    data = DecisionOut(selectors.decisions_seen(request.user, rows), many=True).data
    return data if many else data[0]


class DecisionCreateApi(APIView):
    permission_classes = [role_permission(*READERS)]

    class FilterSerializer(serializers.Serializer):
        """Every filter is optional; an empty value (`?until=`) is the same as leaving it out."""

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
        responses=DecisionOut(many=True),
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
        responses={201: DecisionOut, 200: DecisionOut},
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


class BulkItemOut(SeenOut):
    index = serializers.IntegerField(help_text="the item's place in the request")
    id = serializers.IntegerField()
    created = serializers.BooleanField(help_text="false when the external_id was already stored")
    status = serializers.ChoiceField(choices=Decision.Status.choices)
    model_outcome = serializers.CharField(required=False, help_text=HIDDEN)
    confidence = serializers.FloatField(required=False, help_text=HIDDEN)
    routed = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.CharField())
    final_outcome = serializers.CharField(required=False, allow_blank=True, help_text=HIDDEN)


class BulkResultOut(serializers.Serializer):
    created = serializers.IntegerField()
    existing = serializers.IntegerField()
    items = BulkItemOut(many=True)


class BulkIn(serializers.Serializer):
    items = DecisionInSerializer(many=True)


def _bulk_item(result, seen: dict) -> dict:
    """One item of the bulk response as BulkItemOut renders it (the same keys, in its order,
    with its types), built directly: a serializer pass over 1,000 items cost more than
    everything else in the response. A test holds the two equal."""
    item = {
        "index": result.index,
        "id": seen["id"],
        "created": result.created,
        "status": str(seen["status"]),
    }
    if "model_outcome" in seen:
        item["model_outcome"] = _or_none(str, seen["model_outcome"])
    if "confidence" in seen:
        item["confidence"] = _or_none(float, seen["confidence"])
    item["routed"] = bool(seen["routed"])
    item["reasons"] = [str(reason) for reason in seen["routing"].get("reasons", [])]
    if "final_outcome" in seen:
        item["final_outcome"] = _or_none(str, seen["final_outcome"])
    return item


def _or_none(kind, value):
    return None if value is None else kind(value)


class DecisionBulkApi(APIView):
    permission_classes = [role_permission(r.MODEL_SERVICE)]

    @extend_schema(
        request=BulkIn,
        responses={201: BulkResultOut, 200: BulkResultOut},
    )
    def post(self, request: Request) -> Response:
        """Up to 1,000 predictions, all or nothing: one bad item is a 400 listing every bad
        item by index and field, and nothing is stored."""
        items = request.data.get("items") if isinstance(request.data, dict) else None
        results = services.decisions_ingest(items=items, actor=request.user)
        created = sum(result.created for result in results)
        decisions = [result.decision for result in results]
        seen = selectors.decisions_seen(request.user, decisions, tasks=False)
        body = {
            "created": created,
            "existing": len(results) - created,
            "items": [_bulk_item(result, one) for result, one in zip(results, seen, strict=True)],
        }
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(body, status=code)


class DecisionDetailApi(APIView):
    permission_classes = [role_permission(*READERS)]

    @extend_schema(responses=DecisionOut)
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


class DecisionProofEventOut(ProofEventOut):
    canonical = serializers.CharField(
        allow_null=True,
        help_text="the event's canonical JSON text; null when it is withheld (given to a "
        "service by leaf hash and proof only: events by staff or by the system)",
    )
    action = serializers.CharField(help_text="the event's action (from its canonical text)")
    actor = serializers.CharField(
        help_text="who did it: `service:…`, `person:…`, `system`, or `user:…` for auditors; "
        "for a service, a staff member is `staff:` and a pseudonym that stays the same across "
        "this service's proofs"
    )


class DecisionSeenProofOut(DecisionProofOut):
    events = DecisionProofEventOut(many=True)


class DecisionProofApi(APIView):
    """Every audit event of a decision with its inclusion proof against the latest checkpoint.
    Events logged after that checkpoint come with `proof: null` until the next one. A service
    is given the events of staff and of the system by leaf hash and proof only (`canonical:
    null`, as a person's receipt), under a pseudonym, and no reads; `python -m audit.verify`
    checks the file either way."""

    permission_classes = [role_permission(*PROOF_READERS)]

    @extend_schema(responses=DecisionSeenProofOut)
    def get(self, request: Request, decision_id: int) -> Response:
        decision = get_object_or_404(selectors.decisions_visible_to(request.user), pk=decision_id)
        sight = selectors.sights_of(request.user, [decision.pk])[decision.pk]
        log = selectors.decision_log(decision, sight, viewer=request.user)
        return Response(DecisionSeenProofOut(log).data)


# --- the review queue -------------------------------------------------------------------------

REVIEWERS = (r.REVIEWER,)


def _task_or_404(request: Request, task_id: int):
    task = selectors.task_for(request.user, task_id)
    if task is None:
        raise Http404("No such task.")
    return task


class CaseOut(SeenOut):
    """A task's decision: the case its reviewer works from, as the caller may see it through
    that task (reviews.selectors.decision_seen). A task handed back names its decision only."""

    id = serializers.IntegerField()
    model = serializers.CharField(required=False)
    model_version = serializers.IntegerField(required=False, allow_null=True)
    external_id = serializers.CharField(required=False)
    subject_ref = serializers.CharField(required=False)
    received_at = serializers.DateTimeField(required=False)
    features = serializers.DictField(required=False)
    routing = serializers.DictField(
        required=False,
        help_text="why it is in the queue; under blind review only the reasons and the names "
        "of the high-stakes rules that do not test the model's answer",
    )
    model_hidden = serializers.BooleanField(required=False)
    model_outcome = serializers.CharField(required=False, help_text=HIDDEN)
    confidence = serializers.FloatField(required=False, help_text=HIDDEN)
    probabilities = serializers.DictField(
        child=serializers.FloatField(), required=False, help_text=HIDDEN
    )
    explanation = serializers.JSONField(required=False, help_text=HIDDEN)


class TaskOut(serializers.Serializer):
    """A review task and its decision as the caller may see it (reviews.selectors.task_seen)."""

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ReviewTask.Kind.choices)
    state = serializers.ChoiceField(choices=ReviewTask.State.choices)
    priority = serializers.IntegerField()
    due_at = serializers.DateTimeField()
    claimed_at = serializers.DateTimeField(allow_null=True)
    lease_expires_at = serializers.DateTimeField(allow_null=True)
    blind = serializers.BooleanField()
    note = serializers.CharField(allow_blank=True)
    assignee = serializers.CharField(allow_null=True)
    decision = CaseOut()


def _task_response(
    request: Request, task, *, code: int = status.HTTP_200_OK, handed_back: bool = False
) -> Response:
    """The task as the caller may see it now. A task the caller has just handed back (released,
    escalated) names its decision only: they no longer hold it, and a reviewer who may be given
    it again must not see more than they saw."""
    if handed_back:
        task.refresh_from_db()
        data = selectors.task_seen(task, request.user, sight=selectors.REFERENCE)
    else:
        data = selectors.task_seen(_task_or_404(request, task.pk), request.user)
    return Response(TaskOut(data).data, status=code)


class ReviewTaskListApi(APIView):
    """The tasks you hold now."""

    permission_classes = [role_permission(*REVIEWERS)]

    @extend_schema(responses=TaskOut(many=True))
    def get(self, request: Request) -> Response:
        seen = [
            selectors.task_seen(task, request.user) for task in selectors.my_claims(request.user)
        ]
        return Response(TaskOut(seen, many=True).data)


class ReviewTaskClaimApi(APIView):
    """Claim the next task: highest priority, then earliest due. 204 when nothing is eligible.
    The body's filters are optional: an empty body, `{}` or `null` claims from the whole
    queue."""

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
        return Response(TaskOut(selectors.task_seen(task, request.user)).data)


class ReviewOut(SeenOut):
    id = serializers.IntegerField()
    task = serializers.IntegerField()
    verdict = serializers.ChoiceField(choices=Review.Verdict.choices)
    outcome = serializers.CharField()
    agrees_with_model = serializers.BooleanField()
    model_outcome = serializers.CharField(
        required=False, help_text="the model's answer, shown once you answered"
    )
    seconds_spent = serializers.FloatField()
    model_hidden = serializers.BooleanField(help_text="whether you answered blind")
    decision_status = serializers.ChoiceField(choices=Decision.Status.choices)
    final_outcome = serializers.CharField(required=False, allow_blank=True)


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

    @extend_schema(request=AnswerSerializer, responses={201: ReviewOut})
    def post(self, request: Request, task_id: int) -> Response:
        data = _valid_data(self.AnswerSerializer, request.data)
        review = services.review_submit(task_id=task_id, reviewer=request.user, **data)
        # Seen through its task, the decision shows no tasks and no protected attributes:
        # what decision_seen reads is the decision with its model and version (one query).
        decision = (
            Decision.objects.select_related("model", "model_version")
            .defer("model_version__artifact")
            .get(pk=review.decision_id)
        )
        task = review.task
        task.decision = decision  # the same row (a task's decision never changes), as committed
        # Answered: the model's answer is the reviewer's to see now (task_sight says so).
        sight = selectors.task_sight(task, request.user)
        seen = selectors.decision_seen(decision, sight, task=task)
        body = {
            "id": review.pk,
            "task": review.task_id,
            "verdict": review.verdict,
            "outcome": review.outcome,
            "agrees_with_model": review.agrees_with_model,
            "seconds_spent": review.seconds_spent,
            "model_hidden": review.model_hidden,
            "decision_status": seen["status"],
            **{key: seen[key] for key in ("model_outcome", "final_outcome") if key in seen},
        }
        return Response(ReviewOut(body).data, status=status.HTTP_201_CREATED)


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
        return _task_response(request, task, handed_back=True)


class ReviewTaskRenewApi(APIView):
    """Extend the lease on a task you are working on."""

    permission_classes = [role_permission(*REVIEWERS)]

    @extend_schema(request=None, responses=TaskOut)
    def post(self, request: Request, task_id: int) -> Response:
        task = services.task_renew(task_id=task_id, reviewer=request.user)
        return _task_response(request, task)


class ReviewTaskEscalateApi(APIView):
    """Hand a task you hold to a senior reviewer, with a note; returns the senior's task (a
    known-answer copy opens a known-answer adjudication, indistinguishable to you). 409 when
    the decision is already final or your lease was lost."""

    permission_classes = [role_permission(*REVIEWERS)]

    class EscalateSerializer(serializers.Serializer):
        note = serializers.CharField(allow_blank=True, max_length=5000)

    @extend_schema(request=EscalateSerializer, responses={201: TaskOut})
    def post(self, request: Request, task_id: int) -> Response:
        data = _valid_data(self.EscalateSerializer, request.data)
        task = services.task_escalate(task_id=task_id, reviewer=request.user, note=data["note"])
        return _task_response(request, task, code=status.HTTP_201_CREATED, handed_back=True)


class GoldMarkApi(APIView):
    """Mark a decision's known correct outcome (its model's owner); it is served to `copies`
    reviewers like any task and their accuracy is reported."""

    permission_classes = [role_permission(r.MODEL_OWNER)]

    class GoldSerializer(serializers.Serializer):
        outcome = serializers.CharField()
        copies = serializers.IntegerField(default=1)
        note = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    class GoldOut(serializers.Serializer):
        decision = serializers.IntegerField()
        outcome = serializers.CharField()

    @extend_schema(request=GoldSerializer, responses={201: GoldOut})
    def post(self, request: Request, decision_id: int) -> Response:
        decision = get_object_or_404(selectors.decisions_visible_to(request.user), pk=decision_id)
        data = _valid_data(self.GoldSerializer, request.data)
        gold = services.gold_mark(decision=decision, actor=request.user, **data)
        body = self.GoldOut({"decision": decision.pk, "outcome": gold.outcome}).data
        return Response(body, status=status.HTTP_201_CREATED)


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
        parameters=[
            OpenApiParameter(
                "days",
                {"type": "integer", "minimum": 1, "maximum": MAX_DAYS},
                description=DAYS_HELP,
            )
        ],
        responses=StatsOut(many=True),
    )
    def get(self, request: Request) -> Response:
        since = stats_since(request.query_params.get("days"))
        rows = [s.as_dict() for s in reviewer_stats(since=since)]
        return Response(self.StatsOut(rows, many=True).data)
