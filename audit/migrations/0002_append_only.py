from django.db import migrations

from audit.db import drop_triggers, install_triggers


def install(apps, schema_editor):
    install_triggers(schema_editor.connection)


def drop(apps, schema_editor):
    drop_triggers(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(install, drop)]
