"""The demo's side of appeals: decisions with access codes a newcomer can try on the portal
(/my-decision/), and appeals in every state: submitted, in review, upheld, overturned and
withdrawn. Everything goes through the appeals services, as the portal and the API do.

Works whether or not other parts of the demo reviewed decisions: it uses decisions the model
settled alone (nobody took part in them, so Carol may decide their appeals), and, when there
is one, a decision a reviewer overrode (its notice gives the reviewer's reason). Idempotent:
appeals are filed once, and the known demo codes are issued again only when they no longer
match (printed on purpose, like the demo's passwords; a real code is random and shown once)."""

from __future__ import annotations

from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import User
from django.db.models import F

from appeals import codes, services
from appeals.models import Appeal, DecisionAccess
from models_registry.models import MLModel
from reviews.models import Decision
from reviews.services import task_claim_next

ACTOR = "command:load_demo"

# What becomes of each demo appeal, in the order they are filed.
STATES = ["upheld", "overturned", "in_review", "submitted", "withdrawn"]
GROUNDS = {
    "upheld": "I was told my credit history was the problem, but I have never missed a "
    "payment. Please have a person look at it.",
    "overturned": "My income went up last year: my new contract is attached to my letter. "
    "The income you used is out of date.",
    "in_review": "The loan-to-value figure is wrong: the purchase price was higher than the "
    "one you used.",
    "submitted": "I do not understand why I was refused; my debts are small.",
    "withdrawn": "I think the debt ratio is wrong.",
}
REASONS = {
    "upheld": "We checked your credit history with you in mind: it records more than two "
    "slow payments in the last two years, which our lending guidelines do not allow. The "
    "decision stands.",
    "overturned": "Your new contract shows a higher income than the one we used. With it, "
    "your application meets our guidelines: the decision is changed to approve.",
}


def _code(n: int) -> str:
    """Known demo codes, from the code alphabet: TRY2-SEE3-MY4N, …"""
    return f"TRY2SEE3MY{codes.ALPHABET[n]}{codes.ALPHABET[n + 10]}"


def _by_model(model: MLModel, outcome: str):
    return Decision.objects.filter(
        model=model, finalized_by=Decision.FinalizedBy.MODEL, final_outcome=outcome
    ).order_by("pk")


def _with_code(decision: Decision, n: int) -> dict:
    code = _code(n)
    access = DecisionAccess.objects.filter(decision=decision).first()
    if access is None or not check_password(code, access.code_hash):
        access = services.access_code_issue(decision=decision, actor=ACTOR, code=code).access
    return {
        "decision": decision.pk,
        "reference": codes.show_reference(access.reference),
        "access_code": codes.show_code(code),
    }


def _file_appeals(model: MLModel, carol: User) -> list[Appeal]:
    appealed = list(Appeal.objects.filter(decision__model=model).order_by("pk"))
    if appealed:
        return appealed
    denied = _by_model(model, "deny")[1 : 1 + len(STATES)]
    appeals = [
        services.appeal_file(
            decision=decision,
            grounds=GROUNDS[state],
            corrections={"income": round(decision.features["income"] * 1.4, 1)}
            if state == "overturned"
            else {},
            via=Appeal.Via.PORTAL,
            actor="person:demo",
        )
        for decision, state in zip(denied, STATES, strict=False)
    ]
    for appeal, state in zip(appeals, STATES, strict=False):
        if state == "withdrawn":
            services.appeal_withdraw(appeal_id=appeal.pk, actor="person:demo")
    for appeal, state in zip(appeals, STATES, strict=False):
        if state not in ("upheld", "overturned", "in_review"):
            continue
        # Served in the order filed (same priority, earlier due first).
        task = task_claim_next(reviewer=carol, model=model.name, kind="appeal")
        if task is None or task.pk != appeal.task_id:
            break  # someone else's appeal is waiting first: leave the rest as filed
        if state != "in_review":
            services.appeal_resolve(
                appeal_id=appeal.pk,
                senior=carol,
                result=state,
                outcome="approve" if state == "overturned" else None,
                reasons=REASONS[state],
            )
    return appeals


def load(model: MLModel) -> list[dict]:
    """Access codes for the demo's person-facing decisions, as [{"reference", "access_code",
    "what"}], after filing the demo's appeals (once)."""
    carol = User.objects.get(username="carol")
    appeals = _file_appeals(model, carol)
    shown: list[tuple[Decision, str]] = []
    untouched = _by_model(model, "deny").exclude(appeal__isnull=False).first()
    if untouched is not None:
        shown.append((untouched, "denied by the model alone: read it, appeal it"))
    approved = _by_model(model, "approve").first()
    if approved is not None:
        shown.append((approved, "approved by the model alone"))
    overridden = (
        Decision.objects.filter(model=model, finalized_by=Decision.FinalizedBy.REVIEWER)
        .exclude(final_outcome=F("model_outcome"))
        .order_by("pk")
        .first()
    )
    if overridden is not None:
        shown.append((overridden, "a reviewer changed the model's outcome"))
    states = {a.pk: a for a in Appeal.objects.filter(pk__in=[a.pk for a in appeals])}
    shown += [
        (states[a.pk].decision, f"appeal {states[a.pk].get_status_display().lower()}")
        for a in appeals
    ]
    return [{**_with_code(decision, n), "what": what} for n, (decision, what) in enumerate(shown)]
