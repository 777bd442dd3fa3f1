"""Reads of the reviewer's workspace around the case page: the tasks one holds, the seniors'
own queues (adjudications, appeals), one's recent answers, and the list of open and claimed
tasks that seniors and auditors search. Every decision they show is read through
reviews.selectors (decision_seen with the viewer's sight), never handed over as a model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.utils import timezone

from core import roles as r
from reviews import selectors
from reviews.models import REASONS, Decision, Review, ReviewTask
from reviews.presentation import KIND_WORDS

State, Kind = ReviewTask.State, ReviewTask.Kind
WAITING_SHOWN = selectors.ELIGIBLE_SHOWN
LIST_SHOWN = 100
RECENT_SHOWN = 15


def oldest_held(viewer: User, *, kind: str | None = None) -> ReviewTask | None:
    """The task the viewer has held longest with a live lease (of this kind, if given):
    "Start reviewing" goes back to it before claiming anything new."""
    held = ReviewTask.objects.filter(
        state=State.CLAIMED, assignee=viewer, lease_expires_at__gt=timezone.now()
    )
    if kind:
        held = held.filter(kind=kind)
    return held.order_by("claimed_at", "id").first()


def held_tasks(viewer: User) -> list[dict]:
    """The tasks the viewer holds, oldest claim first, named as the case page names them."""
    rows = selectors.my_claims(viewer).order_by("claimed_at", "id")
    return [
        {
            "id": task.pk,
            "decision": task.decision_id,
            "model": task.model.name,
            "kind": task.kind,
            "kind_display": KIND_WORDS.get(task.kind, task.kind),
            "claimed_at": task.claimed_at,
            "lease_expires_at": task.lease_expires_at,
        }
        for task in rows
    ]


def senior_queues(viewer: User) -> list[dict]:
    """A senior's own ways in: adjudications and appeals they may take, how many wait (up to
    WAITING_SHOWN) and since when the oldest waits."""
    if not r.has_role(viewer, r.SENIOR_REVIEWER):
        return []
    queues = []
    for kind, title in ((Kind.ADJUDICATION, "Adjudicate"), (Kind.APPEAL, "Appeals")):
        eligible = selectors.eligible_tasks(viewer, kind=kind)
        waiting = eligible[: WAITING_SHOWN + 1].count()
        oldest = eligible.order_by("created_at").values_list("created_at", flat=True).first()
        queues.append(
            {
                "kind": kind,
                "title": title,
                "waiting": waiting,
                "waiting_text": _count_text(waiting),
                "oldest": oldest,
                "held": oldest_held(viewer, kind=kind) is not None,
            }
        )
    return queues


def _count_text(count: int) -> str:
    return f"{WAITING_SHOWN:,}+" if count > WAITING_SHOWN else f"{count:,}"


def recent_answers(viewer: User) -> list[dict]:
    """The viewer's own latest answers, read-only: the case, their outcome, when."""
    reviews = (
        Review.objects.filter(reviewer=viewer)
        .select_related("decision__model")
        .order_by("-created_at", "-id")[:RECENT_SHOWN]
    )
    return [
        {
            "task": review.task_id,
            "decision": review.decision_id,
            "model": review.decision.model.name,
            "kind": review.kind,
            "kind_display": KIND_WORDS.get(review.kind, review.kind),
            "verdict": review.verdict,
            "outcome": review.outcome,
            "reason_code": review.reason_code,
            "seconds_spent": review.seconds_spent,
            "created_at": review.created_at,
        }
        for review in reviews
    ]


# --- the task list of seniors and auditors -------------------------------------------------------


@dataclass(frozen=True)
class TaskFilters:
    model: str = ""
    kind: str = ""
    reason: str = ""
    overdue: bool | None = None
    state: str = ""
    find: str = ""  # a decision id, or an external id


def may_list_tasks(viewer: User) -> bool:
    return r.has_role(viewer, r.SENIOR_REVIEWER, r.AUDITOR)


def task_list(viewer: User, filters: TaskFilters) -> dict:
    """Open and claimed tasks, earliest due first, with their decisions as the viewer may see
    them. Every filter matches what the viewer is shown (selectors.seen_as_q): a reason is
    matched against the reasons a blind viewer's record shows, and a known-answer copy poses,
    to whoever may be served one, as the ordinary task it looks like (listed, with the reasons
    its copies show, never marked), so that neither a filter nor the list tells them apart."""
    tasks = _filtered(viewer, filters)
    rows = list(tasks.order_by("due_at", "id")[: LIST_SHOWN + 1])
    more = len(rows) > LIST_SHOWN
    rows = rows[:LIST_SHOWN]
    sights = selectors.sights_of(viewer, [task.decision_id for task in rows])
    marks_gold = not r.has_role(viewer, r.REVIEWER)
    now = timezone.now()
    shown = []
    for task in rows:
        seen = selectors.decision_seen(task.decision, sights[task.decision_id], tasks=False)
        reasons = seen.get("routing", {}).get("reasons", [])
        shown.append(_row(task, seen, reasons, now, gold=marks_gold and task.is_gold))
    return {"rows": shown, "more": more, "shown": len(shown)}


def _filtered(viewer: User, filters: TaskFilters) -> QuerySet[ReviewTask]:
    tasks = ReviewTask.objects.filter(state__in=[State.OPEN, State.CLAIMED]).select_related(
        "model", "assignee", "decision__model", "decision__model_version"
    )
    tasks = tasks.defer("decision__model_version__artifact")
    if filters.state:
        tasks = tasks.filter(state=filters.state)
    if filters.model:
        tasks = tasks.filter(model__name=filters.model)
    if filters.kind:
        tasks = tasks.filter(kind=filters.kind)
    if filters.reason:
        seen = Decision.objects.filter(selectors.seen_as_q(viewer, reason=filters.reason))
        tasks = tasks.filter(decision__in=seen.values("pk"))
    if filters.overdue is not None:
        late = Q(due_at__lt=timezone.now())
        tasks = tasks.filter(late) if filters.overdue else tasks.exclude(late)
    if filters.find:
        found = Q(decision__external_id=filters.find)
        if filters.find.isascii() and filters.find.isdigit() and len(filters.find) < 18:
            found |= Q(decision_id=int(filters.find))
        tasks = tasks.filter(found)
    return tasks


def _row(task: ReviewTask, seen: dict, reasons: list[str], now: datetime, *, gold: bool) -> dict:
    return {
        "id": task.pk,
        "decision": seen["id"],
        "external_id": seen.get("external_id", ""),
        "model": task.model.name,
        "kind": task.kind,
        "kind_display": KIND_WORDS.get(task.kind, task.kind),
        "state": task.state,
        "assignee": task.assignee.username if task.assignee_id else "",
        "reasons": reasons,
        "reasons_text": ", ".join(reason.replace("_", " ") for reason in reasons),
        "gold": gold,
        "created_at": task.created_at,
        "due_at": task.due_at,
        "overdue": task.due_at < now,
    }


REASON_CHOICES = [(reason, reason.replace("_", " ")) for reason in REASONS]
