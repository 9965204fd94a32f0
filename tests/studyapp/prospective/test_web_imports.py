"""The web side of prospective prediction (freeze, hooks, API, pages, tasks) loads no torch: only the worker's
studyapp.prospective.prediction does."""

from tests.studyapp.test_web_job_imports import _loaded_after

WEB_SIDE = ("studyapp.prospective.api", "studyapp.prospective.services", "studyapp.prospective.selectors",
            "studyapp.prospective.views", "studyapp.prospective.tasks", "studyapp.cohort.services",
            "studyapp.annotations.services")


def test_the_web_side_imports_no_ml_stack():
    assert _loaded_after(WEB_SIDE) == []


def test_the_worker_module_does():
    assert "torch" in _loaded_after(("studyapp.prospective.prediction",))
