from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="flag",
            name="kind",
            field=models.CharField(
                choices=[
                    ("answer_leak", "Tutor revealed the answer"),
                    ("blocked_leak", "Guard blocked a reply that gave the answer"),
                    ("false_arithmetic", "Tutor stated false arithmetic"),
                    ("pedagogy", "Judge: reply breaks the pedagogy rules"),
                    ("unsafe_content", "Unsafe content"),
                    ("teacher_report", "Reported by a teacher"),
                ],
                max_length=32,
            ),
        ),
    ]
