"""The filters of a group report, read from a query string (the API's and the page's alike)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.utils.dateparse import parse_date, parse_datetime

from core.errors import invalid, not_found
from models_registry.models import MLModel, ModelVersion
from oversight.selectors import reportable_models
from reviews.models import REASONS, Decision
from reviews.selectors import decisions_answer_visible_to

SAMPLES = ("all", "random_audit")
MAX_INTERSECTED = 3
_WHOLE = re.compile(r"[0-9]{1,9}")
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off", ""}


@dataclass
class ReportFilters:
    model: MLModel
    attributes: list[str]
    intersect: bool = False
    since: datetime | None = None
    until: datetime | None = None
    version: ModelVersion | None = None
    sample: str = "all"
    reason: str | None = None
    references: list[str] = field(default_factory=list)
    # Whose report: their counts leave out the decisions whose model answer they may not
    # learn (reviews.selectors.decisions_answer_visible_to): a senior's, those awaiting a blind
    # review or posing as samples that they may be given. None: the system's (monitoring).
    viewer: User | None = None

    def decisions(self) -> QuerySet[Decision]:
        """The model's decisions these filters select (before any grouping)."""
        base = Decision.objects.all()
        if self.viewer is not None:
            base = decisions_answer_visible_to(self.viewer)
        qs = base.filter(model=self.model)
        if self.since:
            qs = qs.filter(received_at__gte=self.since)
        if self.until:
            qs = qs.filter(received_at__lt=self.until)
        if self.version is not None:
            qs = qs.filter(model_version=self.version)
        if self.sample == "random_audit":
            qs = qs.filter(reason_tags__contains=",random_audit,")
        if self.reason:
            qs = qs.filter(reason_tags__contains=f",{self.reason},")
        return qs.order_by()

    def as_dict(self) -> dict:
        return {
            "model": self.model.name,
            "attributes": self.attributes,
            "intersect": self.intersect,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "version": self.version.number if self.version else None,
            "sample": self.sample,
            "reason": self.reason,
            "reference": self.references,
        }

    def query(self) -> list[tuple[str, str]]:
        """The filters as query-string pairs (links to downloads and other views)."""
        pairs = [("model", self.model.name)]
        pairs += [("attribute", a) for a in self.attributes]
        if self.intersect:
            pairs.append(("intersect", "true"))
        for key in ("since", "until"):
            if getattr(self, key):
                pairs.append((key, getattr(self, key).isoformat()))
        if self.version is not None:
            pairs.append(("version", str(self.version.number)))
        if self.sample != "all":
            pairs.append(("sample", self.sample))
        if self.reason:
            pairs.append(("reason", self.reason))
        pairs += [("reference", ref) for ref in self.references]
        return pairs


def _getlist(params: Any, key: str) -> list[str]:
    if hasattr(params, "getlist"):
        return [v for v in params.getlist(key) if v != ""]
    value = params.get(key)
    if value in (None, ""):
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def _first(params: Any, key: str) -> str:
    values = _getlist(params, key)
    return values[-1].strip() if values else ""


def moment(text: str) -> datetime | None:
    """An ISO 8601 time with a time zone, or a date (midnight UTC); None when it is neither."""
    try:
        parsed = parse_datetime(text)
        if parsed is None:
            day = parse_date(text)
            return datetime.combine(day, time(), tzinfo=UTC) if day else None
    except ValueError:  # well-formed but impossible, such as month 13
        return None
    return parsed if parsed.tzinfo is not None else None


def report_filters(params: Any, viewer: User) -> ReportFilters:
    """Read and check the filters; a 400 naming every bad one, a 404 for a model the viewer
    may not report on (as for one that does not exist)."""
    name = _first(params, "model")
    if not name:
        raise invalid({"model": ["is required: the name of a model"]})
    model = reportable_models(viewer).filter(name=name).first()
    if model is None:
        raise not_found(f"No model named {name!r} that you may report on.")
    errors: dict[str, list[str]] = {}
    filters = ReportFilters(
        model=model, attributes=_attributes(params, model, errors), viewer=viewer
    )
    filters.intersect = _flag(params, "intersect", errors)
    if filters.intersect and len(filters.attributes) < 2:
        errors["intersect"] = ["needs at least two attributes"]
    if filters.intersect and len(filters.attributes) > MAX_INTERSECTED:
        errors["intersect"] = [f"crosses at most {MAX_INTERSECTED} attributes"]
    for key in ("since", "until"):
        text = _first(params, key)
        if text:
            value = moment(text)
            if value is None:
                errors[key] = ["must be a date (YYYY-MM-DD) or an ISO 8601 time with a time zone"]
            setattr(filters, key, value)
    if filters.since and filters.until and filters.since >= filters.until:
        errors["until"] = ["must be after since"]
    filters.version = _version(params, model, errors)
    filters.sample = _first(params, "sample") or "all"
    if filters.sample not in SAMPLES:
        errors["sample"] = [f"must be one of {', '.join(SAMPLES)}"]
    filters.reason = _first(params, "reason") or None
    if filters.reason and filters.reason not in REASONS:
        errors["reason"] = [f"must be one of {', '.join(REASONS)}"]
    # Several reference= parameters, or one with names separated by commas (the page's field).
    named = [part.strip() for ref in _getlist(params, "reference") for part in ref.split(",")]
    filters.references = [ref[:200] for ref in named if ref][:10]
    if errors:
        raise invalid(errors)
    return filters


def _attributes(params: Any, model: MLModel, errors: dict) -> list[str]:
    known = list(model.protected_attributes)
    asked = list(dict.fromkeys(_getlist(params, "attribute")))
    unknown = [a for a in asked if a not in known]
    if unknown:
        listed = ", ".join(known) if known else "none"
        errors["attribute"] = [
            f"{', '.join(unknown)}: not a protected attribute of {model.name} ({listed})"
        ]
    return asked or known


def _flag(params: Any, key: str, errors: dict) -> bool:
    text = _first(params, key).lower()
    if text in _TRUE:
        return True
    if text not in _FALSE:
        errors[key] = ["must be true or false"]
    return False


def _version(params: Any, model: MLModel, errors: dict) -> ModelVersion | None:
    text = _first(params, "version")
    if not text:
        return None
    if not _WHOLE.fullmatch(text):
        errors["version"] = ["must be a version number"]
        return None
    version = model.versions.filter(number=int(text)).first()
    if version is None:
        errors["version"] = [f"{model.name} has no version {text}"]
    return version
