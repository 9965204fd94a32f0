"""Property-based fuzzing of every API operation from its OpenAPI schema, as the coordinator and as the PI.

Schemathesis draws requests that fit the schema (and some that don't) for each operation, with real and random
ids; the app must answer every one without a 5xx. Bounded: a fixed number of examples per operation and role,
derandomised, so CI runs the same requests in about a minute. Prints the requests made and the 5xx found.
"""

import re
import os

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis.generation.modes import GenerationMode

from tests.studyapp.accounts.test_role_matrix import hand  # noqa: F401 (the fixture: a hand with all objects)

pytestmark = pytest.mark.django_db

# Per operation and role. Positive examples use a real id (they reach the view's logic); negative ones also
# draw the ids. CTS_FUZZ_SCALE=10 runs ten times as many, for a deeper look before a release.
SCALE = int(os.environ.get("CTS_FUZZ_SCALE", "1"))
EXAMPLES = {GenerationMode.POSITIVE: 4 * SCALE, GenerationMode.NEGATIVE: 2 * SCALE}


def _real_ids(hand) -> dict[str, int]:
    """An existing object for each resource, so that examples reach past the 404."""
    return {"participants": hand.participant_id, "hands": hand.pk, "eps-exams": hand.exam.pk,
            "csa-measurements": hand.csa.pk, "clips": hand.clip.pk, "annotations": hand.roi.pk,
            "outlines": hand.outline.pk, "splits": hand.split.pk, "experiments": hand.experiment.pk,
            "models": hand.run.pk, "explanation-jobs": hand.job.pk, "frame-explanations": hand.explanation.pk,
            "sites": hand.site.pk}


def _fuzz(operation, *, mode, token, path_parameters, app, log):
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @settings(max_examples=EXAMPLES[mode], database=None, deadline=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case):
        response = case.call(app=app, base_url="http://localhost", headers={"Authorization": f"Token {token}"})
        log["requests"] += 1
        if response.status_code >= 500:
            log["5xx"].append(f"{response.status_code} {case.method} {case.formatted_path} query={case.query!r} "
                              f"body={case.body!r:.300}: {response.text[:300]!r}")

    try:
        run()
    except Unsatisfiable:  # nothing in the operation to get wrong (no parameters, no body): positive covers it
        assert mode == GenerationMode.NEGATIVE


@pytest.mark.parametrize("role", ["coordinator", "pi"])
def test_no_request_the_schema_allows_or_not_gets_a_server_error(hand, users, role, monkeypatch, capsys):  # noqa: F811
    from studyapp.clips import services as clip_services

    monkeypatch.setattr(clip_services, "_queue_extraction", lambda clip_id: None)
    raw = SchemaGenerator().get_schema(request=None, public=True)
    schema = schemathesis.openapi.from_dict(raw)
    token = Token.objects.create(user=users[role]).key
    app, ids = WSGIHandler(), _real_ids(hand)
    log = {"requests": 0, "5xx": []}
    operations = [result.ok() for result in schema.get_all_operations()]
    # As Django's test client does: the request must not close the test's connection (and its transaction).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        for operation in operations:
            resource = re.match(r"/api/([^/{]+)/", operation.path)
            real = ids.get(resource.group(1)) if resource and "{id}" in operation.path else None
            for mode in EXAMPLES:
                path_parameters = {"id": real} if real and mode == GenerationMode.POSITIVE else None
                _fuzz(operation, mode=mode, token=token, path_parameters=path_parameters, app=app, log=log)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    with capsys.disabled():
        print(f"\nAPI fuzzing as {role}: {len(operations)} operations, {log['requests']} requests, "
              f"{len(log['5xx'])} answered 5xx")
        for line in log["5xx"]:
            print("  " + line)
    assert not log["5xx"], "\n".join(log["5xx"])
