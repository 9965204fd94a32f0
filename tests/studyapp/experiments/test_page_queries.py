"""The PI's split and experiment pages and lists: the same number of queries whatever the number of hands and splits."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from studyapp.experiments import services
from tests.factories import UserFactory, bulk_cohort, locked_split_with_experiment


def _study(n_hands: int, prefix: str):
    """A cohort of n_hands annotated hands, a locked split with a finished experiment, and an unlocked split."""
    annotator = UserFactory(username=f"{prefix}-annotator", role="annotator")
    bulk_cohort(n_hands, annotators=[annotator], frames_per_clip=3, prefix=prefix)
    split, experiment, _ = locked_split_with_experiment(name=prefix, test_per_group=n_hands // 5,
                                                        models=("squeezenet1_1", "efficientnet_b0"))
    unlocked = services.split_create(name=f"{prefix}-open", test_per_group=n_hands // 5)
    return {"split": split, "experiment": experiment, "unlocked": unlocked, "run": experiment.runs.first()}


def _count(client, method: str, url: str, data=None) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = getattr(client, method)(url, data) if data is not None else getattr(client, method)(url)
    assert response.status_code in (200, 201, 302), (url, response.status_code)
    return len(queries)


PAGES = [
    ("get", "/experiments/"),
    ("get", "/experiments/splits/{split}/"),
    ("get", "/experiments/splits/{unlocked}/"),
    ("get", "/api/splits/{split}/check/"),
    ("get", "/api/splits/"),
    ("get", "/api/splits/{split}/"),
    ("get", "/api/experiments/"),
    ("get", "/api/experiments/{experiment}/"),
    ("get", "/api/models/"),
    ("get", "/api/models/{run}/"),
    ("get", "/experiments/{experiment}/"),
]


@pytest.mark.parametrize("method,url", PAGES)
def test_queries_do_not_grow_with_hands_or_splits(db, users, client, method, url):
    client.force_login(users["pi"])
    small = _study(10, "SMALL")
    counts = [_count(client, method, url.format(**{k: v.pk for k, v in small.items()}))]
    large = _study(40, "LARGE")  # four times the hands, twice the splits and experiments
    counts.append(_count(client, method, url.format(**{k: v.pk for k, v in large.items()})))
    assert counts[0] == counts[1], counts


@pytest.mark.parametrize("url", ["/api/splits/", "/experiments/"])
def test_creating_a_split_costs_the_same_queries_at_any_cohort_size(db, users, client, url):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(users["pi"])
    client.force_login(users["pi"])
    post = (lambda name: api.post(url, {"name": name, "test_per_group": 2}, format="json")) if url.startswith("/api") \
        else (lambda name: client.post(url, {"name": name, "seed": "0", "test_per_group": "2", "train_per_group": ""}))
    annotator = UserFactory(username="annotator", role="annotator")
    counts = []
    for n_hands, prefix in ((8, "WARM"), (10, "SMALL"), (30, "LARGE")):  # the first fills the caches
        bulk_cohort(n_hands, annotators=[annotator], frames_per_clip=3, prefix=prefix)
        with CaptureQueriesContext(connection) as queries:
            response = post(prefix)
        assert response.status_code in (201, 302), response.content[:500]
        counts.append(len(queries))
    assert counts[1] == counts[2], counts


def test_lists_carry_summaries_details_curves_and_predictions_are_paginated(db, users):
    from rest_framework.test import APIClient

    from studyapp.experiments.models import TrainingRun

    study = _study(10, "S")
    run = TrainingRun.objects.get(pk=study["run"].pk)
    api = APIClient()
    api.force_authenticate(users["pi"])
    listed = api.get("/api/experiments/").json()["results"][0]["runs"][0]
    assert "evaluation" not in listed and "history" not in listed and "predictions" not in listed
    assert listed["results"]["hand"]["metrics"]["auc"] == run.evaluation["hand"]["metrics"]["auc"]
    assert "roc" not in listed["results"]["frame"] and "hand_ids" not in listed["results"]["hand"]
    model = api.get("/api/models/").json()["results"][0]
    assert "evaluation" not in model and set(model["results"]) == {"threshold", "frame", "hand"}
    detail = api.get(f"/api/experiments/{study['experiment'].pk}/").json()
    assert detail["runs"][0]["evaluation"]["frame"]["roc"]["fpr"] and "comparison" in detail
    assert api.get(f"/api/models/{run.pk}/").json()["evaluation"] == run.evaluation
    stored = run.predictions
    page = api.get(f"/api/models/{run.pk}/predictions/", {"page": 2, "page_size": 5}).json()
    assert page["count"] == len(stored["frame_ids"]) and len(page["results"]) == 5
    assert page["results"][0] == {"frame": stored["frame_ids"][5], "hand": stored["hand_ids"][5],
                                  "label": stored["labels"][5], "probability": stored["probabilities"][5]}
    split = api.get("/api/splits/").json()["results"][0]
    assert "members" not in split and split["manifest_entries"] in (0, len(study["split"].manifest))
    detail = api.get(f"/api/splits/{study['split'].pk}/").json()
    assert detail["manifest_entries"] == len(study["split"].manifest) and len(detail["members"]) == sum(
        n for subset in detail["counts"].values() for n in subset.values())
    for role in ("annotator", "coordinator"):
        api.force_authenticate(users[role])
        assert api.get(f"/api/models/{run.pk}/predictions/").status_code == 403
