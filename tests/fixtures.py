"""The cast (Alice and Bob review, Carol is senior, Dave audits, Erin owns models, Frank has
no role) and a small trained model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from django.contrib.auth.models import User
from rest_framework.test import APIClient
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from accounts.services import service_token_create
from core import roles as r
from models_registry import services as registry
from tests.factories import PASSWORD as PASSWORD  # the cast's password, for log-in tests
from tests.factories import TINY_FEATURES as TINY_FEATURES
from tests.factories import UserFactory


def make_user(username: str, *roles: str) -> User:
    return UserFactory(username=username, roles=roles)


@pytest.fixture
def alice(db) -> User:
    return make_user("alice", r.REVIEWER)


@pytest.fixture
def bob(db) -> User:
    return make_user("bob", r.REVIEWER)


@pytest.fixture
def carol(db) -> User:
    return make_user("carol", r.SENIOR_REVIEWER)


@pytest.fixture
def dave(db) -> User:
    return make_user("dave", r.AUDITOR)


@pytest.fixture
def erin(db) -> User:
    return make_user("erin", r.MODEL_OWNER)


@pytest.fixture
def frank(db) -> User:
    return make_user("frank")


@dataclass
class Service:
    user: User
    token: str

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {self.token}")
        return client


@pytest.fixture
def service(db) -> Service:
    token_row, token = service_token_create(name="scorer", actor="test")
    return Service(token_row.user, token)


@pytest.fixture
def other_service(db) -> Service:
    token_row, token = service_token_create(name="other-scorer", actor="test")
    return Service(token_row.user, token)


def api(user: User | None = None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


# --- a small model: approve when income is high and debt is low -------------------------------


def tiny_training_data(n: int = 600, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "income": rng.uniform(0, 200, n),
            "debt": rng.uniform(0, 60, n),
            "years": rng.integers(0, 30, n).astype(float),
            "history": rng.choice(["good", "fair", "poor"], n),
            "bankrupt": rng.random(n) < 0.1,
        }
    )
    score = (
        0.04 * X["income"]
        - 0.08 * X["debt"]
        + 0.05 * X["years"]
        - 1.5 * (X["history"] == "poor")
        - 2.0 * X["bankrupt"]
        + rng.normal(0, 0.8, n)
    )
    return X, np.where(score > 0.5, "approve", "deny")


def tiny_pipeline(classifier=None) -> Pipeline:
    X, y = tiny_training_data()
    X = X.astype({"bankrupt": float})
    pipeline = Pipeline(
        [
            ("prepare", ColumnTransformer([
                ("scale", StandardScaler(), ["income", "debt", "years", "bankrupt"]),
                ("encode", OneHotEncoder(handle_unknown="ignore"), ["history"]),
            ])),
            ("classify", LogisticRegression(max_iter=1000) if classifier is None else classifier),
        ]
    )  # fmt: skip
    return pipeline.fit(X, y)


@pytest.fixture(scope="session")
def tiny_artifact() -> bytes:
    return sio.dumps(tiny_pipeline())


def register_tiny(owner: User, services: list[User], name: str = "tiny", **policy) -> object:
    return registry.model_register(
        name=name,
        labels=["approve", "deny"],
        favourable_label="approve",
        features=TINY_FEATURES,
        protected_attributes=["race", "sex"],
        card={"intended_use": "Tests.", "limitations": "Synthetic data."},
        owner=owner,
        services=services,
        policy={"confidence_threshold": 0.0, "random_audit_rate": 0.0, **policy},
        actor=owner,
    )


@pytest.fixture
def tiny_model(erin, service, tiny_artifact):
    """Registered, with version 1 as champion; routes nothing unless a test changes the policy."""
    model = register_tiny(erin, [service.user])
    version = registry.version_upload(model=model, artifact=tiny_artifact, actor=erin)
    registry.version_promote(version=version, actor=erin)
    return model


def item(n: int = 1, **overrides) -> dict:
    body = {
        "model": "tiny",
        "external_id": f"app-{n:05d}",
        "subject_ref": f"s-{n}",
        "features": {
            "income": 120.0,
            "debt": 10.0,
            "years": 5,
            "history": "good",
            "bankrupt": False,
        },
        "groups": {"race": "white", "sex": "female"},
    }
    for key, value in overrides.items():
        if key == "features":
            body["features"] = {**body["features"], **value}
        else:
            body[key] = value
    return body
