"""Frames for training and evaluation: a version's uploaded data, human labels, the holdout."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from core.lazy import lazy_module
from learning.models import LabelRecord
from models_registry import datasets
from models_registry.artifacts import sha256
from models_registry.models import MLModel, ModelVersion, TrainingData
from models_registry.scoring import frame
from reviews.models import ProtectedAttribute

np = lazy_module("numpy")
pd = lazy_module("pandas")


@dataclass
class Rows:
    X: pd.DataFrame
    y: np.ndarray
    groups: pd.DataFrame
    weights: np.ndarray
    label_ids: list[int] = field(default_factory=list)
    from_file: int = 0

    @property
    def n(self) -> int:
        return len(self.y)


def empty(model: MLModel) -> Rows:
    return Rows(
        frame(model.features, []),
        np.array([], dtype=object),
        pd.DataFrame({a: pd.Series(dtype=object) for a in model.protected_attributes}),
        np.array([], dtype=float),
    )


def concat(model: MLModel, *parts: Rows) -> Rows:
    parts = tuple(p for p in parts if p.n)
    if not parts:
        return empty(model)
    return Rows(
        pd.concat([p.X for p in parts], ignore_index=True),
        np.concatenate([p.y for p in parts]),
        pd.concat([p.groups for p in parts], ignore_index=True),
        np.concatenate([p.weights for p in parts]),
        [i for p in parts for i in p.label_ids],
        sum(p.from_file for p in parts),
    )


def model_frame(model: MLModel, table: pd.DataFrame) -> pd.DataFrame:
    """Feature columns typed as scoring types them (models_registry.scoring.frame): numbers
    and booleans as floats (missing: NaN), categories as objects."""
    columns = {}
    for spec in model.features:
        name = spec["name"]
        values = table[name] if name in table else pd.Series([None] * len(table))
        missing = values.isna().to_numpy()
        if spec["type"] == "category":
            objects = values.to_numpy(dtype=object)
            columns[name] = pd.Series(np.where(missing, None, objects), dtype=object)
        else:
            numbers = np.where(missing, 0, values.to_numpy(dtype=object)).astype(float)
            columns[name] = np.where(missing, np.nan, numbers)
    return pd.DataFrame(columns, columns=model.feature_names)


def base_dataset(version: ModelVersion, split: str) -> TrainingData | None:
    """The uploaded data of a version, or of its nearest ancestor that has some: a retrained
    version is fitted on its ancestor's base data plus labels, never on labels twice."""
    seen = set()
    while version is not None and version.pk not in seen:
        seen.add(version.pk)
        dataset = TrainingData.objects.filter(version=version, split=split).first()
        if dataset is not None:
            return dataset
        version = version.parent
    return None


def file_rows(model: MLModel, dataset: TrainingData | None) -> Rows:
    if dataset is None:
        return empty(model)
    data = bytes(TrainingData.objects.values_list("data", flat=True).get(pk=dataset.pk))
    if sha256(data) != dataset.sha256:
        raise RuntimeError(
            f"{dataset.split} data of version {dataset.version_id} does not match its sha256"
        )
    table = datasets.read_frame(data)
    groups = pd.DataFrame(
        {
            a: (table[a].astype(object) if a in table else pd.Series([None] * len(table)))
            for a in model.protected_attributes
        }
    )
    return Rows(
        model_frame(model, table),
        table[datasets.LABEL].astype(str).to_numpy(dtype=object),
        groups.reset_index(drop=True),
        np.ones(len(table)),
        from_file=len(table),
    )


def label_rows(model: MLModel, labels: list[LabelRecord]) -> Rows:
    if not labels:
        return empty(model)
    protected: dict[int, dict[str, str]] = {}
    for decision_id, name, value in ProtectedAttribute.objects.filter(
        decision_id__in=[label.decision_id for label in labels]
    ).values_list("decision_id", "name", "value"):
        protected.setdefault(decision_id, {})[name] = value
    groups = pd.DataFrame(
        {
            a: pd.Series([protected.get(lb.decision_id, {}).get(a) for lb in labels], dtype=object)
            for a in model.protected_attributes
        }
    )
    return Rows(
        frame(model.features, [label.features for label in labels]),
        np.array([label.label for label in labels], dtype=object),
        groups,
        np.array([label.weight for label in labels], dtype=float),
        [label.pk for label in labels],
    )


def current_labels(model: MLModel, *, holdout: bool, up_to: int | None = None):
    labels = LabelRecord.objects.filter(model=model, is_current=True, holdout=holdout)
    if up_to is not None:
        labels = labels.filter(pk__lte=up_to)
    return labels.order_by("pk")


def holdout(model: MLModel, champion: ModelVersion | None) -> Rows:
    """Human labels of random-audit decisions in the holdout half, plus the uploaded test
    split of the champion's base data, if any."""
    labels = label_rows(model, list(current_labels(model, holdout=True)))
    test = file_rows(model, base_dataset(champion, "test")) if champion else empty(model)
    return concat(model, labels, test)


def digest(ids: list[int]) -> str:
    return hashlib.sha256(",".join(str(i) for i in sorted(ids)).encode()).hexdigest()
