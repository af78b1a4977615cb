import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dialogues", "0004_message_model_version"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="guard",
            field=models.CharField(
                blank=True,
                choices=[
                    ("passed", "Passed the guard"),
                    ("retried", "Passed after the model was asked again"),
                    ("fallback", "Replaced by the safe fallback"),
                ],
                max_length=16,
            ),
        ),
        migrations.CreateModel(
            name="BlockedReply",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "attempt",
                    models.PositiveSmallIntegerField(
                        help_text="1 for the first attempt, and so on"
                    ),
                ),
                (
                    "text",
                    models.TextField(
                        help_text="What the model wrote, up to where the guard stopped it"
                    ),
                ),
                ("thinking", models.TextField(blank=True)),
                (
                    "reason",
                    models.CharField(
                        choices=[
                            ("answer_leak", "Stated the final answer"),
                            ("false_arithmetic", "Stated false arithmetic"),
                            ("uncheckable", "Could not be checked in time"),
                        ],
                        max_length=32,
                    ),
                ),
                (
                    "detail",
                    models.CharField(
                        blank=True, help_text="The value or claim found", max_length=300
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "message",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="blocked_replies",
                        to="dialogues.message",
                    ),
                ),
            ],
            options={
                "ordering": ["message", "attempt"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("message", "attempt"), name="one_blocked_reply_per_attempt"
                    )
                ],
            },
        ),
    ]
