from datetime import UTC, datetime, timedelta

from studyapp.ops.liveness import BEATS_BEFORE_DEAD, Beat, freshness_window, is_alive, liveness_report

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def test_a_worker_is_alive_for_a_few_missed_beats_and_dead_after():
    window = freshness_window(10)
    assert window == timedelta(seconds=10 * BEATS_BEFORE_DEAD) and BEATS_BEFORE_DEAD >= 2
    assert is_alive(NOW, now=NOW, interval_s=10)
    assert is_alive(NOW - window + timedelta(milliseconds=1), now=NOW, interval_s=10)
    assert not is_alive(NOW - window, now=NOW, interval_s=10)
    assert not is_alive(NOW - timedelta(hours=1), now=NOW, interval_s=10)
    assert not is_alive(None, now=NOW, interval_s=10)
    assert is_alive(NOW - timedelta(seconds=50), now=NOW, interval_s=30)  # the window follows the interval


def test_each_queue_is_alive_only_through_a_live_worker_that_consumes_it():
    beats = [Beat("default@a", ("default",), NOW - timedelta(seconds=5)),
             Beat("training@a", ("training",), NOW - timedelta(seconds=90)),
             Beat("all@b", ("default", "gpu"), NOW - timedelta(seconds=1))]
    report = liveness_report(beats, queues={"default": "default", "training": "training"}, now=NOW, interval_s=10)
    assert [(w["hostname"], w["alive"]) for w in report["workers"]] == [
        ("all@b", True), ("default@a", True), ("training@a", False)]
    assert report["queues"]["default"] == {"queue": "default", "alive": True, "workers": ["all@b", "default@a"]}
    assert report["queues"]["training"] == {"queue": "training", "alive": False, "workers": []}
    gpu = liveness_report(beats, queues={"training": "gpu"}, now=NOW, interval_s=10)["queues"]["training"]
    assert gpu == {"queue": "gpu", "alive": True, "workers": ["all@b"]}


def test_no_heartbeat_at_all():
    assert liveness_report([], queues={"default": "default"}, now=NOW, interval_s=10) == {
        "workers": [], "queues": {"default": {"queue": "default", "alive": False, "workers": []}}}
