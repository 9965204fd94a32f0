"""Background jobs in tests without a worker: run a queued job's task body in this process, then poll it."""


def run_job(api, response) -> dict:
    """`response` queued a job (202 with its id and url): run its task as the worker would, return the polled job."""
    from studyapp.annotations.tasks import propagate_rois
    from studyapp.experiments.tasks import predict_clip

    assert response.status_code == 202, response.content
    job = response.json()
    assert job["status"] == "queued" and job["url"] == f"/api/jobs/{job['id']}/"
    {"roi_propagate": propagate_rois, "predict_clip": predict_clip}[job["kind"]].run(job["id"])
    polled = api.get(job["url"])
    assert polled.status_code == 200, polled.content
    return polled.json()
