# Decision-log exports moved up to the oversight app (the audit app knows no business model).
# The table stays; oversight's first migration takes the model over and renames it.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_exports")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Export")],
            database_operations=[],
        ),
    ]
