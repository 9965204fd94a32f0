from django.db import migrations, models
from django.db.models import F


def freeze_from_total(apps, schema_editor):
    # extraction_total is min(frame count, frames per clip) of the last run: asking for it again is the same work.
    apps.get_model("clips", "Clip").objects.update(extraction_frames_per_clip=F("extraction_total"))


class Migration(migrations.Migration):

    dependencies = [
        ('clips', '0003_frame_sha256'),
    ]

    operations = [
        migrations.AddField(
            model_name="clip",
            name="extraction_frames_per_clip",
            field=models.PositiveIntegerField(
                default=0,
                help_text="Frames per clip the study asked for when this clip's extraction was queued."),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="historicalclip",
            name="extraction_frames_per_clip",
            field=models.PositiveIntegerField(
                default=0,
                help_text="Frames per clip the study asked for when this clip's extraction was queued."),
            preserve_default=False,
        ),
        migrations.RunPython(freeze_from_total, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="clip",
            constraint=models.CheckConstraint(
                condition=models.Q(extraction_frames_per_clip__gte=1), name="clip_extraction_frames_per_clip_positive"),
        ),
    ]
