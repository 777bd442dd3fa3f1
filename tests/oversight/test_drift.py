"""Drift: PSI per feature and of the score, counted by the database into the baseline's bins,
checked against numpy on the same values."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from models_registry import drift_baseline as drift_shape
from models_registry import services as registry
from oversight import stats
from oversight.drift import version_drift
from reviews.models import Decision
from tests.fixtures import TINY_FEATURES, register_tiny, tiny_training_data

pytestmark = pytest.mark.django_db

BASELINE = {
    "rows": 100,
    "features": {
        "income": {"edges": [50.0, 100.0, 150.0], "proportions": [0.25, 0.25, 0.25, 0.25]},
        "years": {"edges": [5, 10], "proportions": [0.3, 0.3, 0.4]},
        "history": {"proportions": {"good": 0.5, "fair": 0.3, "poor": 0.2}},
        "bankrupt": {"proportions": {"true": 0.1, "false": 0.9}},
    },
    "score": {"edges": [0.5], "proportions": [0.4, 0.6]},
}


def _store(model, version, rows, *, days_ago: float = 1) -> None:
    when = timezone.now() - timedelta(days=days_ago)
    Decision.objects.bulk_create(
        [
            Decision(
                model=model, model_version=version, external_id=f"d-{days_ago}-{i}",
                subject_ref="s", features=features, scored_by="oversight",
                model_outcome="approve", confidence=0.9,
                probabilities={"approve": score, "deny": 1 - score},
                routed=False, status="final", final_outcome="approve", finalized_by="model",
                request_sha256="0" * 64, received_at=when,
            )
            for i, (features, score) in enumerate(rows)
        ]
    )  # fmt: skip


@pytest.fixture
def version(erin, tiny_artifact):
    model = register_tiny(erin, [])
    return registry.version_upload(
        model=model, artifact=tiny_artifact, actor=erin, drift_baseline=BASELINE
    )


def _rows(n: int, seed: int, shift: float = 0.0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        features = {
            "income": float(rng.choice([10.0, 50.0, 75.0, 100.0, 149.99, 150.0, 190.0])) + shift,
            "debt": 10.0,
            "years": int(rng.integers(0, 20)),
            "history": str(
                rng.choice(["good", "fair", "poor", "unheard"], p=[0.5, 0.3, 0.15, 0.05])
            ),
            "bankrupt": bool(rng.random() < 0.2),
        }
        if i % 10 == 0:
            del features["years"]  # a missing value
        rows.append((features, float(rng.random())))
    return rows


def test_psi_of_every_feature_and_the_score_matches_numpy(version, settings):
    settings.DRIFT_MIN_DECISIONS = 50
    rows = _rows(300, seed=4)
    _store(version.model, version, rows)
    _store(version.model, version, _rows(40, seed=5), days_ago=30)  # outside the window
    result = version_drift(version)
    assert result["status"] == "ok" and result["decisions"] == 300
    got = {f["feature"]: f for f in result["features"]}
    assert set(got) == {"income", "years", "history", "bankrupt", "score"}

    for name in ("income", "years"):
        spec = BASELINE["features"][name]
        values = np.array([f[name] for f, _ in rows if name in f], dtype=float)
        counts = np.bincount(
            np.searchsorted(spec["edges"], values, side="right"), minlength=len(spec["edges"]) + 1
        )
        assert [b["count"] for b in got[name]["bins"]] == counts.tolist()
        assert abs(got[name]["psi"] - stats.psi(spec["proportions"], counts.tolist())) < 1e-12
    assert got["years"]["missing"] == 30 and got["income"]["missing"] == 0

    history = [f["history"] for f, _ in rows]
    bins = {b["bin"]: b["count"] for b in got["history"]["bins"]}
    assert bins == {v: history.count(v) for v in ("good", "fair", "poor")} | {
        "(other)": history.count("unheard")
    }
    expected = stats.psi(
        [0.5, 0.3, 0.2, 0.0], [bins["good"], bins["fair"], bins["poor"], bins["(other)"]]
    )
    assert abs(got["history"]["psi"] - expected) < 1e-12

    bankrupt = sum(f["bankrupt"] for f, _ in rows)
    bins = {b["bin"]: b["count"] for b in got["bankrupt"]["bins"]}
    assert bins == {"true": bankrupt, "false": 300 - bankrupt}

    scores = np.array([s for _, s in rows])
    low = int((scores < 0.5).sum())
    assert [b["count"] for b in got["score"]["bins"]] == [low, 300 - low]
    by_hand = sum(
        (a - e) * math.log(a / e) for a, e in ((low / 300, 0.4), ((300 - low) / 300, 0.6))
    )
    assert abs(got["score"]["psi"] - by_hand) < 1e-12
    assert result["worst"] == max(got.values(), key=lambda f: f["psi"])["feature"]


def test_a_shift_shows_as_drift_past_the_trip_threshold(version, settings):
    settings.DRIFT_MIN_DECISIONS = 50
    _store(version.model, version, _rows(200, seed=6, shift=60.0))
    income = next(f for f in version_drift(version)["features"] if f["feature"] == "income")
    assert income["psi"] > settings.DRIFT_PSI_TRIP and income["trip"] and income["alert"]


def test_too_few_decisions_are_not_measured(version, settings):
    settings.DRIFT_MIN_DECISIONS = 100
    _store(version.model, version, _rows(99, seed=7))
    result = version_drift(version)
    assert result["status"] == "too_few" and result["decisions"] == 99 and result["features"] == []


def test_a_version_without_a_drift_baseline_is_reported_as_such(tiny_model):
    result = version_drift(tiny_model.versions.get())
    assert result["status"] == "no_baseline" and result["max_psi"] is None


def test_a_baseline_built_from_training_data_sees_no_drift_in_the_same_data(
    erin, tiny_artifact, settings
):
    settings.DRIFT_MIN_DECISIONS = 50
    frame, _ = tiny_training_data(n=600, seed=3)
    baseline = drift_shape.build(frame, TINY_FEATURES, scores=np.linspace(0, 1, 600))
    model = register_tiny(erin, [])
    version = registry.version_upload(
        model=model, artifact=tiny_artifact, actor=erin, drift_baseline=baseline
    )
    records = frame.to_dict("records")
    rows = [
        (
            {
                k: (bool(v) if k == "bankrupt" else int(v) if k == "years" else v)
                for k, v in r.items()
            },
            s,
        )
        for r, s in zip(records, np.linspace(0, 1, 600), strict=True)
    ]
    _store(model, version, rows)
    result = version_drift(version)
    assert result["status"] == "ok"
    assert all(f["psi"] < 1e-9 for f in result["features"]), [
        (f["feature"], f["psi"]) for f in result["features"]
    ]
