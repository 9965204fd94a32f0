"""The API plus one endpoint that meets a unique constraint no service handles, to see the safety net."""

from django.db import transaction
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from studyapp.urls import urlpatterns as site


class DuplicateStudyCode(APIView):
    permission_classes = [AllowAny]

    def post(self, request):
        from studyapp.cohort.models import Participant

        fields = {"study_code": "DUP-1", "sex": "male", "age": 40, "recruitment": "patient"}
        with transaction.atomic():  # as a service writes
            Participant.objects.create(**fields)
            Participant.objects.create(**fields)  # the unique study code: an IntegrityError from the database
        return Response({})


urlpatterns = [*site, path("api/duplicate/", DuplicateStudyCode.as_view())]
