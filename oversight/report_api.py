"""REST API of the group reports, drift, alert evaluation and the review-all breaker.

Auditors see everything; senior reviewers (every model) and model owners (their own models)
see the same without the counts of groups below REPORT_MIN_CELL. A model the caller may not
report on is a 404, as one that does not exist.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import roles as r
from core.api_schema import error
from core.errors import invalid, not_found
from core.permissions import role_permission
from models_registry.models import MLModel
from models_registry.selectors import current_policy
from oversight import monitoring
from oversight.drift import model_drift
from oversight.models import BreakerTrip
from oversight.report_filters import report_filters
from oversight.reports import override_report, selection_report
from oversight.selectors import REPORT_ROLES, reportable_models, sees_small_groups
from reviews.models import REASONS

Int = serializers.IntegerField
Float = serializers.FloatField
Text = serializers.CharField


def _counts(**kwargs) -> dict:
    """The counts of a group: null for a suppressed group, except for auditors."""
    help_texts = {
        "decisions": "decisions selected",
        "routed": "sent to people by the routing policy",
        "reviewed": "settled by a person (reviewer, adjudicator or appeal)",
        "overridden": "reviewed, and the final outcome differs from the model's",
        "fav_to_unfav": "overrides from the favourable label to another",
        "unfav_to_fav": "overrides from another label to the favourable one",
        "final": "decisions with a final outcome (the selection rates' denominator)",
        "final_model_favourable": "…of which the model's outcome is favourable",
        "final_favourable": "…of which the final outcome is favourable",
    }
    return {
        name: Int(allow_null=True, help_text=text, **kwargs) for name, text in help_texts.items()
    }


def _rates() -> dict:
    return {
        "override_rate": Float(allow_null=True, help_text="overridden / reviewed"),
        "ci_low": Float(allow_null=True, help_text="Wilson 95 % interval of override_rate"),
        "ci_high": Float(allow_null=True),
        "fav_to_unfav_rate": Float(allow_null=True, help_text="fav_to_unfav / reviewed"),
        "unfav_to_fav_rate": Float(allow_null=True, help_text="unfav_to_fav / reviewed"),
        "selection_rate_model": Float(
            allow_null=True, help_text="final_model_favourable / final (before review)"
        ),
        "selection_rate_final": Float(
            allow_null=True, help_text="final_favourable / final (after review)"
        ),
    }


class DifferenceOut(serializers.Serializer):
    value = Float(help_text="this group's override rate minus the reference group's")
    ci_low = Float(help_text="Newcombe hybrid score 95 % interval")
    ci_high = Float()


GroupOut = serializers.SerializerMetaclass(
    "ReportGroupOut",
    (serializers.Serializer,),
    {
        "group": Text(help_text='the value, values joined by "/" in an intersection'),
        "values": serializers.DictField(child=Text(allow_null=True)),
        "recorded": serializers.BooleanField(help_text="false: the attribute was not sent"),
        "suppressed": serializers.BooleanField(),
        "suppressed_because": Text(allow_null=True),
        "is_reference": serializers.BooleanField(),
        "difference": DifferenceOut(allow_null=True),
        "appeals": Int(allow_null=True, help_text="appeals filed, withdrawn ones included"),
        "appeals_decided": Int(allow_null=True, help_text="appeals upheld or overturned"),
        "overturned": Int(allow_null=True),
        "appeal_rate": Float(allow_null=True, help_text="appeals / decisions"),
        "overturn_rate": Float(allow_null=True, help_text="overturned / appeals decided"),
        **_counts(),
        **_rates(),
    },
)


class ComparisonOut(serializers.Serializer):
    method = serializers.ChoiceField(choices=["chi2", "fisher"], allow_null=True)
    statistic = Float(allow_null=True, help_text="chi-square, or Fisher's odds ratio")
    dof = Int(allow_null=True)
    p_value = Float(allow_null=True)
    p_holm = Float(allow_null=True, help_text="Holm-adjusted across every test of the report")
    approximate = serializers.BooleanField()
    note = Text()


class RatioOut(serializers.Serializer):
    ratio = Float(allow_null=True, help_text="lowest selection rate / highest")
    lowest = Text()
    highest = Text()


class SelectionOut(serializers.Serializer):
    threshold = Float(help_text="ALERT_FOUR_FIFTHS")
    model = RatioOut(allow_null=True, help_text="by the model's outcomes (before review)")
    final = RatioOut(allow_null=True, help_text="by the final outcomes (after review)")
    passes_model = serializers.BooleanField(allow_null=True)
    passes_final = serializers.BooleanField(allow_null=True)
    review_changed_gap = serializers.ChoiceField(
        choices=["narrowed", "widened", "unchanged"], allow_null=True
    )


class TableOut(serializers.Serializer):
    attribute = Text(help_text='"race", or "race × sex" for an intersection')
    attributes = serializers.ListField(child=Text())
    intersection = serializers.BooleanField()
    reference = Text(allow_null=True)
    groups = GroupOut(many=True)
    test = ComparisonOut()
    selection = SelectionOut()


class TrendCellOut(serializers.Serializer):
    group = Text()
    suppressed = serializers.BooleanField()
    reviewed = Int(allow_null=True)
    overridden = Int(allow_null=True)
    override_rate = Float(allow_null=True)
    ci_low = Float(allow_null=True)
    ci_high = Float(allow_null=True)


class TrendWeekOut(serializers.Serializer):
    week = serializers.DateField(help_text="the Monday the week starts (UTC)")
    groups = TrendCellOut(many=True)


class TrendOut(serializers.Serializer):
    attribute = Text()
    weeks = TrendWeekOut(many=True)


TotalsOut = serializers.SerializerMetaclass(
    "ReportTotalsOut",
    (serializers.Serializer,),
    {**{k: Int(help_text=f.help_text) for k, f in _counts().items()}, **_rates()},
)


class FiltersOut(serializers.Serializer):
    model = Text()
    attributes = serializers.ListField(child=Text())
    intersect = serializers.BooleanField()
    since = serializers.DateTimeField(allow_null=True)
    until = serializers.DateTimeField(allow_null=True)
    version = Int(allow_null=True)
    sample = serializers.ChoiceField(choices=["all", "random_audit"])
    reason = Text(allow_null=True)
    reference = serializers.ListField(child=Text())


class AppealsOut(serializers.Serializer):
    available = serializers.BooleanField()
    note = Text(allow_null=True)


class OverrideReportOut(serializers.Serializer):
    model = Text()
    favourable_label = Text()
    filters = FiltersOut()
    generated_at = serializers.DateTimeField()
    min_cell = Int(help_text="REPORT_MIN_CELL: groups with fewer reviewed are suppressed")
    small_group_counts_shown = serializers.BooleanField(help_text="true for auditors")
    totals = TotalsOut()
    tables = TableOut(many=True)
    trend = TrendOut(many=True)
    appeals = AppealsOut()
    notes = serializers.ListField(child=Text())


REPORT_PARAMETERS = [
    OpenApiParameter("model", str, required=True, description="the model's name"),
    OpenApiParameter(
        "attribute", str, many=True, description="protected attribute(s); default: all"
    ),
    OpenApiParameter("intersect", bool, description="also the intersection of the attributes"),
    OpenApiParameter("since", str, description="received at or after: a date or ISO time"),
    OpenApiParameter("until", str, description="received before: a date or ISO time"),
    OpenApiParameter("version", int, description="decisions scored by this version"),
    OpenApiParameter(
        "sample",
        str,
        enum=["all", "random_audit"],
        description="random_audit: only randomly audited decisions, the unbiased estimate",
    ),
    OpenApiParameter("reason", str, enum=list(REASONS), description="a routing reason"),
    OpenApiParameter(
        "reference",
        str,
        many=True,
        description='the reference group (default: the most reviewed); "a/b" in an intersection',
    ),
]


NO_SUCH_MODEL = error("No model by that name that you may report on.")


class OverrideReportApi(APIView):
    """Override, selection, appeal and overturn rates per group of the model's protected
    attributes, with Wilson intervals, Newcombe differences to the reference group, a
    chi-square or Fisher test per attribute (Holm-adjusted), the four-fifths ratio before and
    after review, and the weekly trend."""

    permission_classes = [role_permission(*REPORT_ROLES)]

    @extend_schema(
        parameters=REPORT_PARAMETERS, responses={200: OverrideReportOut, 404: NO_SUCH_MODEL}
    )
    def get(self, request: Request) -> Response:
        filters = report_filters(request.query_params, request.user)
        report = override_report(filters, full=sees_small_groups(request.user))
        return Response(OverrideReportOut(report).data)


class SelectionGroupOut(serializers.Serializer):
    group = Text()
    recorded = serializers.BooleanField()
    suppressed = serializers.BooleanField()
    reviewed = Int(allow_null=True)
    final = Int(allow_null=True)
    final_model_favourable = Int(allow_null=True)
    final_favourable = Int(allow_null=True)
    selection_rate_model = Float(allow_null=True)
    selection_rate_final = Float(allow_null=True)


class SelectionTableOut(serializers.Serializer):
    attribute = Text()
    groups = SelectionGroupOut(many=True)
    selection = SelectionOut()


class SelectionReportOut(serializers.Serializer):
    model = Text()
    favourable_label = Text()
    filters = FiltersOut()
    min_cell = Int()
    small_group_counts_shown = serializers.BooleanField()
    tables = SelectionTableOut(many=True)


class SelectionReportApi(APIView):
    """Selection rates (the favourable outcome) per group by the model's outcome and after
    review, with the four-fifths ratios: the selection part of the override report alone.
    Same filters (the intersection aside) and the same suppression."""

    permission_classes = [role_permission(*REPORT_ROLES)]

    @extend_schema(
        parameters=REPORT_PARAMETERS, responses={200: SelectionReportOut, 404: NO_SUCH_MODEL}
    )
    def get(self, request: Request) -> Response:
        filters = report_filters(request.query_params, request.user)
        report = selection_report(filters, full=sees_small_groups(request.user))
        return Response(SelectionReportOut(report).data)


# --- drift ---------------------------------------------------------------------------------------


class BinOut(serializers.Serializer):
    bin = Text()
    expected = Float(help_text="the baseline's share")
    actual = Float(allow_null=True, help_text="the window's share")
    count = Int()


class FeatureDriftOut(serializers.Serializer):
    feature = Text(help_text='a feature, or "score" (probability of the favourable label)')
    kind = Text()
    psi = Float(allow_null=True)
    alert = serializers.BooleanField(help_text="PSI above DRIFT_PSI_ALERT")
    trip = serializers.BooleanField(help_text="PSI above DRIFT_PSI_TRIP: trips the breaker")
    counted = Int()
    missing = Int(help_text="decisions without a value, left out")
    bins = BinOut(many=True)


class VersionDriftOut(serializers.Serializer):
    model = Text()
    version = Int()
    version_status = Text()
    status = serializers.ChoiceField(
        choices=["ok", "no_baseline", "too_few"],
        help_text="no_baseline: uploaded without a drift baseline; too_few: fewer than "
        "min_decisions decisions in the window",
    )
    since = serializers.DateTimeField()
    window_days = Int()
    min_decisions = Int()
    decisions = Int(allow_null=True)
    features = FeatureDriftOut(many=True)
    max_psi = Float(allow_null=True)
    worst = Text(allow_null=True)


class DriftReportOut(serializers.Serializer):
    model = Text()
    versions = VersionDriftOut(many=True)


def _model(user, name: str | None) -> MLModel:
    if not name:
        raise invalid({"model": ["is required: the name of a model"]})
    model = reportable_models(user).filter(name=name).first()
    if model is None:
        raise not_found(f"No model named {name!r} that you may report on.")
    return model


class DriftReportApi(APIView):
    """The population stability index of each feature and of the score, per version (the
    champion and any version that scored decisions in the window), over the last
    DRIFT_WINDOW_DAYS against the version's drift baseline."""

    permission_classes = [role_permission(*REPORT_ROLES)]

    class Filters(serializers.Serializer):
        model = Text(max_length=100)
        version = Int(required=False, min_value=1)

    @extend_schema(parameters=[Filters], responses={200: DriftReportOut, 404: NO_SUCH_MODEL})
    def get(self, request: Request) -> Response:
        filters = self.Filters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        model = _model(request.user, filters.validated_data["model"])
        number = filters.validated_data.get("version")
        version = None
        if number is not None:
            version = model.versions.filter(number=number).first()
            if version is None:
                raise invalid({"version": [f"{model.name} has no version {number}"]})
        drifts = model_drift(model, version=version)
        return Response(DriftReportOut({"model": model.name, "versions": drifts}).data)


# --- evaluation and the breaker ----------------------------------------------------------------


class FindingOut(serializers.Serializer):
    kind = serializers.ChoiceField(choices=monitoring.KINDS)
    message = Text()
    details = serializers.JSONField()
    trips = serializers.BooleanField(help_text="this finding trips the review-all breaker")


class EvaluationOut(serializers.Serializer):
    model = Text()
    evaluated_at = serializers.DateTimeField()
    findings = FindingOut(many=True)
    raised = serializers.ListField(child=Text(), help_text="alert kinds raised now (new ones)")
    breaker_tripped = serializers.BooleanField(help_text="the breaker tripped now")
    drift = VersionDriftOut(many=True)


class EvaluateApi(APIView):
    """Evaluate the model's alert conditions now (what the hourly beat task does): new alerts
    are raised and e-mailed to auditors; drift or random-audit overrides past their thresholds
    trip the review-all breaker."""

    permission_classes = [role_permission(*REPORT_ROLES)]

    class EvaluateIn(serializers.Serializer):
        model = Text(max_length=100)

    @extend_schema(request=EvaluateIn, responses={200: EvaluationOut, 404: NO_SUCH_MODEL})
    def post(self, request: Request) -> Response:
        data = self.EvaluateIn(data=request.data)
        data.is_valid(raise_exception=True)
        model = _model(request.user, data.validated_data["model"])
        result = monitoring.model_evaluate(model=model, actor=request.user)
        return Response(EvaluationOut(result).data)


class TripOut(serializers.ModelSerializer):
    reset_by = Text(source="reset_by.username", default=None)

    class Meta:
        model = BreakerTrip
        fields = [
            "id", "cause", "measurement", "details", "tripped_at", "policy_version",
            "review_all_before", "reset_at", "reset_by", "reset_note", "reset_policy_version",
        ]  # fmt: skip


class BreakerOut(serializers.Serializer):
    model = Text()
    tripped = serializers.BooleanField()
    review_all = serializers.BooleanField(help_text="in the current routing policy")
    policy_version = Int()
    trip = TripOut(allow_null=True, help_text="the open trip, if tripped")
    history = TripOut(many=True, help_text="the last 20 trips, newest first")


def breaker_data(model: MLModel) -> dict:
    policy = current_policy(model)
    trips = list(BreakerTrip.objects.filter(model=model).select_related("reset_by")[:20])
    open_trip = next((t for t in trips if t.reset_at is None), None)
    return {
        "model": model.name,
        "tripped": open_trip is not None,
        "review_all": policy.review_all,
        "policy_version": policy.version,
        "trip": open_trip,
        "history": trips,
    }


class BreakerApi(APIView):
    """The model's review-all breaker: whether it is tripped, why, and its history."""

    permission_classes = [role_permission(*REPORT_ROLES)]

    @extend_schema(responses=BreakerOut)
    def get(self, request: Request, name: str) -> Response:
        model = _model(request.user, name)
        return Response(BreakerOut(breaker_data(model)).data)


class BreakerResetApi(APIView):
    """Reset a tripped breaker (the model's owner or a senior reviewer), saying why: review_all
    goes back to what it was before the trip, in a new policy version."""

    permission_classes = [role_permission(r.SENIOR_REVIEWER, r.MODEL_OWNER)]

    class ResetIn(serializers.Serializer):
        note = Text(max_length=2000, help_text="why it is safe to let the model decide again")

    @extend_schema(request=ResetIn, responses=BreakerOut)
    def post(self, request: Request, name: str) -> Response:
        model = _model(request.user, name)
        data = self.ResetIn(data=request.data)
        data.is_valid(raise_exception=True)
        monitoring.breaker_reset(model=model, actor=request.user, note=data.validated_data["note"])
        return Response(BreakerOut(breaker_data(model)).data)
