# The Export model, moved here from the audit app: the state takes over the existing table
# (audit_export), then the table is renamed.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("audit", "0004_export_moves_to_oversight"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Export",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("requested_at", models.DateTimeField()),
                        ("format", models.CharField(choices=[("csv", "Csv"), ("jsonl", "Jsonl"), ("parquet", "Parquet")], max_length=10)),
                        ("filters", models.JSONField(blank=True, default=dict)),
                        ("pseudonymise", models.BooleanField(default=False)),
                        ("include_bundle", models.BooleanField(default=False)),
                        ("include_groups", models.BooleanField(default=False)),
                        ("status", models.CharField(choices=[("queued", "Queued"), ("running", "Running"), ("done", "Done"), ("failed", "Failed")], default="queued", max_length=10)),
                        ("progress", models.PositiveSmallIntegerField(default=0)),
                        ("rows", models.BigIntegerField(default=0)),
                        ("file_name", models.CharField(blank=True, max_length=200)),
                        ("size_bytes", models.BigIntegerField(default=0)),
                        ("sha256", models.CharField(blank=True, max_length=64)),
                        ("manifest", models.JSONField(blank=True, default=dict)),
                        ("error", models.TextField(blank=True)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        ("requested_by", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL)),
                    ],
                    options={"ordering": ["-requested_at", "-id"], "db_table": "audit_export"},
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name="export", table=None),
    ]
