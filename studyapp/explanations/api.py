"""REST API: explanation jobs (queue, cancel), explained frames (filterable) and their summaries."""

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from studyapp.accounts.permissions import has_perms

from . import selectors, services
from .filters import FrameExplanationFilter
from .models import ExplanationJob
from .serializers import ExplanationJobSerializer, ExplanationQueueSerializer, FrameExplanationSerializer


class ExplanationJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = ExplanationJob.objects.select_related("run")
    serializer_class = ExplanationJobSerializer
    filterset_fields = ["run", "run__experiment", "method", "status"]

    @extend_schema(request=ExplanationQueueSerializer, responses={201: ExplanationJobSerializer(many=True)})
    def create(self, request):
        """Queue the explanation of a done run by some or all methods (PI only); explained frames are kept."""
        body = ExplanationQueueSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        jobs = services.jobs_queue(run=data["run"], methods=data.get("methods"), params=data.get("params"))
        return Response(ExplanationJobSerializer(jobs, many=True).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: ExplanationJobSerializer})
    @action(detail=True, methods=["post"], permission_classes=[has_perms("explanations.change_explanationjob")])
    def cancel(self, request, pk=None):
        return Response(ExplanationJobSerializer(services.job_cancel(job=self.get_object())).data)


class FrameExplanationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Explained test frames: prediction, outcomes, nerve shares and where the images and the map are."""

    queryset = selectors.frame_explanations()
    serializer_class = FrameExplanationSerializer
    filterset_class = FrameExplanationFilter


class ExplanationSummaryView(APIView):
    """Attribution shares in nerve, ring and outside beside their area shares, with 95% CIs over hands."""

    permission_classes = [has_perms("explanations.view_frameexplanation")]

    @extend_schema(parameters=[
        OpenApiParameter("experiment", int), OpenApiParameter("run", int),
        OpenApiParameter("by", str, description=f"comma-separated, of {', '.join(selectors.SUMMARY_KEYS)}; "
                                                "default model,method"),
        *[OpenApiParameter(name, str) for name in ("method", "frame_outcome", "hand_outcome", "group", "stage",
                                                   "hand", "model")]], responses={200: dict})
    def get(self, request):
        if not (request.query_params.get("experiment") or request.query_params.get("run")):
            raise ValidationError({"experiment": ValidationError(
                "Summaries are of one experiment or one run: give experiment=<id> or run=<id>.", code="required")})
        rows = FrameExplanationFilter(request.query_params, queryset=selectors.frame_explanations())
        if not rows.is_valid():
            return Response(rows.errors, status=status.HTTP_400_BAD_REQUEST)
        by = tuple(part for part in request.query_params.get("by", "model,method").split(",") if part)
        if set(by) - set(selectors.SUMMARY_KEYS):
            raise ValidationError({"by": ValidationError(
                f"Group by any of {', '.join(selectors.SUMMARY_KEYS)}.", code="bad_grouping")})
        return Response({"by": list(by), "summaries": selectors.summaries(rows.qs, by=by)})


def register(router):
    router.register("explanation-jobs", ExplanationJobViewSet)
    router.register("frame-explanations", FrameExplanationViewSet)
