"""The base model as a version, so that something is always there to serve."""

from django.conf import settings
from django.db import migrations


def create_base_version(apps, schema_editor):
    ModelVersion = apps.get_model("retraining", "ModelVersion")
    ModelVersion.objects.get_or_create(
        name=settings.TUTOR_MODEL_NAME,
        defaults={
            "base_model": settings.TUTOR_BASE_MODEL,
            "adapter_path": "",
            "status": "active",
            "notes": "The base model, served without an adapter.",
        },
    )


class Migration(migrations.Migration):
    dependencies = [("retraining", "0001_initial")]

    operations = [migrations.RunPython(create_base_version, migrations.RunPython.noop)]
