"""Training and test data uploaded with a version: Parquet files checked against the model's
feature schema, so that retraining can trust every row it reads back.

A file has one column per schema feature (optional features may be left out or null), a
`label` column with the model's labels, and optionally one column per protected attribute
(strings; used for group metrics on a test split, never as features). Any other column is
refused by name.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from core.errors import invalid
from core.lazy import lazy_module
from models_registry.artifacts import sha256

np = lazy_module("numpy")
pd = lazy_module("pandas")
pa = lazy_module("pyarrow")
pq = lazy_module("pyarrow.parquet")

MAX_DATA_BYTES = 64 * 1024 * 1024
MAX_ROWS = 2_000_000
LABEL = "label"


@dataclass
class Checked:
    data: bytes
    sha256: str
    rows: int
    columns: list[str]


def read_frame(data: bytes) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(data)).to_pandas()


def check(model, data: bytes, *, field: str) -> Checked:
    """The file's rows checked against `model`'s schema; a 400 naming `field` otherwise."""
    if len(data) > MAX_DATA_BYTES:
        raise invalid({field: [f"is larger than {MAX_DATA_BYTES // (1024 * 1024)} MB"]})
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise invalid({field: [f"is not a readable Parquet file ({type(exc).__name__})"]}) from exc
    if table.num_rows == 0 or table.num_rows > MAX_ROWS:
        raise invalid({field: [f"must have from 1 to {MAX_ROWS:,} rows, has {table.num_rows:,}"]})
    frame = table.to_pandas()
    problems = problems_in(model, frame)
    if problems:
        raise invalid({field: problems})
    return Checked(data, sha256(data), table.num_rows, [str(c) for c in frame.columns])


def problems_in(model, frame: pd.DataFrame) -> list[str]:
    """Every way the frame departs from the schema, one sentence each."""
    columns = [str(c) for c in frame.columns]
    allowed = {*model.feature_names, LABEL, *model.protected_attributes}
    problems = [
        f"column {name!r} is not a feature, the label or a protected attribute of {model.name}"
        for name in columns
        if name not in allowed
    ]
    if LABEL not in columns:
        problems.append(f"has no {LABEL!r} column (one of {', '.join(model.labels)})")
    else:
        problems += _label_problems(model, frame[LABEL])
    for spec in model.features:
        if spec["name"] not in columns:
            if spec["required"]:
                problems.append(f"has no column for the required feature {spec['name']!r}")
            continue
        problems += _column_problems(spec, frame[spec["name"]])
    for name in model.protected_attributes:
        if name in columns and not _all_text(frame[name].dropna()):
            problems.append(f"column {name!r} (a protected attribute) must hold strings")
    return problems


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _label_problems(model, labels: pd.Series) -> list[str]:
    bad = ~labels.isin(model.labels).to_numpy()
    if not bad.any():
        return []
    return [
        f"column 'label': {int(bad.sum())} values are not labels of {model.name} "
        f"({', '.join(model.labels)}); the first at row {_first(bad)}: {labels.iloc[_first(bad)]!r}"
    ]


def _all_text(values: pd.Series) -> bool:
    return all(isinstance(v, str) for v in values)


def _column_problems(spec: dict, column: pd.Series) -> list[str]:
    name, kind = spec["name"], spec["type"]
    missing = column.isna().to_numpy()
    out = []
    if spec["required"] and missing.any():
        out.append(
            f"column {name!r}: {int(missing.sum())} values are missing, and the feature is "
            f"required (the first at row {_first(missing)})"
        )
    present = column[~missing]
    if kind == "category":
        bad = ~present.isin(spec["choices"]).to_numpy()
        if bad.any():
            out.append(
                f"column {name!r}: {int(bad.sum())} values are not one of "
                f"{', '.join(spec['choices'])}; e.g. {present.iloc[_first(bad)]!r}"
            )
        return out
    if kind == "boolean":
        if not all(isinstance(v, bool | np.bool_) for v in present):
            out.append(f"column {name!r} must hold true/false values")
        return out
    return out + _number_problems(spec, present)


def _number_problems(spec: dict, present: pd.Series) -> list[str]:
    name = spec["name"]
    if not pd.api.types.is_numeric_dtype(present) or pd.api.types.is_bool_dtype(present):
        return [f"column {name!r} must hold numbers"]
    values = present.to_numpy(dtype=float)
    out = []
    if not np.isfinite(values).all():
        out.append(f"column {name!r}: values must be finite numbers")
    if spec["type"] == "integer" and not np.all(np.mod(values[np.isfinite(values)], 1) == 0):
        out.append(f"column {name!r}: values must be whole numbers")
    for bound, test, words in (("min", np.less, "below the minimum"),
                               ("max", np.greater, "above the maximum")):  # fmt: skip
        if bound in spec:
            bad = test(values, spec[bound])
            if bad.any():
                out.append(
                    f"column {name!r}: {int(bad.sum())} values are {words} {spec[bound]:g} "
                    f"(e.g. {values[_first(bad)]:g})"
                )
    return out
