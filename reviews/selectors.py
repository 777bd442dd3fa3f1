"""Read paths of the reviews app, with the object-level rules of who may see what."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    prefetch_related_objects,
)
from django.utils import timezone

from audit.models import AuditEvent
from audit.selectors import object_proof
from core import roles as r
from core.errors import forbidden
from core.rows import Part, columns, fetch
from models_registry.models import MLModel, ModelVersion
from reviews import routing as routes
from reviews.models import REASONS, Decision, GoldLabel, Review, ReviewTask


def models_for_ingest(user: User) -> QuerySet[MLModel]:
    """A model service may send decisions only for the models it has been granted."""
    if not r.has_role(user, r.MODEL_SERVICE):
        return MLModel.objects.none()
    return MLModel.objects.filter(services=user)


def decisions_visible_to(user: User) -> QuerySet[Decision]:
    """Auditors and senior reviewers see every decision; a model owner those of the models
    they own; a model service those of the models it has been granted."""
    user_roles = r.roles_of(user)
    if {r.AUDITOR, r.SENIOR_REVIEWER} & user_roles:
        return Decision.objects.all()
    models = Q(pk__in=[])
    if r.MODEL_OWNER in user_roles:
        models |= Q(owner=user)
    if r.MODEL_SERVICE in user_roles:
        models |= Q(services=user)
    # A subquery, not a join: a join through services would repeat rows.
    return Decision.objects.filter(model__in=MLModel.objects.filter(models).values("pk"))


def decisions_filtered(
    user: User,
    *,
    model: str | None = None,
    status: str | None = None,
    routed: bool | None = None,
    reason: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Decision]:
    """The decisions the user may see, filtered on what they may see of each: a filter on
    what derives from the model's answer (the status and routing, the reasons) matches a
    decision whose answer is hidden from the viewer by the reasons blind review shows them,
    and a known-answer item they may be served by what it poses as (seen_as_q)."""
    decisions = decisions_visible_to(user)
    if model:
        decisions = decisions.filter(model__name=model)
    if status or routed is not None or reason:
        decisions = decisions.filter(seen_as_q(user, status=status, routed=routed, reason=reason))
    if since:
        decisions = decisions.filter(received_at__gte=since)
    if until:
        decisions = decisions.filter(received_at__lt=until)
    return decisions


def seen_as_q(
    viewer: User,
    *,
    status: str | None = None,
    routed: bool | None = None,
    reason: str | None = None,
) -> Q:
    """Decisions whose status, routing and reasons, as the viewer sees them (decision_seen),
    are these. Filtering on the stored values would give away what the viewer is not shown:
    `reason=high_stakes` would pick out the blind decisions whose rule on the model's answer
    fired, `status=final` the known-answer items among the decisions awaiting review."""
    stored = Q()
    if status:
        stored &= Q(status=status)
    if routed is not None:
        stored &= Q(routed=routed)
    if reason:
        stored &= Q(reason_tags__contains=f",{reason},")
    hidden, posing = hidden_q(viewer), posing_q(viewer)
    if hidden is None or posing is None:
        return stored
    # Blind: the status and routed flag are what they are (a decision awaiting a blind review
    # awaits review); the reasons are blind review's.
    blind = Q(status=status) if status else Q()
    if routed is not None:
        blind &= Q(routed=routed)
    if reason:
        blind &= Q(blind_reason_tags__contains=f",{reason},")
    seen = (~posing & ~hidden & stored) | (~posing & hidden & blind)
    # Posing as an ordinary decision awaiting review, for the reasons its copies show.
    if status in (None, "", Decision.Status.PENDING_REVIEW) and routed in (None, True):
        posed = Q(gold__pose_tags__contains=f",{reason},") if reason else Q()
        seen |= posing & posed
    return seen


def may_see_groups(user: User) -> bool:
    """Protected attributes are for group reports: auditors only."""
    return role_sight(user).groups


# --- what a viewer may see of a decision -------------------------------------------------------
#
# One way to read a decision, for every viewer. Every page, API response, history and export
# that shows a decision shows what `decision_seen` (and `decision_history`, `decision_log`)
# return for the viewer's sight (`role_sight`, `sights_of`, `task_sight`), never the Decision
# or its audit events themselves: what a viewer may not see is absent from what they are given.


@dataclass(frozen=True)
class Sight:
    """What one kind of viewer may see of a decision.

    Apps above reviews add their own viewers as Sight values (the appeals app: the affected
    person, who comes with a reference and an access code, not a role) and read decisions
    through decision_seen and decision_history like every other viewer."""

    viewer: str
    # The application and its handling: model and version, references, features, the routing
    # reasons, status, tasks, times. Without it, the decision's id alone.
    case: bool = True
    # The model's answer: outcome, confidence, probabilities, margin, explanation; and the
    # final outcome, which would give the answer away (reviewers mostly agree).
    model: bool = False
    # Protected attributes (race, sex...), kept for group reports.
    groups: bool = False
    # The random audit's draw and rate: they would tell a known-answer check from a sample.
    draw: bool = False
    # The events as logged (canonical texts, payloads included, with their proofs). Without
    # it, each event's time, action and actor (decision_history).
    log: bool = False
    # With log: the texts of the events made by staff too (they name them). Without, those
    # are given by leaf hash and proof, beside their action and a pseudonym for their actor.
    log_names: bool = False
    # A known-answer item the viewer may be served (posing_q): shown as the ordinary decision
    # awaiting review that its copies pose as (status, routing, settlement, tasks).
    pose: bool = False


# A reviewer or senior who holds an unanswered blind task on the decision, or who may still be
# given one (decisions_hidden_from): nothing of the model's answer, whatever their other roles.
BLIND_REVIEWER = Sight("blind_reviewer")
REVIEWER = Sight("reviewer", model=True)
SENIOR = Sight("senior", model=True)
AUDITOR = Sight("auditor", model=True, groups=True, draw=True, log=True, log_names=True)
MODEL_OWNER = Sight("model_owner", model=True, draw=True)
MODEL_SERVICE = Sight("model_service", model=True, draw=True, log=True)
# The decision named, nothing shown: a task its reviewer handed back, or a viewer without a role.
REFERENCE = Sight("reference", case=False)

# A person with several roles sees as the first of them here: reviewers before model owners
# and services (whoever may be served a known-answer check sees no audit draw).
_ROLE_SIGHTS = (
    (r.AUDITOR, AUDITOR),
    (r.SENIOR_REVIEWER, SENIOR),
    (r.REVIEWER, REVIEWER),
    (r.MODEL_OWNER, MODEL_OWNER),
    (r.MODEL_SERVICE, MODEL_SERVICE),
)
_MODEL_KEYS = (
    "model_outcome",
    "confidence",
    "probabilities",
    "margin",
    "explanation",
    "final_outcome",
)


def role_sight(viewer: User) -> Sight:
    """The viewer's sight of decisions they cannot be given to review blind (exports, and the
    start of sights_of)."""
    roles = r.roles_of(viewer)
    return next((sight for role, sight in _ROLE_SIGHTS if role in roles), REFERENCE)


def sights_of(viewer: User, decision_ids: list[int]) -> dict[int, Sight]:
    """The viewer's sight of each of these decisions, in one query: blind on those that await
    a blind review they hold or may still be given, posing on the known-answer items whose
    copies they may be served."""
    base = role_sight(viewer)
    hidden, posing = _withheld(viewer, decision_ids)
    sights = {}
    for pk in decision_ids:
        sight = BLIND_REVIEWER if pk in hidden else base
        sights[pk] = replace(sight, pose=True) if pk in posing else sight
    return sights


def task_sight(task: ReviewTask, viewer: User) -> Sight:
    """The viewer's sight of a task's decision, looking through that task."""
    return role_sight(viewer) if reveals_model(task, viewer) else BLIND_REVIEWER


def decision_seen(
    decision: Decision, sight: Sight, *, task: ReviewTask | None = None, tasks: bool = True
) -> dict:
    """The decision as a viewer with this sight may see it: what they may not see is absent,
    and `model_hidden` is true when the model's answer is. Seen through one of its tasks (the
    case page, the task API) it is the case that task's reviewer works from: the routing as
    shown_routing gives it, `model_hidden` always, no list of tasks, no protected attributes.
    `tasks=False` leaves the list of tasks out (a bulk answer, which does not show it)."""
    seen: dict[str, Any] = {"id": decision.pk}
    if not sight.case:
        return seen
    # A known-answer item, to whoever may be served a copy and through any copy: the ordinary
    # decision awaiting review it poses as. Its settlement (it is often final, by the model)
    # and its other tasks would tell the check from a sample.
    posed = sight.pose or (task is not None and task.is_gold)
    seen.update(
        model=decision.model.name,
        model_version=decision.model_version.number if decision.model_version_id else None,
        external_id=decision.external_id,
        subject_ref=decision.subject_ref,
        status=Decision.Status.PENDING_REVIEW if posed else decision.status,
        scored_by=decision.scored_by,
        features=decision.features,
        routed=True if posed else decision.routed,
        routing=_routing_seen(decision, sight, task),
        finalized_by="" if posed else decision.finalized_by,
        finalized_at=None if posed else decision.finalized_at,
        received_at=decision.received_at,
    )
    if task is None and tasks:
        seen["tasks"] = [
            {"id": t.pk, "kind": t.kind, "state": t.state}
            for t in decision.tasks.all()
            if t.is_gold or not posed
        ]
    if sight.model:
        seen.update({key: getattr(decision, key) for key in _MODEL_KEYS})
        if posed:
            seen["final_outcome"] = ""
    if not sight.model or task is not None:
        seen["model_hidden"] = not sight.model
    if sight.groups and task is None:
        seen["groups"] = {p.name: p.value for p in decision.protected.all()}
    return seen


def decisions_seen(
    viewer: User, decisions: Iterable[Decision], *, tasks: bool = True
) -> list[dict]:
    """decision_seen of each decision, each with the viewer's sight of it."""
    rows = list(decisions)
    sights = sights_of(viewer, [decision.pk for decision in rows])
    # What decision_seen reads, for all rows at once (a no-op for what the caller prefetched).
    versions = Prefetch("model_version", ModelVersion.objects.defer("artifact"))
    prefetch_related_objects(rows, "model", versions, *(["tasks"] if tasks else []))
    if any(sight.groups for sight in sights.values()):
        prefetch_related_objects(rows, "protected")
    if any(sight.pose for sight in sights.values()):
        prefetch_related_objects([d for d in rows if sights[d.pk].pose], "gold")
    return [decision_seen(d, sights[d.pk], tasks=tasks) for d in rows]


def _routing_seen(decision: Decision, sight: Sight, task: ReviewTask | None) -> dict:
    if task is not None:
        return shown_routing(task, sight.model)
    routing = decision.routing if sight.model else blind_routing(decision.routing)
    if sight.pose:
        return _posed(_without_draws(routing), gold_pose_of(decision))
    return routing if sight.draw else _without_draws(routing)


def task_seen(task: ReviewTask, viewer: User, *, sight: Sight | None = None) -> dict:
    """A review task, with its decision as the viewer may see it through the task (or with the
    sight given: REFERENCE for a task its reviewer has just handed back)."""
    sight = sight or task_sight(task, viewer)
    return {
        "id": task.pk,
        "kind": task.kind,
        "state": task.state,
        "priority": task.priority,
        "due_at": task.due_at,
        "claimed_at": task.claimed_at,
        "lease_expires_at": task.lease_expires_at,
        "blind": task.blind,
        "note": task.note,
        "assignee": task.assignee.username if task.assignee_id else None,
        "decision": decision_seen(task.decision, sight, task=task),
    }


def decision_history(
    decision: Decision, sight: Sight, *, task: ReviewTask | None = None
) -> list[dict]:
    """What happened to the decision, as the viewer may see it: each event's seq, time, action
    and actor, never its payload (the intake's holds the model's answer and confidence, a
    review's the reviewer's outcome). Reads (*.viewed) are for auditors and left out. Through
    a known-answer task it shows what an ordinary audit sample's would: the decision's arrival
    and that task's own events, nothing of its settlement, its marking as gold or the other
    copies served."""
    if not sight.case:
        return []
    events = AuditEvent.objects.filter(object_type="decision", object_id=str(decision.pk))
    # In the order they were recorded, sealed or still staged (audit.sealer): a staged event
    # has no seq yet, and its time is when the change was made.
    events = events.exclude(action__endswith=".viewed").order_by("id")
    if task is not None and task.is_gold:
        events = [e for e in events if e.action == "decision.ingested" or _task_of(e) == task.pk]
    return [{"seq": e.seq, "time": e.when, "action": e.action, "actor": e.actor} for e in events]


def _task_of(event: AuditEvent) -> int | None:
    return json.loads(event.payload).get("task")


def decision_log(decision: Decision, sight: Sight, *, viewer: User | None = None) -> dict:
    """The decision's events as logged, each with its inclusion proof against the latest
    checkpoint (audit.selectors.object_proof) and, beside it, its action and actor. Canonical
    texts cannot be redacted (their hashes are what is proven), so they are for sights with
    `log` only: auditors, and the services whose decision it is; anyone else gets
    decision_history.

    A service is not told who on the staff did what: reads (`*.viewed`) are left out, and the
    events made by staff or by the system (whose payloads name reviewers) are given by leaf
    hash and proof alone, in the receipt's withheld form (`canonical: null`, which `python -m
    audit.verify` checks), their actor a pseudonym that stays the same for this service (and
    differs for another). Its own events and the affected person's are given in full."""
    if not sight.log:
        raise forbidden("The decision's log, payloads included, is for auditors and services.")
    proof = object_proof(object_type="decision", object_id=decision.pk)
    events = [_with_actor(event) for event in proof["events"]]
    if not sight.log_names:
        scope = viewer.get_username() if viewer is not None else ""
        events = [_by_hash(event, scope) for event in events if not _is_read(event)]
    return {**proof, "events": events}


def _with_actor(event: dict) -> dict:
    text = json.loads(event["canonical"])
    return {**event, "action": text["action"], "actor": text["actor"]}


def _is_read(event: dict) -> bool:
    return event["action"].endswith(".viewed")


# Actors whose events a service reads in full: services, and the affected person (who comes
# with the decision's reference, which the service holds).
_OPEN_ACTORS = ("service:", "person:")


def _by_hash(event: dict, scope: str) -> dict:
    if event["actor"].startswith(_OPEN_ACTORS):
        return event
    actor = event["actor"]
    if actor.startswith("user:"):
        actor = "staff:" + actor_pseudonym(actor, scope=scope)
    return {**event, "canonical": None, "actor": actor}


def actor_pseudonym(actor: str, *, scope: str) -> str:
    """A stable pseudonym for an actor, keyed by the server's secret and the reader: the same
    person gets the same one in everything this reader is shown, another reader cannot link
    them, and nobody without the key can tell who it is."""
    key = hashlib.sha256(f"oversight-actor-pseudonym\x00{settings.SECRET_KEY}".encode()).digest()
    message = f"{scope}\x00{actor}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:16]


# --- blind review --------------------------------------------------------------------------------

# Rule fields that would give the model's answer away in blind review.
_REVEALING_FIELDS = {"outcome", "confidence"}


def blind_routing(routing: dict) -> dict:
    """The routing record without what reveals the model's outcome or confidence: the reasons,
    and the names of the high-stakes rules that fired, except rules on the outcome or the
    confidence (that such a rule fired says what the model answered)."""
    high = next((c for c in routing.get("conditions", []) if c["name"] == "high_stakes"), None)
    fired = [rule for rule in (high or {}).get("rules", []) if rule["fired"]]
    rules = [rule["name"] for rule in fired if not _tests_the_answer(rule)]
    reasons = routing.get("reasons", [])
    if fired and not rules:
        # Only rules on the answer fired: that the case is high-stakes would say what it is.
        reasons = [reason for reason in reasons if reason != "high_stakes"]
    return {"reasons": reasons, "high_stakes_rules": rules}


def _tests_the_answer(rule: dict) -> bool:
    return any(c.get("field") in _REVEALING_FIELDS for c in rule.get("conditions", []))


def seen_reasons(routing: dict, *, blind: bool) -> list[str]:
    """The routing reasons a reviewer is shown: under blind review, those blind_routing keeps."""
    return blind_routing(routing)["reasons"] if blind else list(routing.get("reasons", []))


def task_priority(routing: dict, *, blind: bool) -> int:
    """A task's place in the queue, from the reasons its reviewer is shown: a blind task whose
    only high-stakes rules test the model's answer must not come first while the routing it
    shows says review_all (the queue's order would say what the routing does not)."""
    return routes.priority_of(seen_reasons(routing, blind=blind))


def gold_pose(decision: Decision, *, blind: bool, review_all: bool) -> list[str]:
    """The reasons a known-answer item's copies are shown with (GoldLabel.pose_tags): the
    decision's own as its copies' reviewers see them, with review_all when the policy reviews
    everything (every fresh task says so); when that leaves none, an ordinary audit sample's."""
    reasons = set(seen_reasons(decision.routing, blind=blind))
    if review_all:
        reasons.add("review_all")
    return [reason for reason in REASONS if reason in reasons] or ["random_audit"]


def gold_pose_of(decision: Decision) -> list[str]:
    """The reasons the known-answer item poses with (GoldLabel.pose_tags; for one marked
    before poses were kept, the decision's own as blind review shows them, or a sample's)."""
    try:
        tags = decision.gold.pose_tags
    except GoldLabel.DoesNotExist:
        tags = ""
    return [tag for tag in tags.split(",") if tag] or (
        blind_routing(decision.routing)["reasons"] or ["random_audit"]
    )


def reveals_model(task: ReviewTask, viewer: User) -> bool:
    """Whoever holds an unanswered blind task on a decision sees nothing of the model's answer
    to it, through whichever task (their own, a sibling) or endpoint they look."""
    if task.assignee_id == viewer.pk:
        # A reviewer holds at most one task per decision (a database constraint): this one.
        return not (task.blind and task.state == ReviewTask.State.CLAIMED)
    return task.decision_id not in decisions_hidden_from(viewer, [task.decision_id])


def decisions_hidden_from(viewer: User, decision_ids: list[int]) -> set[int]:
    """Of these decisions, those whose model answer the viewer may not see now (one query).

    A reviewer (senior or not) sees nothing of the model's answer on a decision that awaits
    blind review while they may still be given that review: they hold its blind task, or they
    have no task of their own on it yet (a senior reads every decision; peeking first and
    claiming after would defeat blind review). Once they answered, or hold a task that is not
    blind (an adjudication), they see it. Auditors and model owners are not blinded."""
    return _withheld(viewer, decision_ids)[0]


def decisions_posing_for(viewer: User, decision_ids: list[int]) -> set[int]:
    """Of these decisions, the known-answer items the viewer may be served a copy of (or holds
    one of, unanswered): shown to them as what the copies pose as (posing_q)."""
    return _withheld(viewer, decision_ids)[1]


def _withheld(viewer: User, decision_ids: list[int]) -> tuple[set[int], set[int]]:
    """(hidden, posing) of these decisions for the viewer, in one query."""
    hidden, posing = hidden_q(viewer), posing_q(viewer)
    if hidden is None or posing is None or not decision_ids:
        return set(), set()
    rows = (
        Decision.objects.filter(pk__in=decision_ids)
        .filter(hidden | posing)
        .annotate(
            is_hidden=ExpressionWrapper(hidden, output_field=BooleanField()),
            is_posing=ExpressionWrapper(posing, output_field=BooleanField()),
        )
        .values_list("pk", "is_hidden", "is_posing")
    )
    found = list(rows)
    return {pk for pk, h, _ in found if h}, {pk for pk, _, p in found if p}


_LIVE = (ReviewTask.State.OPEN, ReviewTask.State.CLAIMED)


def _awaiting(viewer: User, tasks: Q) -> Q:
    """Decisions with a live task of this sort that the viewer holds unanswered or may still
    be given: they have no task of their own on it, other than a claimed one of this sort."""
    live = ReviewTask.objects.filter(tasks, decision_id=OuterRef("pk"), state__in=_LIVE)
    own = ReviewTask.objects.filter(decision_id=OuterRef("pk"), assignee_id=viewer.pk).exclude(
        tasks & Q(state=ReviewTask.State.CLAIMED)
    )
    return Q(Exists(live)) & ~Q(Exists(own))


def hidden_q(viewer: User) -> Q | None:
    """The decisions whose model answer is hidden from the viewer (decisions_hidden_from), as
    a condition on decisions; None for a viewer who reviews nothing (nothing is)."""
    if not r.has_role(viewer, r.REVIEWER):
        return None
    return _awaiting(viewer, Q(blind=True))


def posing_q(viewer: User) -> Q | None:
    """The known-answer items the viewer may be served a copy of, or holds one of unanswered;
    None for a viewer who reviews nothing."""
    if not r.has_role(viewer, r.REVIEWER):
        return None
    return _awaiting(viewer, Q(is_gold=True))


def as_posed(decision: Decision) -> Decision:
    """A copy of a known-answer item as it poses to whoever may be served a copy (posing_q):
    awaiting review, nothing settled. For readers above this app that render a Decision (the
    notice); never saved."""
    posed = copy.copy(decision)
    posed.status, posed.final_outcome = Decision.Status.PENDING_REVIEW, ""
    posed.finalized_by, posed.finalized_at, posed.finalized_by_user_id = "", None, None
    posed.routed = True
    return posed


def decisions_answer_visible_to(user: User) -> QuerySet[Decision]:
    """The decisions whose model answer and settlement the user may learn in any form: those
    they may see, less those hidden from them by blind review and the known-answer items they
    may be served. Exports and reports count over these: a count is a way of seeing."""
    decisions = decisions_visible_to(user)
    hidden, posing = hidden_q(user), posing_q(user)
    if hidden is None or posing is None:
        return decisions
    return decisions.exclude(hidden | posing)


def shown_routing(task: ReviewTask, reveal: bool) -> dict:
    """The routing the reviewer sees. The random audit's draw and rate are left out (they are
    for auditors, and would tell a known-answer check from a real sample); a known-answer
    check on a decision nobody had to look at is shown as what it poses as: an audit sample."""
    routing = _without_draws(
        task.decision.routing if reveal else blind_routing(task.decision.routing)
    )
    if task.is_gold:
        return _posed(routing, gold_pose_of(task.decision))
    return routing


def _without_draws(routing: dict) -> dict:
    if "conditions" not in routing:
        return routing
    return {**routing, "conditions": [_without_draw(c) for c in routing["conditions"]]}


def _without_draw(condition: dict) -> dict:
    if condition.get("name") != "random_audit":
        return condition
    return {k: v for k, v in condition.items() if k not in ("draw", "rate")}


def _posed(routing: dict, reasons: list[str]) -> dict:
    """The routing record as a known-answer item shows it: fired for the reasons it poses with
    (its own as seen, or an ordinary sample's), as an ordinary decision's would be."""
    shown = {**routing, "reasons": reasons}
    if "conditions" in routing:
        shown["conditions"] = [
            {**c, "fired": c.get("name") in reasons} for c in routing["conditions"]
        ]
    return shown


# --- the review queue ------------------------------------------------------------------------

ELIGIBLE_SHOWN = 500


def _tasks_with_case() -> QuerySet[ReviewTask]:
    return ReviewTask.objects.select_related(
        "model", "decision__model", "decision__model_version", "assignee"
    ).defer("decision__model_version__artifact")


# A task with all a case needs (as _tasks_with_case selects it), as fixed SQL (core.rows): a
# claim's answer and every case page read one, and compiling the ORM's five-way join was most
# of that read's Python.
_T, _TM, _D, _DM = (
    Part(ReviewTask, "t"),
    Part(MLModel, "tm"),
    Part(Decision, "d"),
    Part(MLModel, "dm"),
)
_MV, _U = Part(ModelVersion, "mv", leave_out=("artifact",)), Part(User, "u")
_CASE_PARTS = (_T, _TM, _D, _DM, _MV, _U)
_TASK_WITH_CASE = (
    f"SELECT {columns(*_CASE_PARTS)} "  # noqa: S608 (constant names; values are parameters)
    f'FROM "{ReviewTask._meta.db_table}" t '
    f'JOIN "{MLModel._meta.db_table}" tm ON tm.id = t.model_id '
    f'JOIN "{Decision._meta.db_table}" d ON d.id = t.decision_id '
    f'JOIN "{MLModel._meta.db_table}" dm ON dm.id = d.model_id '
    f'LEFT JOIN "{ModelVersion._meta.db_table}" mv ON mv.id = d.model_version_id '
    f'LEFT JOIN "{User._meta.db_table}" u ON u.id = t.assignee_id '
    "WHERE t.id = %s"
)


def _task_with_case(task_id: int, assignee: User | None) -> ReviewTask | None:
    sql, params = _TASK_WITH_CASE, [task_id]
    if assignee is not None:
        sql, params = sql + " AND t.assignee_id = %s", [task_id, assignee.pk]
    rows = fetch(sql, params, _CASE_PARTS)
    if not rows:
        return None
    task, task_model, decision, decision_model, version, assignee_row = rows[0]
    decision.model, decision.model_version = decision_model, version
    task.model, task.decision, task.assignee = task_model, decision, assignee_row
    return task


def task_for(viewer: User, task_id: int) -> ReviewTask | None:
    """A task the viewer may open: one they hold or held, or any for seniors and auditors."""
    sees_all = r.has_role(viewer, r.SENIOR_REVIEWER, r.AUDITOR)
    task = _task_with_case(task_id, None if sees_all else viewer)
    if task is None or task.is_gold or task.assignee_id == viewer.pk:
        return task
    # A known-answer item shows its copies only, to whoever may be served one: its other
    # tasks (answered when it was settled) would tell it from a sample.
    return None if decisions_posing_for(viewer, [task.decision_id]) else task


def my_claims(viewer: User) -> QuerySet[ReviewTask]:
    """The tasks the viewer holds now, with all a case needs (no query per task)."""
    claims = _tasks_with_case().filter(state=ReviewTask.State.CLAIMED, assignee=viewer)
    return claims.order_by("lease_expires_at")


OVERDUE_SHOWN = 20


def eligible_tasks(
    reviewer: User,
    *,
    model: str | None = None,
    kind: str | None = None,
    expired_before: datetime | None = None,
) -> QuerySet[ReviewTask]:
    """Open tasks this reviewer may take, next first: highest priority, then earliest due.
    With `expired_before`, claimed tasks whose lease ran out before then too (a claim takes
    them over). On PostgreSQL a claim applies these rules in one statement of its own
    (reviews.services.claims._claim_sql); the queue's tests hold the two to the same rules."""
    live = Q(state=ReviewTask.State.OPEN)
    if expired_before is not None:
        live |= Q(state=ReviewTask.State.CLAIMED, lease_expires_at__lt=expired_before)
    tasks = ReviewTask.objects.filter(live)
    if not r.has_role(reviewer, r.SENIOR_REVIEWER):
        tasks = tasks.filter(senior_only=False)
    if model:
        tasks = tasks.filter(model__name=model)
    if kind:
        tasks = tasks.filter(kind=kind)
    # Nobody is given a task on a decision they hold or held a task of: answered, adjudicated,
    # escalated, or cut short when the decision settled (done and cancelled tasks keep their
    # assignee; only released and expired ones drop it, and their holder answered nothing).
    # So an appeal never goes to anyone who took part in the decision, gold copies included;
    # the database's one_task_per_reviewer_per_decision settles two claims made at once.
    # (An expired lease the reviewer held themselves is theirs to take again, as once reopened.)
    involved = ReviewTask.objects.filter(
        decision_id=OuterRef("decision_id"), assignee=reviewer
    ).exclude(pk=OuterRef("pk"))
    return tasks.exclude(Exists(involved)).order_by("-priority", "due_at", "id")


def took_part(decision_id: int, user: User, *, besides: int | None = None) -> bool:
    """Whether the user answered, adjudicated, escalated or holds any task of the decision
    (other than the task `besides`), or finalized it."""
    tasks = ReviewTask.objects.filter(decision_id=decision_id, assignee=user).exclude(pk=besides)
    finalized = Decision.objects.filter(pk=decision_id, finalized_by_user=user)
    return tasks.exists() or finalized.exists()


def queue_summary(viewer: User) -> dict:
    now = timezone.now()
    # Counting every task a reviewer may take means testing each against their history;
    # "more than enough" is all the page needs to say.
    eligible = eligible_tasks(viewer)[: ELIGIBLE_SHOWN + 1].count()
    overdue, overdue_count = _overdue(now)
    return {
        "counts": _counts(now),
        "eligible": eligible,
        "eligible_text": f"{ELIGIBLE_SHOWN:,}+" if eligible > ELIGIBLE_SHOWN else f"{eligible:,}",
        "my_claims": list(my_claims(viewer)),
        "overdue": overdue,
        "overdue_count": overdue_count,
    }


def _late(state: str, now: datetime) -> QuerySet[ReviewTask]:
    return ReviewTask.objects.filter(state=state, due_at__lt=now)


def _counts(now: datetime) -> list[dict]:
    """Open and overdue tasks per model and kind; overdue counts tasks still waiting and tasks
    claimed but not answered by their due time. Two queries, each on a partial index."""
    rows: dict[tuple[int, str], dict] = {}
    waiting = (
        ReviewTask.objects.filter(state=ReviewTask.State.OPEN)
        .values("model_id", "kind")
        .annotate(open=Count("id"), overdue=Count("id", filter=Q(due_at__lt=now)))
    )
    for row in waiting:
        rows[row["model_id"], row["kind"]] = {"open": row["open"], "overdue": row["overdue"]}
    late_claims = _late(ReviewTask.State.CLAIMED, now).values("model_id", "kind")
    for row in late_claims.annotate(n=Count("id")):
        rows.setdefault((row["model_id"], row["kind"]), {"open": 0, "overdue": 0})
        rows[row["model_id"], row["kind"]]["overdue"] += row["n"]
    names = dict(MLModel.objects.values_list("id", "name"))
    return [
        {"model": names.get(model_id), "kind": kind, **row}
        for (model_id, kind), row in sorted(rows.items())
    ]


def _overdue(now: datetime) -> tuple[list[ReviewTask], int]:
    """The most overdue tasks, waiting or claimed, and how many there are."""
    shown, count = [], 0
    for state in (ReviewTask.State.OPEN, ReviewTask.State.CLAIMED):
        late = _late(state, now)
        shown += late.select_related("model", "assignee").order_by("due_at")[:OVERDUE_SHOWN]
        count += late.count()
    return sorted(shown, key=lambda task: task.due_at)[:OVERDUE_SHOWN], count


# --- the answers a senior settles between ------------------------------------------------------


def answers_seen(
    decision: Decision, viewer: User, sight: Sight, *, copies: bool = False
) -> list[dict]:
    """The answers given on a decision, as a senior adjudicating it (or an auditor) reads them:
    who, the outcome, the reason code, the rationale, the time spent. For seniors and auditors
    who see the model's answer only: a reviewer's answer is never shown to another reviewer,
    whose own answer must stay independent. Known-answer items are read as they pose: to a
    viewer who may be served a copy, the answers given on copies (as an ordinary decision's
    would be) — and so, with `copies`, to the senior on a known-answer adjudication; to
    everyone else, the item's own answers, copies left out (they settle nothing)."""
    if not sight.model or not r.has_role(viewer, r.SENIOR_REVIEWER, r.AUDITOR):
        return []
    reviews = (
        Review.objects.filter(decision=decision, is_gold=copies or sight.pose)
        .select_related("reviewer")
        .order_by("created_at", "id")
    )
    return [
        {
            "reviewer": review.reviewer.username,
            "kind": review.kind,
            "verdict": review.verdict,
            "outcome": review.outcome,
            "agrees_with_model": review.agrees_with_model,
            "reason_code": review.reason_code,
            "rationale": review.rationale,
            "seconds_spent": review.seconds_spent,
            "model_hidden": review.model_hidden,
            "created_at": review.created_at,
        }
        for review in reviews
    ]
