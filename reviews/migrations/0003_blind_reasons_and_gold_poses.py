"""The reasons blind review shows, kept on each decision so that a filter can match them; the
reasons a known-answer item's copies pose with; and the priorities of the tasks waiting, made
from the reasons their reviewers are shown (reviews.selectors.task_priority, gold_pose).

The data step keeps its own copy of the rules it applies (a migration must not change when
the code does)."""

from django.db import migrations, models

REVEALING = {"outcome", "confidence"}
PRIORITY = {
    "high_stakes": 100,
    "low_confidence": 50,
    "random_audit": 20,
    "review_all": 10,
    "active_learning": 10,
}
LIVE = ("open", "claimed")
CHUNK = 2000


def blind_reasons(routing):
    routing = routing if isinstance(routing, dict) else {}
    conditions = routing.get("conditions") or []
    high = next((c for c in conditions if c.get("name") == "high_stakes"), None)
    fired = [rule for rule in (high or {}).get("rules", []) if rule.get("fired")]
    kept = [
        rule
        for rule in fired
        if not any(c.get("field") in REVEALING for c in rule.get("conditions", []))
    ]
    reasons = list(routing.get("reasons") or [])
    if fired and not kept:
        reasons = [reason for reason in reasons if reason != "high_stakes"]
    return reasons


def tags(reasons):
    return "," + ",".join(reasons) + "," if reasons else ""


def priority(reasons):
    return max((PRIORITY.get(reason, 0) for reason in reasons), default=0)


def forwards(apps, schema_editor):
    Decision = apps.get_model("reviews", "Decision")
    ReviewTask = apps.get_model("reviews", "ReviewTask")
    GoldLabel = apps.get_model("reviews", "GoldLabel")
    batch = []
    for decision in Decision.objects.filter(routed=True).only("id", "routing").iterator(CHUNK):
        decision.blind_reason_tags = tags(blind_reasons(decision.routing))
        batch.append(decision)
        if len(batch) == CHUNK:
            Decision.objects.bulk_update(batch, ["blind_reason_tags"])
            batch = []
    Decision.objects.bulk_update(batch, ["blind_reason_tags"])
    for gold in GoldLabel.objects.select_related("decision"):
        copies = ReviewTask.objects.filter(decision_id=gold.decision_id, is_gold=True)
        routing = gold.decision.routing if isinstance(gold.decision.routing, dict) else {}
        blind = copies.filter(blind=True).exists()
        seen = blind_reasons(routing) if blind else list(routing.get("reasons") or [])
        pose = seen or ["random_audit"]  # what its copies showed until now
        GoldLabel.objects.filter(pk=gold.pk).update(pose_tags=tags(pose))
        copies.filter(state__in=LIVE).update(priority=priority(pose))
    waiting = ReviewTask.objects.filter(
        blind=True, is_gold=False, state__in=LIVE, kind__in=["initial", "second_opinion"]
    ).select_related("decision")
    for task in waiting.iterator(CHUNK):
        shown = priority(blind_reasons(task.decision.routing))
        if shown != task.priority:
            ReviewTask.objects.filter(pk=task.pk).update(priority=shown)


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0002_review_explanation_for_person"),
    ]

    operations = [
        migrations.AddField(
            model_name="decision",
            name="blind_reason_tags",
            field=models.CharField(blank=True, db_default="", default="", max_length=200),
        ),
        migrations.AddField(
            model_name="goldlabel",
            name="pose_tags",
            field=models.CharField(blank=True, db_default="", default="", max_length=200),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
