"""Does active learning pay? A simulation of the label loop on the demo's data.

Each seed: a model trained on a small random seed of the HMDA loanapp training split is
registered and promoted; the rest of the training split streams through ingest in batches;
a simulated reviewer answers every routed case with the true label; after every N labels the
champion is retrained (learning.services: clone + fit on its seed data and the labels) and
the candidate promoted (through the gate, justified: the bench promotes every retrain). Two
arms, with the same label budget:

- uncertainty: the routing policy's active-learning budget (the most uncertain decisions of
  each batch, smallest margin first), nothing else routed;
- random: random audits at the rate that yields the same expected number per batch.

Accuracy is measured on the demo's held-out 20 % after each retrain. It prints the learning
curves (accuracy against labels used, mean over seeds), the labels the uncertainty arm needs
to reach the random arm's final accuracy, and writes the curves as an SVG chart to
bench/out/learning.svg. It runs in-process on SQLite (a fresh file in a temporary folder),
with Celery tasks run eagerly: the figures are about labels, not speed.

    python -m bench.learning [--seeds 0 1 2 3 4] [--budget 300] [--every 30] [--batch 150]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, machine

OUT = ROOT / "bench" / "out"


def setup_sqlite() -> None:
    folder = Path(tempfile.mkdtemp(prefix="oversight-bench-learning-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'bench.sqlite3'}"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed_pipeline(data, rows):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from oversight.demo import FEATURES

    numeric = [f["name"] for f in FEATURES if f["type"] in ("number", "boolean")]
    categorical = [f["name"] for f in FEATURES if f["type"] == "category"]
    pipeline = Pipeline(
        [
            (
                "prepare",
                ColumnTransformer(
                    [
                        ("scale", StandardScaler(), numeric),
                        ("encode", OneHotEncoder(handle_unknown="ignore"), categorical),
                    ]
                ),
            ),
            ("classify", LogisticRegression(max_iter=2000)),
        ]
    )
    X = data.features.iloc[rows].astype({name: float for name in numeric})
    return pipeline.fit(X, data.labels.iloc[rows])


def seed_parquet(data, rows) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = data.features.iloc[rows].assign(label=data.labels.iloc[rows].to_numpy())
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return sink.getvalue()


class Arm:
    def __init__(self, name, *, data, seed_rows, pool, test_rows, args, people) -> None:
        import skops.io as sio

        from models_registry import services as registry
        from oversight.demo import FEATURES

        self.args, self.data, self.pool, self.people = args, data, pool, people
        self.owner, self.reviewer, self.service = people
        policy = {
            "confidence_threshold": 0.0,
            "random_audit_rate": 0.0,
            "active_learning_budget": 0,
            "active_learning_max_margin": 1.0,
        }
        self.model = registry.model_register(
            name=name,
            labels=["approve", "deny"],
            favourable_label="approve",
            features=FEATURES,
            protected_attributes=["race", "sex"],
            owner=self.owner,
            services=[self.service],
            policy=policy,
            actor=self.owner,
        )
        version = registry.version_upload(
            model=self.model,
            artifact=sio.dumps(seed_pipeline(data, seed_rows)),
            actor=self.owner,
            training_data=seed_parquet(data, seed_rows),
        )
        registry.version_promote(version=version, actor=self.owner)
        from learning.data import model_frame

        self.X_test = model_frame(self.model, data.features.iloc[test_rows])
        self.y_test = data.labels.iloc[test_rows].to_numpy()
        self.curve = [(0, self.accuracy())]
        self.labels = 0

    def accuracy(self) -> float:
        import numpy as np

        from models_registry.artifacts import estimator_for
        from models_registry.models import ModelVersion

        champion = ModelVersion.objects.get(model=self.model, status="champion")
        predicted = estimator_for(champion).predict(self.X_test)
        return float(np.mean(predicted == self.y_test))

    def route(self, round_: int) -> None:
        """Set the policy for this batch (subclasses)."""

    def run(self) -> list[tuple[int, float]]:
        from oversight.demo import decision_items
        from reviews.services import decisions_ingest

        batch = self.args.batch
        for round_ in range(len(self.pool) // batch):
            if self.labels >= self.args.budget:
                break
            self.route(round_)
            rows = self.pool[round_ * batch : (round_ + 1) * batch]
            items = decision_items(self.data, rows)
            for item in items:
                item["model"] = self.model.name
            decisions_ingest(items=items, actor=self.service)
            self.answer_all()
        return self.curve

    def answer_all(self) -> None:
        """Answer what is routed, retraining after every `every` labels (a case left over
        waits in the queue for the next batch's answers)."""
        from reviews.models import Decision
        from reviews.services import review_submit, task_claim_next

        while self.labels < self.args.budget:
            task = task_claim_next(reviewer=self.reviewer, model=self.model.name)
            if task is None:
                return
            decision = Decision.objects.get(pk=task.decision_id)
            index = int(decision.external_id.rsplit("-", 1)[1])
            truth = self.data.labels.iloc[index]
            if truth == decision.model_outcome:
                review_submit(task_id=task.pk, reviewer=self.reviewer, verdict="agree")
            else:
                review_submit(
                    task_id=task.pk,
                    reviewer=self.reviewer,
                    verdict="override",
                    outcome=truth,
                    reason_code="model_error",
                    rationale="The recorded outcome says otherwise.",
                )
            self.labels += 1
            if self.labels % self.args.every == 0:
                self.retrain()
                self.curve.append((self.labels, self.accuracy()))

    def retrain(self) -> None:
        from learning.models import RetrainingRun
        from learning.services import (
            retraining_execute,
            retraining_request,
            version_promote_gated,
        )

        run = retraining_request(model=self.model, actor=self.owner)  # eager: runs at commit
        run.refresh_from_db()
        if run.status == "queued":
            retraining_execute(run_id=run.pk)
        run = RetrainingRun.objects.select_related("candidate").get(pk=run.pk)
        if run.status != "done":
            raise RuntimeError(f"retraining failed: {run.error}")
        version_promote_gated(
            version=run.candidate,
            actor=self.owner,
            justification="Simulation: every retrained candidate is promoted.",
        )


class Uncertainty(Arm):
    def route(self, round_: int) -> None:
        from models_registry import services as registry

        # Today's budget grows by `every` per batch: the most uncertain of each batch.
        budget = min(self.args.budget, self.args.every * (round_ + 1))
        registry.policy_update(
            model=self.model,
            changes={"active_learning_budget": budget},
            actor=self.owner,
            note="bench: the uncertainty arm",
        )


class Random(Arm):
    def route(self, round_: int) -> None:
        from models_registry import services as registry

        if round_ == 0:
            rate = 100.0 * self.args.every / self.args.batch
            registry.policy_update(
                model=self.model,
                changes={"random_audit_rate": rate},
                actor=self.owner,
                note="bench: the random arm",
            )


def people():
    from accounts.services import service_token_create, user_create
    from core import roles as r

    owner = user_create(username="owner", password=None, roles=[r.MODEL_OWNER], actor="bench")
    reviewer = user_create(username="reviewer", password=None, roles=[r.REVIEWER], actor="bench")
    service = service_token_create(name="bench-scorer", actor="bench")[0].user
    return owner, reviewer, service


def interpolate(curve: list[tuple[int, float]], at: list[int]) -> list[float]:
    import numpy as np

    xs, ys = zip(*curve, strict=True)
    return [float(np.interp(x, xs, ys)) for x in at]


def labels_to_reach(curve: list[tuple[int, float]], target: float) -> int | None:
    """The fewest labels (after at least one retrain) at which the curve reaches `target`."""
    return next(
        (labels for labels, accuracy in curve if labels > 0 and accuracy >= target - 1e-9), None
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--every", type=int, default=30)
    parser.add_argument("--batch", type=int, default=150)
    parser.add_argument("--seed-size", type=int, default=20)
    args = parser.parse_args()
    started = time.perf_counter()
    setup_sqlite()
    import numpy as np

    from learning import svg
    from oversight.demo import load_loanapp, split

    data = load_loanapp()
    train_rows, test_rows = split(data)
    cast = people()
    print(f"machine: {machine()}; SQLite in-process, Celery eager")
    print(
        f"budget {args.budget} labels, retrain every {args.every}, batches of {args.batch}, "
        f"seed model on {args.seed_size} rows, seeds {args.seeds}"
    )
    grid = list(range(0, args.budget + 1, args.every))
    results = {"uncertainty": [], "random": []}
    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        shuffled = [int(i) for i in rng.permutation(train_rows)]
        seed_rows = shuffled[: args.seed_size]
        while len(set(data.labels.iloc[seed_rows])) < 2:  # the seed must hold both classes
            seed_rows = [int(i) for i in rng.permutation(train_rows)[: args.seed_size]]
        pool = [i for i in shuffled if i not in set(seed_rows)]
        for name, cls in (("uncertainty", Uncertainty), ("random", Random)):
            arm = cls(
                f"loan-{name}-{seed}",
                data=data,
                seed_rows=seed_rows,
                pool=pool,
                test_rows=test_rows,
                args=args,
                people=cast,
            )
            curve = arm.run()
            results[name].append(curve)
            print(
                f"  seed {seed} {name:11}: " + ", ".join(f"{n}:{a:.3f}" for n, a in curve),
                flush=True,
            )
    mean = {
        name: [
            float(np.mean(col)) for col in zip(*[interpolate(c, grid) for c in curves], strict=True)
        ]
        for name, curves in results.items()
    }
    print("\nlearning curve (mean accuracy on the 398 held-out applications):")
    print(f"  {'labels':>6}  {'uncertainty':>11}  {'random':>7}")
    for i, labels in enumerate(grid):
        print(f"  {labels:>6}  {mean['uncertainty'][i]:>11.4f}  {mean['random'][i]:>7.4f}")
    target = mean["random"][-1]
    needed = labels_to_reach(list(zip(grid, mean["uncertainty"], strict=True)), target)
    print(f"\nrandom arm's final accuracy: {target:.4f} at {grid[-1]} labels")
    if needed is None:
        print(f"uncertainty arm: does not reach it within {grid[-1]} labels — goal (≤ 60 %) missed")
    else:
        share = needed / grid[-1]
        verdict = "met" if share <= 0.6 else "missed"
        print(
            f"uncertainty arm reaches it at {needed} labels = {share:.0%} of the budget "
            f"(goal ≤ 60 %: {verdict})"
        )
    per_seed = []
    for u, rnd in zip(results["uncertainty"], results["random"], strict=True):
        per_seed.append(labels_to_reach(u, rnd[-1][1]))
    print(
        f"per seed, labels the uncertainty arm needs for that seed's random final accuracy: "
        f"{per_seed}"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    chart = svg.line_chart(
        "learning-curve",
        "Accuracy against human labels used: uncertainty routing vs random sampling",
        [str(n) for n in grid],
        {"uncertainty": mean["uncertainty"], "random": mean["random"]},
        top=round(max(max(v) for v in mean.values()) + 0.01, 2),
        bottom=round(min(min(v) for v in mean.values()) - 0.01, 2),
    )
    (OUT / "learning.svg").write_text(str(chart))
    print(f"chart: {OUT / 'learning.svg'}; took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
