"""Promotion through the gate. models_registry.services.version_promote stays the primitive;
every promotion a person asks for (API and page) comes here first."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from audit import record
from core.errors import ApplicationError, invalid
from learning.models import Evaluation
from learning.services.evaluation import Measured, compare, evaluation_save
from learning.services.retraining import champion_of
from models_registry import services as registry
from models_registry.artifacts import estimator_for
from models_registry.models import MLModel, ModelVersion

MIN_JUSTIFICATION = 20


def version_promote_gated(
    *, version: ModelVersion, actor: User, justification: str = ""
) -> tuple[ModelVersion, Evaluation | None]:
    """Promote `version` if it passes the gate against the champion on the holdout, or if the
    owner justifies promoting it anyway (at least 20 characters: audited, shown on the model
    card). A refusal is a 409 listing every failed check, and is audited too."""
    justification = (justification or "").strip()
    if len(justification) > 5000:
        raise invalid({"justification": ["must be at most 5000 characters"]})
    model = version.model
    if version.status == ModelVersion.Status.CHAMPION:
        raise ApplicationError(f"Version {version.number} is already the champion.")
    champion = champion_of(model)
    if champion is None:  # the first champion: there is nothing to be worse than
        with transaction.atomic():
            promoted = registry.version_promote(version=version, actor=actor)
            record(
                action="promotion.gate_passed",
                actor=actor,
                obj=promoted,
                payload={
                    "model": model.name,
                    "number": version.number,
                    "champion": None,
                    "evaluation": None,
                },
            )
        return promoted, None
    measured = compare(model, estimator_for(version), champion, base=champion)
    if measured.failed and len(justification) < MIN_JUSTIFICATION:
        evaluation = _refuse(model, version, champion, measured, actor, justification)
        raise refusal(version, measured.failed, evaluation, justification)
    with transaction.atomic():
        MLModel.objects.select_for_update().get(pk=model.pk)
        if champion_of(model) != champion:
            raise ApplicationError(
                "The champion changed while the candidate was being evaluated; try again."
            )
        evaluation = evaluation_save(
            model=model,
            candidate=version,
            champion=champion,
            measured=measured,
            purpose=Evaluation.Purpose.PROMOTION,
        )
        if measured.failed:
            ModelVersion.objects.filter(pk=version.pk).update(
                promotion_justification=justification, promotion_failed_checks=measured.failed
            )
        promoted = registry.version_promote(version=version, actor=actor)
        record(
            action="promotion.gate_overridden" if measured.failed else "promotion.gate_passed",
            actor=actor,
            obj=promoted,
            payload={
                "model": model.name,
                "number": version.number,
                "champion": champion.number,
                "evaluation": evaluation.pk,
                "failed_checks": measured.failed,
                "justification": justification if measured.failed else None,
            },
        )
    return promoted, evaluation


def _refuse(
    model: MLModel,
    version: ModelVersion,
    champion: ModelVersion,
    measured: Measured,
    actor: User,
    justification: str,
) -> Evaluation:
    with transaction.atomic():
        evaluation = evaluation_save(
            model=model,
            candidate=version,
            champion=champion,
            measured=measured,
            purpose=Evaluation.Purpose.PROMOTION,
        )
        record(
            action="promotion.refused",
            actor=actor,
            obj=version,
            payload={
                "model": model.name,
                "number": version.number,
                "champion": champion.number,
                "evaluation": evaluation.pk,
                "failed_checks": measured.failed,
            },
        )
    return evaluation


def refusal(
    version: ModelVersion, failed: list[dict], evaluation: Evaluation, justification: str
) -> ApplicationError:
    lines = "; ".join(check["message"] for check in failed)
    short = " (the justification given is shorter than 20 characters)" if justification else ""
    return ApplicationError(
        f"The promotion gate refused version {version.number}: {lines} To promote it anyway, "
        f"give a written justification of at least {MIN_JUSTIFICATION} characters{short}.",
        code="promotion_gate",
        fields={
            "justification": [
                f"at least {MIN_JUSTIFICATION} characters, to promote over "
                f"{len(failed)} failed check(s)"
            ]
        },
        extra={"failed_checks": failed, "evaluation": evaluation.pk},
    )
