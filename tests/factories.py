"""factory_boy factories for the common records, for tests that need rows rather than the story
that makes them (statistics over many reviews, a page over many decisions).

They write rows directly, without audit events: a test about what a service does (and logs)
goes through the service (tests/fixtures.py: register_tiny, decisions_ingest, claims)."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.auth.models import User
from django.utils import timezone
from factory.django import DjangoModelFactory

from core import roles as r
from models_registry.models import MLModel, RoutingPolicy
from reviews.models import Decision, Review, ReviewTask

PASSWORD = "correct-horse-battery"
TINY_FEATURES = [
    {"name": "income", "type": "number", "min": 0, "max": 500, "actionable": True,
     "description": "Income, $1000s"},
    {"name": "debt", "type": "number", "min": 0, "max": 100, "actionable": True},
    {"name": "years", "type": "integer", "min": 0, "max": 50},
    {"name": "history", "type": "category", "choices": ["good", "fair", "poor"]},
    {"name": "bankrupt", "type": "boolean"},
]  # fmt: skip
FEATURES = {"income": 120.0, "debt": 10.0, "years": 5, "history": "good", "bankrupt": False}


class UserFactory(DjangoModelFactory):
    """A person with a password (PASSWORD) and `roles` (role names; none by default)."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"person{n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return model_class.objects.create_user(*args, password=PASSWORD, **kwargs)

    @factory.post_generation
    def roles(user, create, extracted, **kwargs):
        if create and extracted:
            user.groups.set(r.groups(*extracted))


class MLModelFactory(DjangoModelFactory):
    """A registered model (the tiny schema, labels approve/deny) with its first policy."""

    class Meta:
        model = MLModel
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"model-{n}")
    labels = ["approve", "deny"]
    favourable_label = "approve"
    features = TINY_FEATURES
    protected_attributes = ["race", "sex"]
    owner = factory.SubFactory(UserFactory, roles=[r.MODEL_OWNER])
    created_by = factory.SelfAttribute("owner")
    created_at = factory.LazyFunction(timezone.now)
    policy = factory.RelatedFactory(
        "tests.factories.RoutingPolicyFactory", factory_related_name="model"
    )


class RoutingPolicyFactory(DjangoModelFactory):
    class Meta:
        model = RoutingPolicy

    model = factory.SubFactory(MLModelFactory, policy=None)
    version = 1
    created_at = factory.LazyFunction(timezone.now)


class DecisionFactory(DjangoModelFactory):
    """A decision the client scored itself, final at once unless told otherwise."""

    class Meta:
        model = Decision

    model = factory.SubFactory(MLModelFactory)
    external_id = factory.Sequence(lambda n: f"ext-{n:05d}")
    subject_ref = factory.Sequence(lambda n: f"s-{n}")
    features = factory.LazyFunction(lambda: dict(FEATURES))
    scored_by = Decision.ScoredBy.CLIENT
    model_outcome = "approve"
    confidence = 0.8
    probabilities = factory.LazyAttribute(
        lambda d: {label: d.confidence if label == d.model_outcome else round(1 - d.confidence, 6)
                   for label in ("approve", "deny")}
    )  # fmt: skip
    margin = factory.LazyAttribute(lambda d: round(abs(2 * d.confidence - 1), 6))
    policy_version = 1
    routing = factory.LazyFunction(lambda: {"reasons": [], "conditions": []})
    routed = False
    status = Decision.Status.FINAL
    final_outcome = factory.SelfAttribute("model_outcome")
    finalized_by = Decision.FinalizedBy.MODEL
    finalized_at = factory.LazyFunction(timezone.now)
    request_sha256 = factory.Sequence(lambda n: f"{n:064x}")
    received_at = factory.LazyFunction(timezone.now)


class ReviewTaskFactory(DjangoModelFactory):
    class Meta:
        model = ReviewTask

    decision = factory.SubFactory(DecisionFactory)
    model = factory.SelfAttribute("decision.model")
    kind = ReviewTask.Kind.INITIAL
    due_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=48))
    created_at = factory.LazyFunction(timezone.now)


class ReviewFactory(DjangoModelFactory):
    """A reviewer's answer, with the done task it answered."""

    class Meta:
        model = Review

    reviewer = factory.SubFactory(UserFactory, roles=[r.REVIEWER])
    decision = factory.SubFactory(DecisionFactory)
    kind = ReviewTask.Kind.INITIAL
    task = factory.SubFactory(
        ReviewTaskFactory,
        decision=factory.SelfAttribute("..decision"),
        kind=factory.SelfAttribute("..kind"),
        assignee=factory.SelfAttribute("..reviewer"),
        state=ReviewTask.State.DONE,
    )
    verdict = Review.Verdict.AGREE
    outcome = factory.SelfAttribute("decision.model_outcome")
    agrees_with_model = factory.LazyAttribute(lambda o: o.outcome == o.decision.model_outcome)
    seconds_spent = 10.0
    model_hidden = False
    created_at = factory.LazyFunction(timezone.now)
