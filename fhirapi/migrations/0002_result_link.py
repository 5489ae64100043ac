import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("directory", "0003_record_fidelity"),
        ("fhir", "0001_received_resource"),
    ]

    operations = [
        migrations.CreateModel(
            name="ResultLink",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "parent",
                    models.CharField(help_text="The report or panel that lists the observation.", max_length=200),
                ),
                ("child", models.CharField(help_text="The observation it lists.", max_length=200)),
                (
                    "organisation",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="directory.organisation"
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["organisation", "child"], name="resultlink_child")],
                "constraints": [
                    models.UniqueConstraint(fields=("organisation", "parent", "child"), name="resultlink_unique")
                ],
            },
        ),
    ]
