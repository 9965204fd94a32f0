"""REST API: the frozen prospective model (freeze), the blinded predictions, and the accrual dashboard."""

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from studyapp.accounts.permissions import has_perms

from . import selectors, services
from .models import ProspectiveModel
from .serializers import (ProspectiveDashboardQuerySerializer, ProspectiveFreezeSerializer, ProspectivePredictionSerializer,
                          ProspectiveModelSerializer)


class ProspectiveModelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = ProspectiveModel.objects.select_related("run", "frozen_by").prefetch_related("superseded_by")
    serializer_class = ProspectiveModelSerializer
    permission_classes = [has_perms("prospective.view_prospectivemodel")]

    def get_permissions(self):
        if self.action == "create":
            return [has_perms("prospective.freeze_prospectivemodel")()]
        return super().get_permissions()

    @extend_schema(request=ProspectiveFreezeSerializer, responses={201: ProspectiveModelSerializer})
    def create(self, request):
        """Freeze a registered model as the study's prospective model (retiring the active one, with a reason)."""
        body = ProspectiveFreezeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        model = services.prospective_model_freeze(frozen_by=request.user, **body.validated_data)
        return Response(ProspectiveModelSerializer(model).data, status=status.HTTP_201_CREATED)


class PredictionListView(APIView):
    """Prospective predictions: sealed (no probability, no label) until the hand's EPS is entered."""

    permission_classes = [has_perms("prospective.view_prospectiveprediction")]

    @extend_schema(parameters=[OpenApiParameter("model", int)], responses={200: ProspectivePredictionSerializer(many=True)})
    def get(self, request):
        model = request.query_params.get("model")
        model = ProspectiveModel.objects.filter(pk=model).first() if model and model.isdigit() else None
        return Response(ProspectivePredictionSerializer(selectors.predictions_for(user=request.user, model=model),
                                             many=True).data)


class DashboardView(APIView):
    """Accrued sensitivity, specificity, AUC and calibration with CIs, beside the model's retrospective results."""

    permission_classes = [has_perms("prospective.view_prospectiveoutcome")]

    @extend_schema(parameters=[ProspectiveDashboardQuerySerializer], responses={200: dict})
    def get(self, request):
        query = ProspectiveDashboardQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        model = query.validated_data.get("model") or services.prospective_model_active()
        if model is None:
            raise ValidationError({"model": ValidationError("No model is frozen yet: the PI freezes one first.",
                                                            code="no_model")})
        dashboard = selectors.prospective_dashboard(model=model, target_width=query.validated_data["target_width"],
                                                    level=query.validated_data["level"])
        dashboard["model"] = ProspectiveModelSerializer(model).data
        return Response(dashboard)


def register(router):
    router.register("prospective/models", ProspectiveModelViewSet)
