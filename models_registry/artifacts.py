"""Model artifacts: skops files, loaded without unpickling and only with trusted types."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

from core.errors import ApplicationError
from core.lazy import lazy_module
from models_registry.models import ModelVersion

np = lazy_module("numpy")
sio = lazy_module("skops.io")

MAX_ARTIFACT_BYTES = 64 * 1024 * 1024

# skops itself trusts scikit-learn's estimators and transformers. These are the few more
# types that fitted scikit-learn models are made of; anything else (a function, a class from
# another package) is refused, because loading it could run code we have not vetted.
EXTRA_TRUSTED_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.MultinomialLogit",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.loss.HalfMultinomialLoss",
    }
)


def artifact_error(message: str) -> ApplicationError:
    return ApplicationError(
        f"artifact: {message}", code="invalid", status=400, fields={"artifact": [message]}
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load(data: bytes) -> Any:
    """Load a skops artifact, refusing any type outside the trusted set."""
    if len(data) > MAX_ARTIFACT_BYTES:
        raise artifact_error(f"is larger than {MAX_ARTIFACT_BYTES // (1024 * 1024)} MB")
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:
        raise artifact_error(f"is not a readable skops file ({type(exc).__name__})") from exc
    refused = sorted(set(untrusted) - EXTRA_TRUSTED_TYPES)
    if refused:
        raise artifact_error(
            "contains types that are not trusted: " + ", ".join(refused) + ". Oversight loads "
            "only scikit-learn estimators and numpy data; save the model without custom code."
        )
    try:
        return sio.loads(data, trusted=list(untrusted))
    except Exception as exc:
        raise artifact_error(f"could not be loaded ({type(exc).__name__}: {exc})") from exc


# Loaded estimators by artifact sha256: the bytes define the estimator, so the key is exact.
_estimators: OrderedDict[str, Any] = OrderedDict()
_CACHE_SIZE = 16


def estimator_for(version: Any) -> Any:
    """The loaded estimator of a ModelVersion, cached per process."""
    estimator = _estimators.get(version.sha256)
    if estimator is None:
        data = bytes(ModelVersion.objects.values_list("artifact", flat=True).get(pk=version.pk))
        if sha256(data) != version.sha256:
            # The stored bytes are not those that were registered: never score with them.
            raise RuntimeError(f"artifact of version {version.pk} does not match its sha256")
        estimator = _keep(version.sha256, load(data))
    return estimator


def loaded(data: bytes) -> Any:
    """load(data), once per process for the same bytes (an upload of bytes already loaded, for
    another model or again, reuses the estimator; estimators are only read)."""
    digest = sha256(data)
    estimator = _estimators.get(digest)
    return estimator if estimator is not None else _keep(digest, load(data))


def _keep(digest: str, estimator: Any) -> Any:
    _estimators[digest] = estimator
    if len(_estimators) > _CACHE_SIZE:
        _estimators.popitem(last=False)
    return estimator


def class_labels(estimator: Any) -> list[str]:
    return [str(label) for label in np.asarray(estimator.classes_).tolist()]
