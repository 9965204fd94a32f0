"""Reads for clips: an annotator's worklist, who may be assigned a clip, and the locked splits a clip feeds."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce

from studyapp.accounts.roles import ANNOTATOR
from studyapp.annotations.models import NerveOutline, RoiAnnotation
from studyapp.annotations.services import ANCHORS
from studyapp.experiments.models import Split, SplitMember

from .models import Clip, Frame


@dataclass(frozen=True)
class WorkItem:
    """One clip on an annotator's worklist: what is left to do, nothing about the hand's diagnosis."""

    clip: Clip
    frames: int
    confirmed: int
    outlines: int
    other_annotators: int

    @property
    def assigned(self) -> bool:
        return self.clip.assigned_to_id is not None

    @property
    def extracted(self) -> bool:
        return self.clip.extraction_status == Clip.Extraction.DONE

    @property
    def percent(self) -> int:
        return round(100 * self.confirmed / self.frames) if self.frames else 0

    @property
    def done(self) -> bool:
        """Every extracted frame has this annotator's confirmed ROI, and the nerve is outlined."""
        return self.extracted and self.frames > 0 and self.confirmed >= self.frames and self.outlines > 0


@dataclass(frozen=True)
class Worklist:
    assigned: list[WorkItem]
    open: list[WorkItem]
    done: list[WorkItem]


def _count(queryset, field: str = "pk") -> Subquery:
    """A correlated COUNT as an integer column (0 when nothing matches), so clips × rows never multiply."""
    counted = queryset.order_by().values(field).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted[:1], output_field=IntegerField()), Value(0))


def annotator_worklist(*, annotator) -> Worklist:
    """Clips assigned to the annotator and open clips, with the annotator's own progress, in one query."""
    clip = OuterRef("pk")
    mine = RoiAnnotation.objects.filter(frame__clip=clip, annotator=annotator, status__in=ANCHORS)
    others = (RoiAnnotation.objects.filter(frame__clip=clip, status__in=ANCHORS).exclude(annotator=annotator)
              .order_by().values("frame__clip").annotate(n=Count("annotator", distinct=True)).values("n"))
    clips = (Clip.objects.filter(Q(assigned_to=annotator) | Q(assigned_to__isnull=True))
             .select_related("hand__participant", "assigned_to")
             .annotate(n_frames=_count(Frame.objects.filter(clip=clip), "clip"),
                       n_confirmed=_count(mine, "frame__clip"),
                       n_outlines=_count(NerveOutline.objects.filter(frame__clip=clip, annotator=annotator),
                                         "frame__clip"),
                       n_others=Coalesce(Subquery(others[:1], output_field=IntegerField()), Value(0)))
             .order_by("uploaded_at", "pk"))
    items = [WorkItem(clip=c, frames=c.n_frames, confirmed=c.n_confirmed, outlines=c.n_outlines,
                      other_annotators=c.n_others) for c in clips]
    return Worklist(assigned=[i for i in items if i.assigned and not i.done],
                    open=[i for i in items if not i.assigned and not i.done],
                    done=[i for i in items if i.done])


def assignable_annotators():
    """Active users of the annotator role (admins can annotate too, but aren't handed work)."""
    return get_user_model().objects.filter(is_active=True, groups__name=ANNOTATOR).order_by("username").distinct()


def clip_locked_splits(clip: Clip) -> list[Split]:
    """The locked splits whose frozen manifest includes this clip's hand (its ROIs feed them)."""
    split_ids = SplitMember.objects.filter(hand_id=clip.hand_id, split__status=Split.Status.LOCKED).values("split")
    return list(Split.objects.filter(pk__in=split_ids).order_by("name", "version"))
