"""REST API for clips: multipart upload, calibration, extraction status and frames."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from studyapp.accounts.permissions import has_perms

from studyapp.annotations import services as annotation_services
from studyapp.ops.api import BackgroundJobSerializer, job_accepted

from . import services
from .models import Clip
from .serializers import (CalibrationSerializer, ClipSerializer, ClipUploadSerializer, DuplicateClipSerializer,
                          FrameSerializer, SiteCorrectionSerializer)

ANNOTATE = has_perms("annotations.add_roiannotation", "annotations.change_roiannotation")


class ClipViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                  mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = Clip.objects.select_related("hand__participant", "site")
    serializer_class = ClipSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    filterset_fields = {"hand": ["exact"], "extraction_status": ["exact"], "format": ["exact"],
                        "assigned_to": ["exact"], "site": ["exact", "isnull"], "site_source": ["exact"]}
    search_fields = ["hand__participant__study_code", "original_filename"]

    @extend_schema(request={"multipart/form-data": ClipUploadSerializer},
                   responses={201: ClipSerializer, 409: DuplicateClipSerializer})
    def create(self, request, *args, **kwargs):
        upload = ClipUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        data = dict(upload.validated_data)
        try:
            clip = services.clip_upload(hand=data.pop("hand"), upload=data.pop("file"), uploaded_by=request.user,
                                        **data)
        except services.DuplicateClip as duplicate:
            return Response({"code": "duplicate", "detail": duplicate.message_dict["file"][0],
                             "existing_clip": duplicate.existing.pk}, status=status.HTTP_409_CONFLICT)
        return Response(ClipSerializer(clip, context={"request": request}).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        """Edit probe, frequency or notes: the upload's rules apply, only named fields change. The site and
        scanner change only through correct-site (a different value here is refused; the same is ignored)."""
        clip = self.get_object()
        body = self.get_serializer(clip, data=request.data, partial=kwargs.get("partial", False))
        body.is_valid(raise_exception=True)
        clip = services.clip_update(clip=clip, history_user=request.user, **body.validated_data)
        return Response(self.get_serializer(clip).data)

    @extend_schema(responses={200: FrameSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def frames(self, request, pk=None):
        clip = self.get_object()
        return Response(FrameSerializer(clip.frames.all(), many=True).data)

    @extend_schema(request=CalibrationSerializer, responses={200: ClipSerializer})
    @action(detail=True, methods=["post"], permission_classes=[has_perms("clips.change_clip")])
    def calibrate(self, request, pk=None):
        clip = self.get_object()
        body = CalibrationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if "pixel_spacing_mm" in data:
            clip = services.clip_set_spacing(clip=clip, spacing_mm=data["pixel_spacing_mm"])
        else:
            clip = services.clip_calibrate(clip=clip, p1=data["p1"], p2=data["p2"], distance_mm=data["distance_mm"])
        return Response(ClipSerializer(clip).data)

    @extend_schema(request=SiteCorrectionSerializer, responses={200: ClipSerializer})
    @action(detail=True, methods=["post"], url_path="correct-site",
            permission_classes=[has_perms(services.CORRECT_PERM)])
    def correct_site(self, request, pk=None):
        """Correct the clip's site and scanner, with a reason; the clip's history keeps who, when and why."""
        body = SiteCorrectionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        clip = services.clip_site_correct(clip=self.get_object(), corrected_by=request.user, **body.validated_data)
        return Response(ClipSerializer(clip, context={"request": request}).data)

    @extend_schema(request=None, responses={200: ClipSerializer})
    @action(detail=True, methods=["post"], url_path="retry-extraction",
            permission_classes=[has_perms("clips.change_clip")])
    def retry_extraction(self, request, pk=None):
        clip = services.clip_retry_extraction(clip=self.get_object())
        return Response(ClipSerializer(clip).data)

    @extend_schema(request=None, responses={202: BackgroundJobSerializer})
    @action(detail=True, methods=["post"], permission_classes=[ANNOTATE])
    def propagate(self, request, pk=None):
        """Queue the proposal of your ROI on every frame between and beyond your keyframes; poll the job's `url`."""
        clip = self.get_object()
        return job_accepted(annotation_services.roi_propagate_queue(clip=clip, annotator=request.user))

    @extend_schema(request=None, responses={200: dict})
    @action(detail=True, methods=["post"], url_path="confirm-all", permission_classes=[ANNOTATE])
    def confirm_all(self, request, pk=None):
        """Confirm all your proposed ROIs on the clip."""
        clip = self.get_object()
        return Response({"confirmed": annotation_services.roi_confirm_all(clip=clip, annotator=request.user)})


def register(router):
    router.register("clips", ClipViewSet)
