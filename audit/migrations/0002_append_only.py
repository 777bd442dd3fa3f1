from django.db import migrations

from audit.db import drop_triggers, install_triggers


TABLES = ("audit_auditevent", "audit_checkpoint")


def install(apps, schema_editor):
    install_triggers(schema_editor.connection, TABLES)


def drop(apps, schema_editor):
    drop_triggers(schema_editor.connection, TABLES)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(install, drop)]
