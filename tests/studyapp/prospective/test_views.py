"""The PI's freeze form: confirmation required, a reason to retire, the page after freezing."""

import pytest

from studyapp.prospective.models import ProspectiveModel
from tests.studyapp.prospective.conftest import registered_run

pytestmark = pytest.mark.django_db


def test_the_freeze_form_wants_the_confirmation_then_freezes(client, users):
    run = registered_run()
    client.force_login(users["pi"])
    page = client.get("/prospective/")
    assert f'<option value="{run.pk}">'.encode() in page.content
    refused = client.post("/prospective/freeze/", {"run": run.pk})
    assert refused.status_code == 400 and not ProspectiveModel.objects.exists()
    response = client.post("/prospective/freeze/", {"run": run.pk, "confirm": "on"})
    assert response.status_code == 302 and response["Location"] == "/prospective/"
    model = ProspectiveModel.objects.get()
    assert model.frozen_by == users["pi"]
    page = client.get("/prospective/")
    assert b"Active model" in page.content and model.weights_sha256.encode() in page.content
    assert b'id="no-scored"' in page.content and b'id="case-table"' in page.content


def test_retiring_through_the_form_needs_a_reason(client, users):
    first, second = registered_run("one"), registered_run("two")
    client.force_login(users["pi"])
    client.post("/prospective/freeze/", {"run": first.pk, "confirm": "on"})
    refused = client.post("/prospective/freeze/", {"run": second.pk, "confirm": "on"})
    assert refused.status_code == 400 and b"Say why" in refused.content
    assert client.post("/prospective/freeze/", {"run": second.pk, "confirm": "on", "reason": "external"}
                       ).status_code == 302
    active = ProspectiveModel.objects.get(superseded_by__isnull=True)
    assert active.run == second and active.supersedes.run == first and active.reason == "external"
    page = client.get(f"/prospective/models/{active.supersedes.pk}/")
    assert b"Retired model" in page.content
