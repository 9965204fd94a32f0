import datetime as dt

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from studyapp.cohort import services
from studyapp.cohort.models import Participant


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-1")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if extracted:
            self.groups.add(Group.objects.get(name=extracted))


class ParticipantFactory(factory.django.DjangoModelFactory):
    """Participants through the service, as the app creates them."""

    class Meta:
        model = Participant

    study_code = factory.Sequence(lambda n: f"CTS-{n:04d}")
    sex = "female"
    age = 52
    recruitment = "patient"
    enrolled_on = dt.date(2026, 1, 15)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return services.participant_create(**kwargs)


def make_hand(*, side="right", recruitment="patient", eps=None, exclusion_reason="", **participant):
    """A participant with one hand, and optionally an EPS exam (dict of EPS fields)."""
    person = ParticipantFactory(recruitment=recruitment, **participant)
    hand = services.hand_create(participant=person, side=side, exclusion_reason=exclusion_reason,
                                exclusion_detail="detail" if exclusion_reason == "other" else "")
    if eps is not None:
        services.eps_exam_create(hand=hand, exam_date=eps.pop("exam_date", dt.date(2026, 2, 1)), **eps)
        hand.refresh_from_db()
    return hand


# The study settings form's rater fields at their defaults, for tests that post the whole form.
RATER_FORM = {"primary_rater_rule": "most_confirmed", "primary_rater": "", "raters_blinded": "on",
              "adjudication_iou_threshold": "0.5", "adjudication_csa_difference_mm2": "2.0"}

SMALL_PHANTOM = dict(width=160, height=120, n_frames=12, pixel_spacing_mm=0.25)


def phantom_file(directory, name="clip.mp4", *, group="control", seed=1, **config):
    """Write a small phantom clip (.mp4, .avi or .dcm) and return (path, PhantomClip)."""
    from mlworker.phantom import PhantomConfig, generate_clip, write_dicom, write_video

    clip = generate_clip(group, seed, PhantomConfig(**{**SMALL_PHANTOM, **config}))
    path = directory / name
    (write_dicom if path.suffix == ".dcm" else write_video)(clip, path)
    return path, clip


def upload_file(path, name=None):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name or path.name, path.read_bytes())


def make_clip(directory, *, hand=None, name="clip.mp4", extract=True, spacing=0.25, **kwargs):
    """A hand's uploaded phantom clip, with frames extracted synchronously; returns (Clip, PhantomClip)."""
    from studyapp.clips import services as clip_services

    hand = hand or make_hand()
    path, phantom = phantom_file(directory, name, **kwargs)
    clip = clip_services.clip_upload(hand=hand, upload=upload_file(path), queue_extraction=False,
                                     pixel_spacing_mm=None if name.endswith(".dcm") else spacing)
    if extract:
        clip_services.clip_extract_frames(clip_id=clip.pk)
        clip.refresh_from_db()
    return clip, phantom
