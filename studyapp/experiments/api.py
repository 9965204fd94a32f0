"""REST API: splits (create, lock, check), experiments (launch, results), runs (cancel) and the model registry."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from studyapp.accounts.permissions import has_perms
from studyapp.ops.api import BackgroundJobSerializer, job_accepted

from . import services
from .models import Experiment, Split, TrainingRun
from .prediction_jobs import prediction_queue
from .serializers import (ExperimentLaunchSerializer, ExperimentSerializer, PredictSerializer, RunSerializer,
                          SplitCheckSerializer, SplitCreateSerializer, SplitSerializer, split_check)


class SplitViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                   viewsets.GenericViewSet):
    queryset = Split.objects.all()
    serializer_class = SplitSerializer
    filterset_fields = ["status", "name"]

    @extend_schema(request=SplitCreateSerializer, responses={201: SplitSerializer})
    def create(self, request):
        body = SplitCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        split = services.split_create(created_by=request.user, **body.validated_data)
        return Response(SplitSerializer(split).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: SplitSerializer})
    @action(detail=True, methods=["post"], permission_classes=[has_perms("experiments.lock_split")])
    def lock(self, request, pk=None):
        split = services.split_lock(split=self.get_object(), locked_by=request.user)
        return Response(SplitSerializer(split).data)

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
    queryset = Experiment.objects.select_related("split").prefetch_related("runs")
    serializer_class = ExperimentSerializer
    filterset_fields = ["split"]

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
        return Response(ExperimentSerializer(experiment).data, status=status.HTTP_201_CREATED)


class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Training runs; a finished one is a registered model (weights SHA-256, split, manifest, versions)."""

    queryset = TrainingRun.objects.select_related("experiment")
    serializer_class = RunSerializer
    filterset_fields = ["experiment", "status", "model_name"]

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
