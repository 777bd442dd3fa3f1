"""REST API of the model registry: /api/v1/models/..."""

from __future__ import annotations

import json
from collections.abc import Mapping

from django.contrib.auth.models import User
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import parsers, renderers, serializers, status
from rest_framework.fields import empty
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import parsers as parsing
from core import roles as r
from core.errors import JSONErrors, forbidden, invalid
from core.permissions import role_permission
from models_registry import selectors, services
from models_registry.models import MLModel, ModelVersion, RoutingPolicy

READERS = (r.REVIEWER, r.AUDITOR, r.MODEL_OWNER, r.MODEL_SERVICE)
WRITERS = (r.MODEL_OWNER, r.MODEL_SERVICE)


def _model_or_404(user: User, name: str) -> MLModel:
    return selectors.model_for(user, name)


def _owned_or_403(user: User, name: str) -> MLModel:
    model = _model_or_404(user, name)
    if model.owner_id != user.pk:
        raise forbidden(f"Only the owner of {model.name} may do this.")
    return model


class StrictSerializer(serializers.Serializer):
    """Refuses keys that are not its fields, so that a misspelt setting is an error rather than
    a silent no-op. Read-only fields may be sent back as they were read; they are ignored."""

    unknown_message = "is not a field here"

    def to_internal_value(self, data):
        unknown = self._unknown_keys(data)
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            detail = exc.detail if isinstance(exc.detail, dict) else {}
            raise serializers.ValidationError({**unknown, **detail}) from None
        if unknown:
            raise serializers.ValidationError(unknown)
        return value

    def _unknown_keys(self, data) -> dict[str, list[str]]:
        if not isinstance(data, Mapping):
            return {}
        writable = [name for name, field in self.fields.items() if not field.read_only]
        message = f"{self.unknown_message}; fields are {', '.join(writable)}"
        return {key: [message] for key in sorted(set(data) - set(self.fields), key=str)}


class FeatureSpecSerializer(StrictSerializer):
    unknown_message = "is not a feature field"

    name = serializers.CharField(max_length=64)
    type = serializers.ChoiceField(
        choices=["number", "integer", "boolean", "category"], default="number"
    )
    min = serializers.FloatField(required=False)
    max = serializers.FloatField(required=False)
    choices = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    required = serializers.BooleanField(default=True)
    actionable = serializers.BooleanField(default=False)
    description = serializers.CharField(default="", allow_blank=True, max_length=1000)
    unit = serializers.CharField(default="", allow_blank=True, max_length=40)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        # Keep whole-number bounds whole, so an integer feature's range stays integral.
        for bound in ("min", "max"):
            if bound in value and float(value[bound]).is_integer():
                value[bound] = int(value[bound])
        return value


class CardSerializer(StrictSerializer):
    unknown_message = "is not a model card field"

    intended_use = serializers.CharField(default="", allow_blank=True)
    out_of_scope = serializers.CharField(default="", allow_blank=True)
    limitations = serializers.CharField(default="", allow_blank=True)
    training_data = serializers.CharField(default="", allow_blank=True)
    contact = serializers.CharField(default="", allow_blank=True)
    notice_ground = serializers.CharField(
        default="",
        allow_blank=True,
        help_text="the ground of the decisions (law, contract, policy), quoted in the affected "
        "person's notice",
    )


class PolicySerializer(StrictSerializer):
    unknown_message = "is not a policy field"

    version = serializers.IntegerField(read_only=True)
    confidence_threshold = serializers.FloatField(required=False)
    high_stakes = serializers.JSONField(required=False)
    random_audit_rate = serializers.FloatField(required=False, help_text="percent, 0-100")
    active_learning_budget = serializers.IntegerField(required=False)
    active_learning_max_margin = serializers.FloatField(required=False)
    reviewers_required = serializers.IntegerField(required=False)
    blind_review = serializers.BooleanField(required=False)
    sla_hours = serializers.IntegerField(required=False)
    review_all = serializers.BooleanField(required=False)
    retrain_min_new_labels = serializers.IntegerField(
        required=False, help_text="retrain once this many new labels arrived; 0 = only on request"
    )
    appeal_window_days = serializers.IntegerField(
        required=False, help_text="days after a decision is final that it may be appealed"
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    in_words = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(read_only=True)

    def get_in_words(self, policy: RoutingPolicy) -> list[str]:
        return selectors.policy_in_words(policy)


class NoteField(serializers.CharField):
    """The change note: required (and documented so), but its absence is reported with every
    other bad setting (by the service, or beside the serializer's errors), not alone first."""

    def validate_empty_values(self, data):
        if data is empty:
            return True, ""
        return super().validate_empty_values(data)


class PolicyChangeSerializer(PolicySerializer):
    """A change of the routing policy: the settings that change, and why (required)."""

    note = NoteField(
        max_length=2000,
        allow_blank=True,
        help_text="why the policy changes: required, kept in the audit trail with the change",
    )


class DatasetOutSerializer(serializers.Serializer):
    split = serializers.ChoiceField(choices=["train", "test"])
    sha256 = serializers.CharField()
    rows = serializers.IntegerField()
    size_bytes = serializers.IntegerField()
    columns = serializers.ListField(child=serializers.CharField())


class VersionOutSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    created_by = serializers.CharField(source="created_by.username", default=None)
    promoted_by = serializers.CharField(source="promoted_by.username", default=None)
    parent = serializers.IntegerField(source="parent.number", default=None)
    training_data = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "model",
            "number",
            "status",
            "sha256",
            "size_bytes",
            "estimator",
            "explainer",
            "baseline",
            "drift_baseline",
            "training_ranges",
            "metrics",
            "label_count",
            "parent",
            "provenance",
            "training_data",
            "promotion_justification",
            "promotion_failed_checks",
            "data_window_start",
            "data_window_end",
            "notes",
            "created_by",
            "created_at",
            "promoted_by",
            "promoted_at",
            "retired_at",
        ]

    @extend_schema_field(DatasetOutSerializer(many=True))
    def get_training_data(self, version: ModelVersion) -> list[dict]:
        return DatasetOutSerializer(version.datasets.all(), many=True).data


class ModelOutSerializer(serializers.ModelSerializer):
    card = CardSerializer()
    owner = serializers.CharField(source="owner.username", default=None)
    champion = serializers.SerializerMethodField()
    versions = serializers.SerializerMethodField()
    policy = serializers.SerializerMethodField()

    class Meta:
        model = MLModel
        fields = [
            "name",
            "task",
            "labels",
            "favourable_label",
            "features",
            "protected_attributes",
            "card",
            "owner",
            "champion",
            "versions",
            "policy",
            "created_at",
        ]

    def get_champion(self, model: MLModel) -> int | None:
        return next((v.number for v in model.versions.all() if v.status == "champion"), None)

    def get_versions(self, model: MLModel) -> list[dict]:
        return [
            {"number": v.number, "status": v.status, "sha256": v.sha256}
            for v in model.versions.all()
        ]

    def get_policy(self, model: MLModel) -> dict:
        return PolicySerializer(selectors.current_policy(model)).data


def _models(qs: QuerySet[MLModel]) -> QuerySet[MLModel]:
    return qs.select_related("owner").prefetch_related("versions", "policies")


class ModelListApi(APIView):
    """List the models you may see, or register one (model owners and model services)."""

    permission_classes = [role_permission(*READERS)]

    class ModelRegisterSerializer(StrictSerializer):
        unknown_message = "is not a field of a model registration"

        name = serializers.SlugField(max_length=100)
        task = serializers.CharField(default=MLModel.Task.BINARY)
        labels = serializers.ListField(child=serializers.CharField(max_length=100))
        favourable_label = serializers.CharField(max_length=100)
        features = FeatureSpecSerializer(many=True)
        protected_attributes = serializers.ListField(
            child=serializers.CharField(max_length=64), default=list
        )
        card = CardSerializer(required=False)
        owner = serializers.CharField(
            required=False,
            allow_null=True,
            max_length=150,
            help_text="a model service may name the owner (a model_owner); a model owner "
            "registering owns the model",
        )
        services = serializers.ListField(
            child=serializers.CharField(max_length=150),
            required=False,
            max_length=100,
            help_text="usernames of model services allowed to send decisions",
        )
        policy = PolicySerializer(required=False)

    @extend_schema(responses=ModelOutSerializer(many=True))
    def get(self, request: Request) -> Response:
        models = _models(selectors.models_visible_to(request.user))
        return Response(ModelOutSerializer(models, many=True).data)

    @extend_schema(request=ModelRegisterSerializer, responses={201: ModelOutSerializer})
    def post(self, request: Request) -> Response:
        if not r.has_role(request.user, *WRITERS):
            raise forbidden("Registering a model needs the model_owner or model_service role.")
        data = _valid(self.ModelRegisterSerializer, request.data)
        owner, granted = _people(data.get("owner"), data.get("services", []))
        policy = {k: v for k, v in data.get("policy", {}).items() if k != "note"}
        model = services.model_register(
            name=data["name"],
            task=data["task"],
            labels=data["labels"],
            favourable_label=data["favourable_label"],
            features=data["features"],
            protected_attributes=data["protected_attributes"],
            card=data.get("card"),
            owner=owner,
            services=granted,
            policy=policy,
            actor=request.user,
        )
        model = _models(MLModel.objects.filter(pk=model.pk)).get()
        return Response(ModelOutSerializer(model).data, status=status.HTTP_201_CREATED)


def _people(owner: str | None, services: list[str]) -> tuple[User | None, list[User]]:
    """The users named as owner and services; a 400 naming each username that is nobody's."""
    users = User.objects.in_bulk([*services, *([owner] if owner else [])], field_name="username")
    errors = {
        f"services.{index}": [f"there is no user named {name!r}"]
        for index, name in enumerate(services)
        if name not in users
    }
    if owner and owner not in users:
        errors["owner"] = [f"there is no user named {owner!r}"]
    if errors:
        raise invalid(errors)
    return (users[owner] if owner else None), [users[name] for name in services]


def _valid(serializer_class: type[serializers.Serializer], data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ModelDetailApi(APIView):
    permission_classes = [role_permission(*READERS)]

    @extend_schema(responses=ModelOutSerializer)
    def get(self, request: Request, name: str) -> Response:
        model = _model_or_404(request.user, name)
        return Response(ModelOutSerializer(_models(MLModel.objects.filter(pk=model.pk)).get()).data)


class MarkdownRenderer(renderers.BaseRenderer):
    media_type = "text/markdown"
    format = "md"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data.encode() if isinstance(data, str) else json.dumps(data).encode()


class ModelCardApi(JSONErrors, APIView):
    """The model card in Markdown: card text, versions with sha256 and metrics, the policy."""

    permission_classes = [role_permission(*READERS)]
    renderer_classes = [MarkdownRenderer, renderers.JSONRenderer]

    @extend_schema(responses={(200, "text/markdown"): OpenApiResponse(description="Markdown")})
    def get(self, request: Request, name: str) -> Response:
        model = _model_or_404(request.user, name)
        return Response(selectors.card_markdown(model), content_type="text/markdown; charset=utf-8")


class VersionListApi(APIView):
    """Versions of a model; upload a new one as a skops file (multipart field `artifact`)."""

    permission_classes = [role_permission(*READERS)]
    parser_classes = [parsers.MultiPartParser]

    class VersionUploadSerializer(StrictSerializer):
        unknown_message = "is not a field of a version upload"

        artifact = serializers.FileField(
            help_text="a skops file of a fitted scikit-learn classifier"
        )
        metrics = parsing.JSONField(
            required=False, help_text='{"overall": {...}, "by_group": {...}}'
        )
        baseline = parsing.JSONField(required=False, help_text="reference value per feature")
        drift_baseline = parsing.JSONField(
            required=False,
            help_text='training distribution in bins, for drift: {"features": {"income": '
            '{"edges": [30, 60], "proportions": [0.3, 0.4, 0.3]}, "history": {"proportions": '
            '{"good": 0.6, "poor": 0.4}}}, "score": {"edges": [...], "proportions": [...]}}',
        )
        training_ranges = parsing.JSONField(
            required=False,
            help_text='what the training data covered: {"income": [0, 220], "history": '
            '["good", "fair"]}',
        )
        label_count = serializers.IntegerField(required=False, min_value=0)
        notes = serializers.CharField(required=False, allow_blank=True, max_length=5000)
        training_data = serializers.FileField(
            required=False,
            help_text="Parquet: one column per schema feature, `label`, optional protected "
            "attributes; lets Oversight retrain this version",
        )
        test_data = serializers.FileField(
            required=False, help_text="Parquet, same columns: a test split for evaluation"
        )

    @extend_schema(responses=VersionOutSerializer(many=True))
    def get(self, request: Request, name: str) -> Response:
        model = _model_or_404(request.user, name)
        versions = model.versions.select_related(
            "model", "created_by", "promoted_by", "parent"
        ).prefetch_related("datasets")
        return Response(VersionOutSerializer(versions, many=True).data)

    @extend_schema(
        request={"multipart/form-data": VersionUploadSerializer},
        responses={201: VersionOutSerializer},
    )
    def post(self, request: Request, name: str) -> Response:
        model = _model_or_404(request.user, name)
        if not _may_upload(request.user, model):
            raise forbidden(f"Only the owner of {model.name} or its services may add versions.")
        data = _valid(self.VersionUploadSerializer, request.data)
        version = services.version_upload(
            model=model,
            artifact=data["artifact"].read(),
            metrics=_json_field(data, "metrics"),
            baseline=_json_field(data, "baseline"),
            drift_baseline=_json_field(data, "drift_baseline"),
            label_count=data.get("label_count"),
            notes=data.get("notes", ""),
            training_data=_file(data, "training_data"),
            test_data=_file(data, "test_data"),
            training_ranges=_json_field(data, "training_ranges"),
            actor=request.user,
        )
        return Response(VersionOutSerializer(version).data, status=status.HTTP_201_CREATED)


def _may_upload(user: User, model: MLModel) -> bool:
    """Its owner, while a model owner; or a model service it was granted to."""
    if model.owner_id == user.pk and r.has_role(user, r.MODEL_OWNER):
        return True
    return r.has_role(user, r.MODEL_SERVICE) and model.services.filter(pk=user.pk).exists()


def _file(data: dict, key: str) -> bytes | None:
    upload = data.get(key)
    return upload.read() if upload is not None else None


def _json_field(data: dict, key: str):
    """Multipart fields arrive as text; JSON bodies as objects. Accept both."""
    value = data.get(key)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            raise invalid({key: ["must be valid JSON (and not nested too deeply)"]}) from None
    return value


class PolicyApi(APIView):
    """The model's current routing policy; PUT saves a new version (its owner only)."""

    permission_classes = [role_permission(*READERS)]

    @extend_schema(responses=PolicySerializer)
    def get(self, request: Request, name: str) -> Response:
        model = _model_or_404(request.user, name)
        return Response(PolicySerializer(selectors.current_policy(model)).data)

    @extend_schema(request=PolicyChangeSerializer, responses=PolicySerializer)
    def put(self, request: Request, name: str) -> Response:
        if not r.has_role(request.user, r.MODEL_OWNER):
            raise forbidden("Changing a routing policy needs the model_owner role.")
        model = _owned_or_403(request.user, name)
        serializer = PolicyChangeSerializer(data=request.data)
        if not serializer.is_valid():
            errors = dict(serializer.errors)
            if not (
                isinstance(request.data, Mapping) and str(request.data.get("note", "")).strip()
            ):
                errors.setdefault("note", [services.NOTE_REQUIRED])
            raise serializers.ValidationError(errors)
        data = dict(serializer.validated_data)
        note = data.pop("note")
        policy = services.policy_update(model=model, changes=data, note=note, actor=request.user)
        return Response(PolicySerializer(policy).data)
