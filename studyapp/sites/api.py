"""REST API of sites: everyone who uploads reads them; only the PI (and an admin) changes them."""

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.response import Response

from studyapp.cohort.api import VersionedMixin

from . import selectors, services
from .serializers import SiteSerializer


class SiteViewSet(VersionedMixin, viewsets.ModelViewSet):
    queryset = selectors.site_list()
    serializer_class = SiteSerializer
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name"]

    def create_record(self, serializer):
        serializer.instance = services.site_create(history_user=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.site_update(
            site=serializer.instance, expected_version=self.expected_version(serializer),
            history_user=self.request.user, **serializer.validated_data)

    @extend_schema(responses={204: None, 409: dict})
    def destroy(self, request, *args, **kwargs):
        """Delete a site no clip uses; 409 with `code: site_in_use` and the clip count otherwise."""
        site = self.get_object()
        try:
            services.site_delete(site=site)
        except services.SiteInUse as error:
            return Response({"code": "site_in_use", "detail": error.messages[0], "clip_count": error.clip_count},
                            status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)


def register(router):
    router.register("sites", SiteViewSet)
