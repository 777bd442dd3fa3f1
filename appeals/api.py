"""REST API of notices, access codes and appeals.

/api/v1/decisions/{id}/access-code/, …/notice/ and …/appeal/ (the model's services, and
staff for the notice); /api/v1/appeals/ (seniors and auditors; a service sees its models')."""

from __future__ import annotations

import base64
import binascii

from django.conf import settings
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from appeals import codes, selectors, services
from appeals.models import Appeal
from appeals.notice import notice_for, portal_url
from audit.services import viewed
from core import roles as r
from core.pagination import CursorPagination
from core.permissions import role_permission
from reviews.models import Decision
from reviews.selectors import as_posed, decisions_posing_for, decisions_visible_to

DECISION_READERS = (r.AUDITOR, r.SENIOR_REVIEWER, r.MODEL_OWNER, r.MODEL_SERVICE)


def _decision(request: Request, decision_id: int) -> Decision:
    decision = (
        decisions_visible_to(request.user)
        .select_related("model", "model_version")
        .defer("model_version__artifact")
        .filter(pk=decision_id)
        .first()
    )
    if decision is None:
        raise Http404("No such decision.")
    return decision


def _valid(serializer_class: type[serializers.Serializer], data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# --- access codes ----------------------------------------------------------------------------


class AccessCodeOut(serializers.Serializer):
    reference = serializers.CharField(help_text="the decision's public reference")
    access_code = serializers.CharField(help_text="shown once: only a slow hash is kept")
    portal_url = serializers.CharField(help_text="where the person signs in")
    expires_at = serializers.DateTimeField()


class AccessCodeApi(APIView):
    """A new access code for the person the decision is about, returned once (send it to
    them by your own channel: letter, e-mail, app). It replaces the one before."""

    permission_classes = [role_permission(r.MODEL_SERVICE)]

    @extend_schema(request=None, responses={201: AccessCodeOut})
    def post(self, request: Request, decision_id: int) -> Response:
        decision = _decision(request, decision_id)
        issued = services.access_code_issue(decision=decision, actor=request.user)
        body = {
            "reference": issued.reference,
            "access_code": issued.access_code,
            "portal_url": portal_url(),
            "expires_at": issued.expires_at,
        }
        return Response(AccessCodeOut(body).data, status=status.HTTP_201_CREATED)


# --- the notice ------------------------------------------------------------------------------


class HowDecidedOut(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=["pending", "model", "appeal", "person_confirmed", "person_changed"]
    )
    automated = serializers.BooleanField(help_text="whether automated means were used")
    reviewed_by_a_person = serializers.BooleanField()
    text = serializers.CharField()


class FactorOut(serializers.Serializer):
    feature = serializers.CharField()
    label = serializers.CharField()
    value = serializers.CharField(help_text="the person's own value, formatted")


class ReasonsOut(serializers.Serializer):
    source = serializers.ChoiceField(
        choices=["none", "model", "reviewer", "appeal"],
        help_text="whose reasons: the model's only when the outcome is the model's",
    )
    text = serializers.CharField()
    factors = FactorOut(many=True)


class ChangeOut(serializers.Serializer):
    feature = serializers.CharField()
    text = serializers.CharField()
    outside_training_data = serializers.BooleanField()
    training_data = serializers.CharField(help_text="what training covered, in words, if known")


class DataUsedOut(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    value = serializers.CharField()
    description = serializers.CharField()


class AppealProgressOut(serializers.Serializer):
    status = serializers.ChoiceField(choices=Appeal.Status.choices)
    status_text = serializers.CharField()
    filed_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField()
    review_started_at = serializers.DateTimeField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    withdrawn_at = serializers.DateTimeField(allow_null=True)
    result = serializers.CharField(allow_null=True)
    outcome_before = serializers.CharField()
    outcome_after = serializers.CharField(allow_null=True)
    reasons = serializers.CharField(allow_null=True)
    corrected_features = serializers.ListField(child=serializers.CharField())
    attachment_given = serializers.BooleanField()


class AppealSectionOut(serializers.Serializer):
    how = serializers.CharField()
    portal_url = serializers.CharField()
    sla_days = serializers.IntegerField()
    can_appeal = serializers.BooleanField()
    until = serializers.DateTimeField(allow_null=True)
    come_back = serializers.DateTimeField(required=False, help_text="when a review is due")
    message = serializers.CharField(allow_blank=True)
    filed = AppealProgressOut(allow_null=True)


class NoticeOut(serializers.Serializer):
    reference = serializers.CharField()
    model = serializers.CharField()
    received_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=Decision.Status.choices)
    outcome = serializers.CharField(allow_null=True)
    favourable = serializers.BooleanField(allow_null=True)
    how_decided = HowDecidedOut()
    reasons = ReasonsOut()
    what_would_change = ChangeOut(many=True)
    data_used = DataUsedOut(many=True)
    ground = serializers.CharField()
    appeal = AppealSectionOut()
    contact = serializers.CharField()


class NoticeApi(APIView):
    """The notice the person receives (and reads on the portal), as data."""

    permission_classes = [role_permission(*DECISION_READERS)]

    @extend_schema(responses=NoticeOut)
    def get(self, request: Request, decision_id: int) -> Response:
        decision = _decision(request, decision_id)
        access = services.reference_ensure(decision=decision, actor=request.user)
        viewed(
            actor=request.user,
            action="notice.viewed",
            object_type="decision",
            object_id=decision.pk,
        )
        if decisions_posing_for(request.user, [decision.pk]):
            # A known-answer item this senior may be served: its notice as what it poses as
            # (awaiting review), not its outcome, which would tell the check and its answer.
            decision = as_posed(decision)
        return Response(NoticeOut(notice_for(decision, access)).data)


# --- appeals ---------------------------------------------------------------------------------


class AttachmentOut(serializers.Serializer):
    name = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    download_url = serializers.CharField(
        allow_null=True, help_text="for seniors and auditors (a download, never inline)"
    )


class AppealTaskOut(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()


class AppealOut(serializers.ModelSerializer):
    """An appeal. `decided_by` and the attachment's download link are for seniors and
    auditors; a model service gets null there."""

    decision = serializers.IntegerField(source="decision_id")
    model = serializers.CharField(source="decision.model.name")
    reference = serializers.SerializerMethodField()
    overdue = serializers.SerializerMethodField()
    result = serializers.SerializerMethodField()
    attachment = serializers.SerializerMethodField()
    task = serializers.SerializerMethodField()
    decided_by = serializers.SerializerMethodField()

    class Meta:
        model = Appeal
        fields = [
            "id",
            "decision",
            "model",
            "reference",
            "status",
            "filed_via",
            "filed_at",
            "due_at",
            "overdue",
            "grounds",
            "corrections",
            "contact_email",
            "attachment",
            "task",
            "review_started_at",
            "result",
            "outcome_before",
            "outcome_after",
            "reasons",
            "decided_at",
            "decided_by",
            "withdrawn_at",
        ]

    def get_reference(self, appeal: Appeal) -> str:
        return codes.show_reference(appeal.decision.access.reference)

    def get_overdue(self, appeal: Appeal) -> bool:
        return appeal.is_open and appeal.due_at < timezone.now()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_result(self, appeal: Appeal) -> str | None:
        """upheld or overturned once decided"""
        return appeal.result or None

    @extend_schema_field(AttachmentOut(allow_null=True))
    def get_attachment(self, appeal: Appeal) -> dict | None:
        if not appeal.attachment_path:
            return None
        staff = self.context.get("staff")
        return {
            "name": appeal.attachment_name,
            "content_type": appeal.attachment_type,
            "size": appeal.attachment_size,
            "sha256": appeal.attachment_sha256,
            "download_url": reverse("appeals:attachment", args=[appeal.pk]) if staff else None,
        }

    @extend_schema_field(AppealTaskOut)
    def get_task(self, appeal: Appeal) -> dict:
        return {"id": appeal.task_id, "state": appeal.task.state}

    def get_decided_by(self, appeal: Appeal) -> str | None:
        """the senior's username, for seniors and auditors only"""
        if not self.context.get("staff") or appeal.decided_by_id is None:
            return None
        return appeal.decided_by.username


def _out(request: Request, appeals, *, many: bool = False):
    context = {"staff": selectors.may_read_attachment(request.user)}
    return AppealOut(appeals, many=many, context=context).data


class AttachmentIn(serializers.Serializer):
    filename = serializers.CharField(max_length=200, required=False, allow_blank=True)
    content_base64 = serializers.CharField(
        help_text="the file, base64: a PDF, PNG or JPEG of at most 5 MB"
    )


class AppealIn(serializers.Serializer):
    grounds = serializers.CharField(
        allow_blank=True, help_text="why the decision is wrong: 20 to 5,000 characters"
    )
    corrections = serializers.DictField(
        required=False, help_text='facts that are wrong, per feature: {"income": 72}'
    )
    contact_email = serializers.CharField(required=False, allow_blank=True, max_length=254)
    attachment = AttachmentIn(required=False, allow_null=True)


def _decoded(data: dict | None) -> tuple[tuple[str, bytes] | None, dict[str, list[str]]]:
    """(the file's name and bytes, or None; errors naming the field)."""
    if not data:
        return None, {}
    text = data["content_base64"]
    # Refused before decoding: base64 takes 4 characters for 3 bytes.
    if len(text) > (settings.APPEAL_ATTACHMENT_MAX_BYTES + 2) // 3 * 4 + 4:
        return None, {"attachment": ["is over 5 MB"]}
    try:
        return (data.get("filename", ""), base64.b64decode(text, validate=True)), {}
    except (binascii.Error, ValueError):
        return None, {"attachment.content_base64": ["is not base64"]}


class DecisionAppealApi(APIView):
    """File the person's appeal on their behalf (the decision's model service): the same
    fields as the portal's form. One appeal per decision; only once the decision is final
    (409 `not_final`, with `come_back`) and within the model's appeal window (409
    `window_closed`)."""

    permission_classes = [role_permission(r.MODEL_SERVICE)]

    @extend_schema(request=AppealIn, responses={201: AppealOut})
    def post(self, request: Request, decision_id: int) -> Response:
        decision = _decision(request, decision_id)
        data = _valid(AppealIn, request.data)
        attachment, errors = _decoded(data.get("attachment"))
        given = (data["grounds"], data.get("corrections"), data.get("contact_email", ""))
        if errors:  # named with every other bad field
            services.check_input(decision, *given, errors=errors)
        appeal = services.appeal_file(
            decision=decision,
            grounds=data["grounds"],
            corrections=data.get("corrections"),
            contact_email=data.get("contact_email", ""),
            attachment=attachment,
            via=Appeal.Via.SERVICE,
            filed_by=request.user,
            actor=request.user,
        )
        appeal = selectors.appeals_visible_to(request.user).get(pk=appeal.pk)
        return Response(_out(request, appeal), status=status.HTTP_201_CREATED)


APPEAL_READERS = (r.SENIOR_REVIEWER, r.AUDITOR, r.MODEL_SERVICE)


class AppealListApi(APIView):
    """Appeals you may see, newest first; filter by model, status and overdue (still open
    past the answer's due date). Cursor-paginated."""

    permission_classes = [role_permission(*APPEAL_READERS)]

    class FilterSerializer(serializers.Serializer):
        model = serializers.CharField(required=False)
        status = serializers.ChoiceField(choices=Appeal.Status.choices, required=False)
        overdue = serializers.BooleanField(required=False, allow_null=True, default=None)

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
        responses=AppealOut(many=True),
    )
    def get(self, request: Request) -> Response:
        filters = _valid(self.FilterSerializer, request.query_params)
        appeals = selectors.appeals_filtered(request.user, **filters).select_related("decided_by")
        paginator = self.Pagination()
        page = paginator.paginate_queryset(appeals, request, view=self)
        return paginator.get_paginated_response(_out(request, page, many=True))


class AppealDetailApi(APIView):
    permission_classes = [role_permission(*APPEAL_READERS)]

    @extend_schema(responses=AppealOut)
    def get(self, request: Request, appeal_id: int) -> Response:
        appeal = selectors.appeals_visible_to(request.user).filter(pk=appeal_id).first()
        if appeal is None:
            raise Http404("No such appeal.")
        viewed(
            actor=request.user,
            action="appeal.viewed",
            object_type="decision",
            object_id=appeal.decision_id,
            appeal=appeal.pk,
        )
        return Response(_out(request, appeal))


class AppealDecisionApi(APIView):
    """Decide the appeal whose task you hold (senior reviewers who took no part in the
    decision): {"result": "upheld"} or {"result": "overturned", "outcome": …}, with `reasons`
    for the person. 409 `lease_lost` when you do not hold its task."""

    permission_classes = [role_permission(r.SENIOR_REVIEWER)]

    class AppealResultIn(serializers.Serializer):
        result = serializers.ChoiceField(choices=["upheld", "overturned"])
        outcome = serializers.CharField(required=False, allow_blank=True)
        reasons = serializers.CharField(allow_blank=True, help_text="for the person: required")

    @extend_schema(request=AppealResultIn, responses=AppealOut)
    def post(self, request: Request, appeal_id: int) -> Response:
        if not selectors.appeals_visible_to(request.user).filter(pk=appeal_id).exists():
            raise Http404("No such appeal.")
        data = _valid(self.AppealResultIn, request.data)
        appeal = services.appeal_resolve(
            appeal_id=appeal_id,
            senior=request.user,
            result=data["result"],
            outcome=data.get("outcome") or None,
            reasons=data["reasons"],
        )
        appeal = selectors.appeals_visible_to(request.user).get(pk=appeal.pk)
        return Response(_out(request, appeal))
