"""REST API for ROIs (optimistic versioning), propagation, outlines and inter-rater agreement."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from studyapp.accounts.permissions import has_perms

from . import selectors, services
from .models import NerveOutline, RoiAnnotation
from .serializers import OutlineSerializer, RoiSerializer, RoiStatusSerializer, RoiWriteSerializer


def _conflict(error: services.StaleVersion) -> Response:
    current = RoiSerializer(error.current).data if error.current is not None else None
    return Response({"detail": str(error), "code": "stale_version", "current": current},
                    status=status.HTTP_409_CONFLICT)


def _visible(request, queryset):
    """What the user may see (a blinded rater: their own), narrowed to their own with `mine=1`."""
    queryset = selectors.visible_annotations(queryset, user=request.user)
    if request.query_params.get("mine") in ("1", "true"):
        queryset = queryset.filter(annotator=request.user)
    return queryset


class OwnAnnotationsMixin:
    def check_object_permissions(self, request, obj):
        super().check_object_permissions(request, obj)
        if request.method not in ("GET", "HEAD", "OPTIONS") and obj.annotator_id != request.user.pk \
                and not request.user.is_superuser:
            raise PermissionDenied("You can only change your own annotations.")


class RoiViewSet(OwnAnnotationsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                 viewsets.GenericViewSet):
    queryset = RoiAnnotation.objects.select_related("frame", "annotator")
    serializer_class = RoiSerializer
    filterset_fields = {"frame": ["exact"], "frame__clip": ["exact"], "status": ["exact"],
                        "annotator__username": ["exact"]}
    pagination_class = None  # a clip has at most a few hundred ROIs per annotator; the canvas wants them all

    def get_queryset(self):
        return _visible(self.request, super().get_queryset())

    @extend_schema(request=RoiWriteSerializer, responses={201: RoiSerializer, 200: RoiSerializer, 409: dict})
    def create(self, request, *args, **kwargs):
        """Place or move your ROI on a frame (upsert). Send the `version` you loaded when moving."""
        body = RoiWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        existed = RoiAnnotation.objects.filter(frame=data["frame"], annotator=request.user).exists()
        try:
            roi = services.roi_save(frame=data["frame"], annotator=request.user, center_x=data["center_x"],
                                    center_y=data["center_y"], status=data["status"],
                                    expected_version=data.get("version"))
        except services.StaleVersion as error:
            return _conflict(error)
        return Response(RoiSerializer(roi).data, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)

    @extend_schema(request=RoiStatusSerializer, responses={200: RoiSerializer, 409: dict})
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request, pk=None):
        roi = self.get_object()
        body = RoiStatusSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            roi = services.roi_set_status(roi=roi, status=body.validated_data["status"],
                                          expected_version=body.validated_data["version"])
        except services.StaleVersion as error:
            return _conflict(error)
        return Response(RoiSerializer(roi).data)

    @extend_schema(parameters=[OpenApiParameter("version", int, required=True)], responses={204: None, 409: dict})
    def destroy(self, request, *args, **kwargs):
        roi = self.get_object()
        try:
            services.roi_delete(roi=roi, expected_version=int(request.query_params.get("version", -1)))
        except services.StaleVersion as error:
            return _conflict(error)
        except ValueError:
            return Response({"version": ["Give the version you loaded."]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(status=status.HTTP_204_NO_CONTENT)


class OutlineViewSet(OwnAnnotationsMixin, mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                     mixins.DestroyModelMixin, viewsets.GenericViewSet):
    queryset = NerveOutline.objects.select_related("frame", "annotator")
    serializer_class = OutlineSerializer
    filterset_fields = {"frame": ["exact"], "frame__clip": ["exact"], "annotator__username": ["exact"]}

    def get_queryset(self):
        return _visible(self.request, super().get_queryset())

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.outline_create(frame=data["frame"], annotator=self.request.user,
                                                      points=data["points"])

    def perform_destroy(self, instance):
        services.outline_delete(outline=instance)


class AgreementView(APIView):
    # Agreement shows each rater's values: for those who see every rater's work.
    permission_classes = [has_perms("annotations.view_roiannotation", selectors.ALL_RATERS_PERM)]

    @extend_schema(parameters=[OpenApiParameter("clip", int)], responses={200: dict})
    def get(self, request):
        clip = request.query_params.get("clip")
        return Response({"roi": selectors.roi_agreement(clip_id=int(clip) if clip and clip.isdigit() else None),
                         "csa": selectors.csa_agreement(), "blinding": selectors.blinding_statement()})


def register(router):
    router.register("annotations", RoiViewSet)
    router.register("outlines", OutlineViewSet)
