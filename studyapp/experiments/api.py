"""REST API: splits (create, lock, check), experiments (launch, results), runs (cancel) and the model registry."""

from django.db.models import F, Func, IntegerField, Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from studyapp.accounts.permissions import has_perms
from studyapp.ops.api import BackgroundJobSerializer, job_accepted

from . import selectors, services
from .models import Experiment, Split, SplitMember, TrainingRun
from .prediction_jobs import prediction_queue
from .serializers import (ExperimentDetailSerializer, ExperimentLaunchSerializer, ExperimentSerializer,
                          PredictionSerializer, PredictSerializer, RunSerializer, RunSummarySerializer,
                          SplitCheckSerializer, SplitCreateSerializer, SplitDetailSerializer, SplitSerializer,
                          split_check)


class PredictionPagination(PageNumberPagination):
    page_size = 500
    page_size_query_param = "page_size"
    max_page_size = 5000


class SplitViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                   viewsets.GenericViewSet):
    queryset = Split.objects.all()
    serializer_class = SplitSerializer
    filterset_fields = ["status", "name"]

    def get_queryset(self):
        # Members in one query for the whole page (counts; the detail lists them); the manifest is counted by
        # the database, not decoded, except where an action needs it.
        members = SplitMember.objects.only("split_id", "subset", "label", "hand_id")
        if self.action != "list":
            members = members.select_related("hand").only("split_id", "subset", "label", "hand__participant_id")
        queryset = Split.objects.prefetch_related(Prefetch("members", queryset=members))
        if self.action == "check":  # verified by the stored hash: the manifest is read only if the data changed
            queryset = queryset.defer("manifest")
        if self.action in ("list", "retrieve"):
            queryset = queryset.defer("manifest").annotate(n_manifest_entries=Func(
                F("manifest"), function="jsonb_array_length", output_field=IntegerField()))
        return queryset

    def get_serializer_class(self):
        return SplitSerializer if self.action == "list" else SplitDetailSerializer

    @extend_schema(request=SplitCreateSerializer, responses={201: SplitSerializer})
    def create(self, request):
        body = SplitCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        split = services.split_create(created_by=request.user, **body.validated_data)
        return Response(SplitDetailSerializer(self.get_queryset().get(pk=split.pk)).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: SplitDetailSerializer})
    @action(detail=True, methods=["post"], permission_classes=[has_perms("experiments.lock_split")])
    def lock(self, request, pk=None):
        split = services.split_lock(split=self.get_object(), locked_by=request.user)
        return Response(SplitDetailSerializer(self.get_queryset().get(pk=split.pk)).data)

    @extend_schema(responses={200: SplitCheckSerializer})
    @action(detail=True, methods=["get"])
    def check(self, request, pk=None):
        """Whether the data still matches the locked manifest (training is blocked otherwise).

        `?files=1` also re-hashes every member frame's stored image (slower; training checks each crop it loads).
        """
        return Response(split_check(self.get_object(), files=request.query_params.get("files") in ("1", "true")))

    @extend_schema(responses={200: dict})
    @action(detail=True, methods=["get"])
    def manifest(self, request, pk=None):
        split = self.get_object()
        return Response({"manifest_hash": split.manifest_hash, "entries": split.manifest or []})


class ExperimentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    # The per-frame predictions stay in the database: /api/models/<id>/predictions/ pages through them.
    queryset = Experiment.objects.select_related("split").defer("split__manifest").prefetch_related(
        Prefetch("runs", queryset=TrainingRun.objects.defer("predictions")))
    serializer_class = ExperimentSerializer
    filterset_fields = ["split"]

    def get_serializer_class(self):
        return ExperimentDetailSerializer if self.action == "retrieve" else ExperimentSerializer

    @extend_schema(request=ExperimentLaunchSerializer, responses={201: ExperimentSerializer})
    def create(self, request):
        """Launch training of the models on a locked split (PI only)."""
        if not request.user.has_perm("experiments.launch_experiment"):
            return Response({"detail": "Only the PI launches training."}, status=status.HTTP_403_FORBIDDEN)
        body = ExperimentLaunchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        experiment = services.experiment_launch(
            split=data["split"], name=data["name"], models=data.get("models"), random_init=data["random_init"],
            hyperparameters=data.get("hyperparameters"), created_by=request.user, null_controls=data["null_controls"])
        return Response(ExperimentDetailSerializer(self.get_queryset().get(pk=experiment.pk)).data,
                        status=status.HTTP_201_CREATED)


class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Training runs; a finished one is a registered model (weights SHA-256, split, manifest, versions)."""

    queryset = TrainingRun.objects.defer("predictions")
    serializer_class = RunSerializer
    filterset_fields = ["experiment", "status", "model_name"]

    def get_serializer_class(self):
        return RunSummarySerializer if self.action == "list" else RunSerializer

    @extend_schema(responses={200: PredictionSerializer(many=True)})
    @action(detail=True, methods=["get"], pagination_class=PredictionPagination)
    def predictions(self, request, pk=None):
        """The run's test-frame predictions (frame, hand, label, CTS probability), a page at a time."""
        rows = selectors.run_predictions(self.get_object())
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(PredictionSerializer(page, many=True).data)

    @extend_schema(request=None, responses={200: RunSerializer})
    @action(detail=True, methods=["post"], permission_classes=[has_perms("experiments.launch_experiment")])
    def cancel(self, request, pk=None):
        return Response(RunSerializer(services.run_cancel(run=self.get_object())).data)

    @extend_schema(request=PredictSerializer, responses={202: BackgroundJobSerializer})
    @action(detail=True, methods=["post"], permission_classes=[has_perms("experiments.view_trainingrun")])
    def predict(self, request, pk=None):
        """Queue the per-frame and per-hand CTS probability of a clip with a confirmed ROI (optionally heatmaps per
        frame) on a worker; poll the job's `url` until done, its `result` holds them."""
        body = PredictSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return job_accepted(prediction_queue(run=self.get_object(), clip=body.validated_data["clip"],
                                             heatmaps=body.validated_data["heatmaps"], requested_by=request.user))


def register(router):
    router.register("splits", SplitViewSet)
    router.register("experiments", ExperimentViewSet)
    router.register("models", RunViewSet, basename="model")
