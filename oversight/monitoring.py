"""Services of the group reports: evaluating a model's alert conditions, and its review-all
breaker (tripped by the system, reset by a person). Each state change runs in one transaction
with its audit events; every new alert is e-mailed to the auditors through the outbox in the
transaction that raises it.

The conditions, per model (oversight settings, see config/settings.py):
- override_gap: a protected attribute whose groups' override rates differ, Holm-adjusted p
  below ALERT_P, and highest minus lowest rate at least ALERT_MIN_DIFF (last ALERT_WINDOW_DAYS);
- four_fifths: the lowest group's final-outcome selection rate below ALERT_FOUR_FIFTHS of the
  highest's;
- random_audit_override: the override rate of randomly audited decisions, its Wilson 95 %
  interval wholly above ALERT_RANDOM_AUDIT_OVERRIDE (trips the breaker);
- appeals_overdue: appeals past their deadline (none until appeals exist);
- drift: a feature's or the score's PSI above DRIFT_PSI_ALERT; above DRIFT_PSI_TRIP the
  breaker trips.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from appeals.models import Appeal
from audit import record
from audit.log import Actor
from audit.models import Alert
from audit.services import alert_raise
from core import roles as r
from core.errors import ApplicationError, forbidden, invalid
from models_registry.models import MLModel
from models_registry.selectors import current_policy
from models_registry.services import policy_update
from outbox import email
from outbox.services import message_enqueue
from oversight.drift import model_drift
from oversight.models import BreakerTrip
from oversight.report_filters import ReportFilters
from oversight.reports import override_report, total_counts
from oversight.selectors import may_reset_breaker
from oversight.stats import wilson
from reviews.models import Decision

logger = logging.getLogger(__name__)
SYSTEM = "system"
TRIP_CAUSES = ("drift", "random_audit_override")
KINDS = ["override_gap", "four_fifths", "random_audit_override", "appeals_overdue", "drift"]


@dataclass
class Finding:
    kind: str
    message: str
    details: dict = field(default_factory=dict)
    trips: bool = False


def scope_of(model: MLModel) -> str:
    return f"model:{model.name}"


# --- the conditions -------------------------------------------------------------------------


def override_gaps(report: dict) -> list[Finding]:
    findings = []
    for table in report["tables"]:
        p = table["test"]["p_holm"]
        rates = {
            g["group"]: g["override_rate"]
            for g in table["groups"]
            if g["recorded"] and not g["suppressed"] and g["override_rate"] is not None
        }
        if p is None or p >= settings.ALERT_P or len(rates) < 2:
            continue
        low, high = min(rates, key=rates.get), max(rates, key=rates.get)
        gap = rates[high] - rates[low]
        if gap < settings.ALERT_MIN_DIFF:
            continue
        findings.append(
            Finding(
                "override_gap",
                f"Override rates differ by {table['attribute']}: {high} {rates[high]:.1%} vs "
                f"{low} {rates[low]:.1%} (difference {gap:.1%}, Holm-adjusted p = {p:.3g}).",
                {
                    "attribute": table["attribute"],
                    "high": high,
                    "low": low,
                    "p_holm": p,
                    "difference": gap,
                },
            )
        )
    return findings


def four_fifths(report: dict) -> list[Finding]:
    findings = []
    for table in report["tables"]:
        selection = table["selection"]
        if selection["passes_final"] is not False:
            continue
        final = selection["final"]
        findings.append(
            Finding(
                "four_fifths",
                f"Final outcomes by {table['attribute']} fail the four-fifths rule: "
                f"{final['lowest']}'s selection rate is {final['ratio']:.2f} of "
                f"{final['highest']}'s (threshold {selection['threshold']:.2f}).",
                {"attribute": table["attribute"], **final},
            )
        )
    return findings


def random_audit_override(model: MLModel, since: datetime) -> list[Finding]:
    audited = Decision.objects.filter(
        model=model, received_at__gte=since, reason_tags__contains=",random_audit,"
    ).order_by()
    counts = total_counts(audited, model.favourable_label)
    low, high = wilson(counts["overridden"], counts["reviewed"])
    if low is None or low <= settings.ALERT_RANDOM_AUDIT_OVERRIDE:
        return []
    rate = counts["overridden"] / counts["reviewed"]
    return [
        Finding(
            "random_audit_override",
            f"People overrode {rate:.1%} of randomly audited decisions "
            f"({counts['overridden']} of {counts['reviewed']}; 95 % interval {low:.1%} to "
            f"{high:.1%}, above {settings.ALERT_RANDOM_AUDIT_OVERRIDE:.0%}).",
            {
                "overridden": counts["overridden"],
                "reviewed": counts["reviewed"],
                "ci_low": low,
                "ci_high": high,
            },
            trips=True,
        )
    ]


def overdue_appeals(model: MLModel, now: datetime) -> int:
    """The model's appeals still open (submitted or in review) after their deadline."""
    return Appeal.objects.filter(
        decision__model=model, status__in=Appeal.OPEN_STATUSES, due_at__lt=now
    ).count()


def appeals_overdue(model: MLModel, now: datetime) -> list[Finding]:
    overdue = overdue_appeals(model, now)
    if not overdue:
        return []
    return [Finding("appeals_overdue", f"{overdue} appeals are past their deadline.")]


def drift_findings(drifts: list[dict]) -> list[Finding]:
    findings = []
    for drift in drifts:
        alerting = [f for f in drift["features"] if f["alert"]]
        if not alerting:
            continue
        worst = max(alerting, key=lambda f: f["psi"])
        trips = worst["trip"]
        listed = ", ".join(f"{f['feature']} {f['psi']:.2f}" for f in alerting)
        findings.append(
            Finding(
                "drift",
                f"Version {drift['version']} drifted over the last {drift['window_days']} days "
                f"(PSI {listed}; alert above {settings.DRIFT_PSI_ALERT}, breaker above "
                f"{settings.DRIFT_PSI_TRIP}).",
                {
                    "version": drift["version"],
                    "feature": worst["feature"],
                    "psi": worst["psi"],
                    "psi_by_feature": {f["feature"]: f["psi"] for f in alerting},
                },
                trips=trips,
            )
        )
    return findings


# --- evaluating ----------------------------------------------------------------------------


def model_evaluate(*, model: MLModel, actor: Actor = None, now: datetime | None = None) -> dict:
    """Evaluate every condition for one model now: raise what is new (one open alert per
    condition and model, each e-mailed to the auditors), and trip the breaker when drift passes
    DRIFT_PSI_TRIP or the random-audit override rate passes its threshold. Safe to run again:
    open alerts and an open trip are left as they are. `actor`: a person who asked (audited)."""
    now = now or timezone.now()
    since = now - timedelta(days=settings.ALERT_WINDOW_DAYS)
    filters = ReportFilters(model=model, attributes=list(model.protected_attributes), since=since)
    report = override_report(filters, full=True)
    drifts = model_drift(model, now=now)
    findings = [
        *override_gaps(report),
        *four_fifths(report),
        *random_audit_override(model, since),
        *appeals_overdue(model, now),
        *drift_findings(drifts),
    ]
    with transaction.atomic():
        raised = [kind for f in _merged(findings) if (kind := _alert(model, f))]
        trip = next((f for f in findings if f.trips), None)
        tripped = breaker_trip(model=model, finding=trip) if trip else None
        if tripped is not None:
            raised.append("breaker_tripped")
        if actor is not None:
            record(
                action="oversight.evaluated",
                actor=actor,
                obj=model,
                payload={"model": model.name, "findings": [f.kind for f in findings],
                         "raised": raised, "tripped": tripped is not None},
            )  # fmt: skip
    return {
        "model": model.name,
        "evaluated_at": now,
        "findings": [asdict(f) for f in findings],
        "raised": raised,
        "breaker_tripped": tripped is not None,
        "drift": drifts,
    }


def _merged(findings: list[Finding]) -> list[Finding]:
    """One alert per condition and model: findings of one kind (two attributes, two versions)
    go into one message."""
    by_kind: dict[str, list[Finding]] = {}
    for finding in findings:
        by_kind.setdefault(finding.kind, []).append(finding)
    return [
        Finding(kind, " ".join(f.message for f in group), {"findings": [f.details for f in group]})
        for kind, group in by_kind.items()
    ]


def models_evaluate(*, now: datetime | None = None) -> int:
    """Beat: evaluate every model that received decisions in the alert window. A model whose
    evaluation fails is logged and the others go on. Returns how many were evaluated."""
    now = now or timezone.now()
    since = now - timedelta(days=settings.ALERT_WINDOW_DAYS)
    recent = Decision.objects.filter(model=OuterRef("pk"), received_at__gte=since)
    done = 0
    for model in MLModel.objects.filter(Exists(recent)).order_by("name"):
        try:
            model_evaluate(model=model, now=now)
            done += 1
        except Exception:
            logger.exception("evaluating the alerts of model %s failed", model.name)
    return done


# --- alerts, e-mailed ---------------------------------------------------------------------------


def auditor_addresses() -> list[str]:
    auditors = User.objects.filter(groups__name=r.AUDITOR, is_active=True).exclude(email="")
    return sorted(set(auditors.values_list("email", flat=True)))


def _alert(model: MLModel, finding: Finding) -> str | None:
    """Raise the finding's alert unless one is open for this model and condition; a new one is
    e-mailed to the auditors in this transaction. Returns the kind when it was raised."""
    scope = scope_of(model)
    if Alert.objects.filter(kind=finding.kind, scope=scope, resolved_at=None).exists():
        return None
    alert = alert_raise(kind=finding.kind, message=f"{model.name}: {finding.message}", scope=scope)
    to = auditor_addresses()
    if not to:
        logger.warning("alert %s for %s: no auditor has an e-mail address", finding.kind, scope)
        return finding.kind
    body = (
        f"{alert.message}\n\nRaised {alert.created_at:%Y-%m-%d %H:%M} UTC for {scope}. "
        f"Acknowledge or resolve it, with a note, at {settings.SITE_URL}/audit/ ; the model's "
        f"group report is at {settings.SITE_URL}/oversight/models/{model.name}/ ."
    )
    message_enqueue(
        kind=email.KIND,
        payload=email.payload(
            to=to, subject=f"[Oversight] {finding.kind} alert: {model.name}", body=body
        ),
        key=f"alert-email:{alert.pk}",
        scope=scope,
    )
    return finding.kind


# --- the review-all breaker ---------------------------------------------------------------------


def open_trip(model: MLModel) -> BreakerTrip | None:
    return BreakerTrip.objects.filter(model=model, reset_at=None).first()


def breaker_trip(*, model: MLModel, finding: Finding) -> BreakerTrip | None:
    """Turn review_all on in a new policy version (actor: the system, the note naming the
    measurement), record the trip and raise its alert. Nothing when it is already tripped."""
    cause = finding.kind
    if cause not in TRIP_CAUSES:
        raise ValueError(f"the breaker trips on {', '.join(TRIP_CAUSES)}, not {cause}")
    with transaction.atomic():
        MLModel.objects.select_for_update().get(pk=model.pk)  # one trip or reset at a time
        if open_trip(model) is not None:
            return None
        before = current_policy(model)
        note = f"review-all breaker tripped by {cause}: {finding.message}"[:2000]
        policy = policy_update(model=model, changes={"review_all": True}, actor=SYSTEM, note=note)
        trip = BreakerTrip.objects.create(
            model=model,
            cause=cause,
            measurement=finding.message,
            details=finding.details,
            tripped_at=timezone.now(),
            policy_version=policy.version,
            review_all_before=before.review_all,
        )
        record(
            action="breaker.tripped",
            actor=SYSTEM,
            obj=model,
            payload={"model": model.name, "trip": trip.pk, "cause": cause,
                     "measurement": finding.message, "policy_version": policy.version},
        )  # fmt: skip
        _alert(
            model,
            Finding(
                "breaker_tripped",
                f"The review-all breaker tripped ({cause}): every new decision goes to people "
                f"until its owner or a senior reviewer resets it. {finding.message}",
            ),
        )
    return trip


def breaker_reset(*, model: MLModel, actor: User, note: str) -> BreakerTrip:
    """The model's owner or a senior reviewer resets a tripped breaker, saying why (required):
    review_all goes back to what it was before the trip, in a new policy version."""
    note = (note or "").strip()
    if not note or len(note) > 2000:
        raise invalid({"note": ["say why it is safe to reset (1 to 2000 characters)"]})
    if not may_reset_breaker(actor, model):
        raise forbidden(f"Only the owner of {model.name} or a senior reviewer may reset it.")
    with transaction.atomic():
        MLModel.objects.select_for_update().get(pk=model.pk)
        trip = BreakerTrip.objects.select_for_update().filter(model=model, reset_at=None).first()
        if trip is None:
            raise ApplicationError(
                f"The review-all breaker of {model.name} is not tripped.", code="not_tripped"
            )
        policy = policy_update(
            model=model,
            changes={"review_all": trip.review_all_before},
            actor=actor,
            note=f"review-all breaker reset: {note}",
        )
        trip.reset_at, trip.reset_by, trip.reset_note = timezone.now(), actor, note
        trip.reset_policy_version = policy.version
        trip.save(update_fields=["reset_at", "reset_by", "reset_note", "reset_policy_version"])
        record(
            action="breaker.reset",
            actor=actor,
            obj=model,
            payload={"model": model.name, "trip": trip.pk, "note": note,
                     "policy_version": policy.version, "review_all": trip.review_all_before},
        )  # fmt: skip
    return trip
