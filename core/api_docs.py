"""What /api/docs/ shows beside each operation: its group (tag), a one-line summary, and an
example body for what it takes. Read by core.api_schema.OversightAutoSchema; an operation's
own extend_schema(tags=, summary=, examples=) wins over these. Paths and bodies are data, so
that this module, like the rest of core, knows no app."""

from __future__ import annotations

import re

# (a path pattern, its tag), first match wins: /api/docs/ shows the groups in this order.
TAGS = [
    (r"^/api/v1/models/[^/]+/(labels|retrain|webhook|deliveries)", "labels and retraining"),
    (r"^/api/v1/models/[^/]+/versions/[^/]+/promote/", "labels and retraining"),
    (r"^/api/v1/models", "models"),
    (r"^/api/v1/decisions/[^/]+/(appeal|access-code|notice)/", "appeals"),
    (r"^/api/v1/decisions", "decisions"),
    (r"^/api/v1/review-(tasks|stats)", "review tasks"),
    (r"^/api/v1/appeals", "appeals"),
    (r"^/api/v1/(audit|alerts)", "audit"),
    (r"^/api/v1/exports", "exports"),
    (r"^/api/v1/(reports|breakers)", "reports"),
]
ORDER = [
    "models",
    "decisions",
    "review tasks",
    "appeals",
    "audit",
    "exports",
    "reports",
    "labels and retraining",
]
TAG_DESCRIPTIONS = {
    "models": "The model registry: models, their cards, versions and routing policies.",
    "decisions": "Predictions in (one or a thousand at a time), decisions out, with proofs.",
    "review tasks": "The review queue: claim, renew, answer, escalate, release; statistics.",
    "appeals": "The affected person's side: access codes, notices, appeals and their decision.",
    "audit": "The tamper-evident log: checkpoints, inclusion and consistency proofs, alerts.",
    "exports": "Decision-log exports (CSV, JSON Lines, Parquet) with manifests and bundles.",
    "reports": "Group reports (override, selection, appeal rates), drift, the breaker.",
    "labels and retraining": "Human labels, their delivery, retraining and promotion.",
}

SUMMARIES = {
    ("GET", "/api/v1/alerts/"): "List alerts",
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge/"): "Acknowledge an alert",
    ("POST", "/api/v1/alerts/{alert_id}/resolve/"): "Resolve an alert",
    ("GET", "/api/v1/appeals/"): "List appeals",
    ("GET", "/api/v1/appeals/{appeal_id}/"): "Read an appeal",
    ("POST", "/api/v1/appeals/{appeal_id}/decision/"): "Decide an appeal (uphold or overturn)",
    ("GET", "/api/v1/audit/checkpoints/"): "List signed checkpoints",
    ("GET", "/api/v1/audit/checkpoints/latest/"): "The latest signed checkpoint",
    ("POST", "/api/v1/audit/checkpoints/{size}/cosignatures/"): "Give a witness's cosignature",
    ("GET", "/api/v1/audit/proofs/consistency/"): "Consistency proof between two tree sizes",
    ("GET", "/api/v1/audit/proofs/inclusion/"): "Inclusion proof of one event",
    ("GET", "/api/v1/audit/public-key/"): "The checkpoints' public key",
    ("GET", "/api/v1/breakers/{name}/"): "A model's review-all breaker",
    ("POST", "/api/v1/breakers/{name}/reset/"): "Reset a tripped breaker",
    ("GET", "/api/v1/decisions/"): "List decisions",
    ("POST", "/api/v1/decisions/"): "Send one prediction",
    ("GET", "/api/v1/decisions/{decision_id}/"): "Read a decision",
    ("POST", "/api/v1/decisions/{decision_id}/access-code/"): "Issue the person an access code",
    ("POST", "/api/v1/decisions/{decision_id}/appeal/"): "File an appeal for the person",
    ("POST", "/api/v1/decisions/{decision_id}/gold/"): "Mark a known-answer (gold) check",
    ("GET", "/api/v1/decisions/{decision_id}/notice/"): "The person's notice",
    ("GET", "/api/v1/decisions/{decision_id}/proof/"): "A decision's events with their proofs",
    ("POST", "/api/v1/decisions/bulk/"): "Send up to 1,000 predictions",
    ("POST", "/api/v1/exports/"): "Request a decision-log export",
    ("GET", "/api/v1/exports/{export_id}/"): "An export's progress",
    ("GET", "/api/v1/exports/{export_id}/download/"): "Download an export",
    ("GET", "/api/v1/models/"): "List models",
    ("POST", "/api/v1/models/"): "Register a model",
    ("GET", "/api/v1/models/{name}/"): "Read a model",
    ("GET", "/api/v1/models/{name}/card.md"): "The model card in Markdown",
    ("POST", "/api/v1/models/{name}/deliveries/{message_id}/resend/"): "Resend a dead delivery",
    ("GET", "/api/v1/models/{name}/labels/"): "The training store: delivered labels",
    ("GET", "/api/v1/models/{name}/labels.parquet"): "The labels as one Parquet file",
    ("GET", "/api/v1/models/{name}/policy/"): "The current routing policy",
    ("PUT", "/api/v1/models/{name}/policy/"): "Change the routing policy (a note is required)",
    ("GET", "/api/v1/models/{name}/retrain/"): "Retraining runs",
    ("POST", "/api/v1/models/{name}/retrain/"): "Retrain now",
    ("GET", "/api/v1/models/{name}/versions/"): "List versions",
    ("POST", "/api/v1/models/{name}/versions/"): "Upload a version (skops)",
    ("POST", "/api/v1/models/{name}/versions/{number}/promote/"): "Promote a version",
    ("GET", "/api/v1/models/{name}/webhook/"): "The label webhook",
    ("PUT", "/api/v1/models/{name}/webhook/"): "Set the label webhook",
    ("DELETE", "/api/v1/models/{name}/webhook/"): "Remove the label webhook",
    ("GET", "/api/v1/reports/drift/"): "Drift (PSI) of features and score",
    ("POST", "/api/v1/reports/evaluate/"): "Evaluate a model's alert conditions now",
    ("GET", "/api/v1/reports/overrides/"): "Override, appeal and overturn rates by group",
    ("GET", "/api/v1/reports/selection/"): "Selection rates by group",
    ("GET", "/api/v1/review-stats/"): "Reviewer statistics",
    ("GET", "/api/v1/review-tasks/"): "The tasks you hold",
    ("GET", "/api/v1/review-tasks/{task_id}/"): "Read a task",
    ("POST", "/api/v1/review-tasks/{task_id}/decision/"): "Answer a task",
    ("POST", "/api/v1/review-tasks/{task_id}/escalate/"): "Escalate a task to a senior",
    ("POST", "/api/v1/review-tasks/{task_id}/release/"): "Release a task",
    ("POST", "/api/v1/review-tasks/{task_id}/renew/"): "Renew a task's lease",
    ("POST", "/api/v1/review-tasks/claim/"): "Claim the next task",
}

_FEATURES = {
    "income": 72.0,
    "loan_amount": 180.0,
    "loan_to_value": 0.8,
    "housing_expense_ratio": 24.0,
    "debt_ratio": 33.0,
    "credit_history": "no_slow_payments",
    "mortgage_history": "no_late_payments",
    "public_record": False,
    "meets_guidelines": True,
    "self_employed": False,
    "unverifiable_info": False,
}
_DECISION = {
    "model": "mortgage-approval",
    "external_id": "application-2026-00042",
    "subject_ref": "s-7f3a9c21",
    "features": _FEATURES,
    "groups": {"race": "white", "sex": "female"},
}

MULTIPART = "multipart/form-data"

# (method, path) → [(example name, body[, media type])], request bodies only (JSON unless named).
EXAMPLES: dict[tuple[str, str], list[tuple]] = {
    ("POST", "/api/v1/models/{name}/versions/"): [
        (
            "a version with its data",
            {
                "artifact": "(the .skops file)",
                "metrics": '{"overall": {"n": 398, "accuracy": 0.91, "auc": 0.81}}',
                "training_ranges": '{"income": [0, 980], "public_record": [false, true]}',
                "training_data": "(a Parquet file: the features, `label`)",
                "notes": "Logistic regression, retrained on November's labels.",
            },
            MULTIPART,
        )
    ],
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge/"): [
        ("looking", {"note": "Looking into it with the model's owner."})
    ],
    ("POST", "/api/v1/alerts/{alert_id}/resolve/"): [
        ("resolved", {"note": "The income feed sent monthly figures for two days; fixed."})
    ],
    ("POST", "/api/v1/appeals/{appeal_id}/decision/"): [
        (
            "overturn",
            {
                "result": "overturned",
                "outcome": "approve",
                "reasons": "Your new contract shows a higher income; with it you meet "
                "our guidelines.",
            },
        ),
        (
            "uphold",
            {
                "result": "upheld",
                "reasons": "Your credit history records more than two slow payments.",
            },
        ),
    ],
    ("POST", "/api/v1/breakers/{name}/reset/"): [
        ("reset", {"note": "Checked the inputs: the shift was a one-off data fix."})
    ],
    ("POST", "/api/v1/decisions/"): [
        ("scored by Oversight", _DECISION),
        (
            "scored by the client",
            {
                **_DECISION,
                "external_id": "application-2026-00043",
                "outcome": "deny",
                "confidence": 0.71,
            },
        ),
    ],
    ("POST", "/api/v1/decisions/bulk/"): [
        (
            "two predictions",
            {"items": [_DECISION, {**_DECISION, "external_id": "application-2026-00044"}]},
        ),
    ],
    ("POST", "/api/v1/decisions/{decision_id}/appeal/"): [
        (
            "with a correction",
            {
                "grounds": "My income is 72, not 27: the form was misread.",
                "corrections": {"income": 72},
                "contact_email": "person@example.org",
            },
        ),
    ],
    ("POST", "/api/v1/decisions/{decision_id}/gold/"): [
        ("two copies", {"outcome": "approve", "copies": 2, "note": "Verified with the branch."})
    ],
    ("POST", "/api/v1/audit/checkpoints/{size}/cosignatures/"): [
        (
            "a C2SP cosignature/v1 line",
            {"cosignature": "— witness.example.org/w1 LEIY8wAAAABrDICdvcZl0AkplpVG7JvdBFRW1LM6"},
        )
    ],
    ("POST", "/api/v1/exports/"): [
        (
            "one model's routed decisions",
            {
                "format": "csv",
                "filters": {
                    "model": "mortgage-approval",
                    "routed": True,
                    "since": "2026-11-01T00:00:00+00:00",
                },
            },
        ),
        ("with the audit bundle", {"format": "jsonl", "include_bundle": True}),
    ],
    ("POST", "/api/v1/models/"): [
        (
            "a binary model",
            {
                "name": "mortgage-approval",
                "labels": ["approve", "deny"],
                "favourable_label": "approve",
                "features": [
                    {
                        "name": "income",
                        "type": "number",
                        "min": 0,
                        "max": 1000,
                        "actionable": True,
                        "unit": "$1000s/yr",
                        "description": "Applicant income",
                    },
                    {
                        "name": "public_record",
                        "type": "boolean",
                        "description": "A bankruptcy or other public record",
                    },
                ],
                "protected_attributes": ["race", "sex"],
                "card": {"intended_use": "Decision support for mortgage applications."},
                "policy": {"confidence_threshold": 0.75, "random_audit_rate": 5},
            },
        ),
    ],
    ("PUT", "/api/v1/models/{name}/policy/"): [
        (
            "a high-stakes rule",
            {
                "high_stakes": [
                    {
                        "name": "public-record",
                        "when": {"field": "public_record", "op": "eq", "value": True},
                    }
                ],
                "note": "Every application with a public record gets a person's look.",
            },
        ),
        (
            "two reviewers",
            {"reviewers_required": 2, "note": "A week of double review, to measure agreement."},
        ),
    ],
    ("POST", "/api/v1/models/{name}/versions/{number}/promote/"): [
        (
            "over the gate",
            {
                "justification": "The holdout is too small this week; checked by "
                "hand against last month's appeals."
            },
        ),
    ],
    ("PUT", "/api/v1/models/{name}/webhook/"): [
        ("a webhook", {"url": "https://training.example.org/labels", "secret": "s" * 32})
    ],
    ("POST", "/api/v1/reports/evaluate/"): [("one model", {"model": "mortgage-approval"})],
    ("POST", "/api/v1/review-tasks/{task_id}/decision/"): [
        ("agree", {"verdict": "agree"}),
        (
            "override",
            {
                "verdict": "override",
                "outcome": "approve",
                "reason_code": "model_error",
                "rationale": "Income was verified by phone; the form was misread.",
                "explanation_for_person": "We checked your income with you.",
            },
        ),
        ("blind review", {"outcome": "deny", "rationale": "Debt is above 60% of income."}),
    ],
    ("POST", "/api/v1/review-tasks/{task_id}/escalate/"): [
        ("unsure", {"note": "The applicant's documents contradict each other."})
    ],
    ("POST", "/api/v1/review-tasks/claim/"): [
        ("any task", {}),
        ("adjudications of one model", {"model": "mortgage-approval", "kind": "adjudication"}),
    ],
}


def tag_of(path: str) -> str | None:
    return next((tag for pattern, tag in TAGS if re.search(pattern, path)), None)
