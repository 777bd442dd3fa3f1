"""A version's drift baseline: its shape, checked on upload, and the builder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from models_registry import drift_baseline as drift_shape
from models_registry.models import ModelVersion
from tests.fixtures import TINY_FEATURES, api, register_tiny, tiny_training_data

GOOD = {
    "rows": 600,
    "features": {
        "income": {"edges": [50, 100], "proportions": [0.3, 0.4, 0.3]},
        "history": {"proportions": {"good": 0.5, "fair": 0.3, "poor": 0.2}},
        "bankrupt": {"proportions": {"true": 0.1, "false": 0.9}},
    },
    "score": {"edges": [0.5], "proportions": [0.4, 0.6]},
}


def _upload(client, artifact: bytes, **fields):
    data = {"artifact": SimpleUploadedFile("model.skops", artifact), **fields}
    return client.post("/api/v1/models/tiny/versions/", data, format="multipart")


@pytest.mark.django_db
def test_an_owner_uploads_a_version_with_its_drift_baseline(erin, tiny_artifact):
    register_tiny(erin, [])
    response = _upload(api(erin), tiny_artifact, drift_baseline=json.dumps(GOOD))
    assert response.status_code == 201, response.json()
    assert response.json()["drift_baseline"] == GOOD
    assert ModelVersion.objects.get().drift_baseline == GOOD


@pytest.mark.django_db
def test_a_version_without_one_has_an_empty_drift_baseline(erin, tiny_artifact):
    register_tiny(erin, [])
    assert _upload(api(erin), tiny_artifact).json()["drift_baseline"] == {}


@pytest.mark.django_db
def test_a_bad_drift_baseline_is_refused_naming_every_fault(erin, tiny_artifact):
    register_tiny(erin, [])
    bad = {
        "rows": 0,
        "bins": 3,
        "features": {
            "income": {"edges": [100, 50], "proportions": [0.3, 0.4, 0.3]},
            "debt": {"edges": [1], "proportions": [0.5, 0.6]},
            "years": {"edges": [1, 2], "proportions": [1.0]},
            "history": {"proportions": {"good": 0.5, "excellent": 0.5}},
            "bankrupt": {"proportions": {"true": -0.1, "false": 1.1}},
            "colour": {"proportions": {"red": 1}},
        },
        "score": {"edges": [0.5]},
    }
    response = _upload(api(erin), tiny_artifact, drift_baseline=json.dumps(bad))
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields) == {
        "drift_baseline.rows",
        "drift_baseline.bins",
        "drift_baseline.features.income.edges",
        "drift_baseline.features.debt.proportions",
        "drift_baseline.features.years.proportions",
        "drift_baseline.features.history.proportions",
        "drift_baseline.features.bankrupt.proportions",
        "drift_baseline.features.colour",
        "drift_baseline.score",
    }
    assert "sum to 1" in fields["drift_baseline.features.debt.proportions"][0]
    assert "excellent" in fields["drift_baseline.features.history.proportions"][0]
    assert ModelVersion.objects.count() == 0
    not_json = _upload(api(erin), tiny_artifact, drift_baseline="{")
    assert not_json.status_code == 400


def test_the_builder_makes_deciles_and_shares_that_pass_the_check():
    frame, _ = tiny_training_data(n=600, seed=3)
    baseline = drift_shape.build(frame, TINY_FEATURES, scores=[i / 599 for i in range(600)])
    specs = [{**spec, "required": True} for spec in TINY_FEATURES]
    assert drift_shape.check(baseline, specs) == {}
    assert baseline["rows"] == 600
    income = baseline["features"]["income"]
    assert len(income["edges"]) == 9
    assert all(abs(share - 0.1) < 0.01 for share in income["proportions"])
    assert set(baseline["features"]["bankrupt"]["proportions"]) == {"true", "false"}
    assert abs(sum(baseline["features"]["history"]["proportions"].values()) - 1) < 1e-12
    assert len(baseline["score"]["edges"]) == 9


def test_a_constant_column_has_no_bins():
    assert drift_shape.numeric_bins(np.array([3.0, 3.0, 3.0]), 10) is None
