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
    others_most_confirmed: int  # the most frames any one other annotator has confirmed

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
    def annotated_by_others(self) -> bool:
        """Someone else confirmed every frame: what is left here is a second rating, not first work."""
        return self.frames > 0 and self.others_most_confirmed >= self.frames

    @property
    def done(self) -> bool:
        """Every extracted frame has this annotator's confirmed ROI, and the nerve is outlined."""
        return self.extracted and self.frames > 0 and self.confirmed >= self.frames and self.outlines > 0


@dataclass(frozen=True)
class Worklist:
    assigned: list[WorkItem]
    open: list[WorkItem]  # open clips nobody has annotated in full
    second_rating: list[WorkItem]  # open clips another annotator finished; a second rater may still do them
    done: list[WorkItem]


def _first(values) -> Coalesce:
    """The first value of a correlated subquery as an integer column, 0 when it has no rows."""
    return Coalesce(Subquery(values[:1], output_field=IntegerField()), Value(0))


def _count(queryset, field: str) -> Coalesce:
    """A correlated COUNT grouped on `field` (the clip), so clips × rows never multiply in the main query."""
    return _first(queryset.order_by().values(field).annotate(n=Count("pk")).values("n"))


def annotator_worklist(*, annotator) -> Worklist:
    """Clips assigned to the annotator and open clips, with the annotator's own progress, in one query."""
    clip = OuterRef("pk")
    confirmed = RoiAnnotation.objects.filter(frame__clip=clip, status__in=ANCHORS).order_by()
    mine = confirmed.filter(annotator=annotator)
    others = confirmed.exclude(annotator=annotator)
    n_others = others.values("frame__clip").annotate(n=Count("annotator", distinct=True)).values("n")
    others_best = others.values("annotator").annotate(n=Count("pk")).order_by("-n").values("n")
    # Open clips of excluded hands wait for nobody: they never enter a split (eligibility, not diagnosis).
    clips = (Clip.objects.filter(Q(assigned_to=annotator) | Q(assigned_to__isnull=True, hand__exclusion_reason=""))
             .select_related("hand__participant", "assigned_to")
             .annotate(n_frames=_count(Frame.objects.filter(clip=clip), "clip"),
                       n_confirmed=_count(mine, "frame__clip"),
                       n_outlines=_count(NerveOutline.objects.filter(frame__clip=clip, annotator=annotator),
                                         "frame__clip"),
                       n_others=_first(n_others), n_others_best=_first(others_best))
             .order_by("uploaded_at", "pk"))
    items = [WorkItem(clip=c, frames=c.n_frames, confirmed=c.n_confirmed, outlines=c.n_outlines,
                      other_annotators=c.n_others, others_most_confirmed=c.n_others_best) for c in clips]
    waiting = [i for i in items if not i.assigned and not i.done]
    return Worklist(assigned=[i for i in items if i.assigned and not i.done],
                    open=[i for i in waiting if not i.annotated_by_others],
                    second_rating=[i for i in waiting if i.annotated_by_others],
                    done=[i for i in items if i.done])


def assignable_annotators(*, current=None):
    """Active users of the annotator role, plus the clip's current assignee (an admin may have taken it)."""
    people = Q(is_active=True, groups__name=ANNOTATOR)
    if current is not None:
        people |= Q(pk=current.pk)
    return get_user_model().objects.filter(people).order_by("username").distinct()


def clip_locked_splits(clip: Clip) -> list[Split]:
    """The locked splits whose frozen manifest includes this clip's hand (its ROIs feed them)."""
    split_ids = SplitMember.objects.filter(hand_id=clip.hand_id, split__status=Split.Status.LOCKED).values("split")
    return list(Split.objects.filter(pk__in=split_ids).order_by("name", "version"))


@dataclass(frozen=True)
class SiteCorrection:
    """One audited correction of a clip's site or scanner, from the clip's history."""

    when: object
    who: object
    reason: str
    site_code: str | None
    scanner: str


def clip_site_corrections(clip: Clip) -> list[SiteCorrection]:
    """The clip's site and scanner corrections, newest first (history rows where those values changed)."""
    from studyapp.sites.models import Site

    rows = list(clip.history.order_by("history_id").values(
        "history_date", "history_user__username", "history_change_reason", "site_source", "site_id",
        "scanner_manufacturer", "scanner_model"))
    codes = dict(Site.objects.filter(pk__in={r["site_id"] for r in rows if r["site_id"]}).values_list("pk", "code"))
    corrections = []
    previous = None
    for row in rows:
        values = (row["site_id"], row["scanner_manufacturer"], row["scanner_model"])
        if previous is not None and values != previous and row["site_source"] == Clip.SiteSource.CORRECTED:
            corrections.append(SiteCorrection(
                when=row["history_date"], who=row["history_user__username"], reason=row["history_change_reason"] or "",
                site_code=codes.get(row["site_id"]),
                scanner=" ".join(v for v in (row["scanner_manufacturer"], row["scanner_model"]) if v)))
        previous = values
    return corrections[::-1]
