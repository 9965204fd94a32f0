import threading
import time

import pytest

from mlworker.ml.cache import ModelCache


def test_threads_asking_together_load_a_model_once_and_use_it_one_at_a_time():
    cache = ModelCache(size=2)
    loads, inside, most_inside = [], [0], [0]
    lock = threading.Lock()

    def load():
        loads.append(1)
        time.sleep(0.05)  # long enough for every thread to arrive while the first loads
        return object()

    seen = []

    def work():
        with cache.use("a", load) as model:
            with lock:
                inside[0] += 1
                most_inside[0] = max(most_inside[0], inside[0])
            time.sleep(0.01)
            seen.append(model)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1 and len(set(map(id, seen))) == 1 and len(seen) == 8
    assert most_inside[0] == 1  # one thread at a time holds a model (explanation hooks are per model)


def test_different_models_run_in_parallel():
    cache = ModelCache(size=2)
    barrier = threading.Barrier(2, timeout=5)

    def work(key):
        with cache.use(key, object):
            barrier.wait()  # both inside at once, or this raises BrokenBarrierError

    threads = [threading.Thread(target=work, args=(key,)) for key in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not barrier.broken


def test_the_cache_is_bounded_and_drops_the_least_recently_used():
    cache = ModelCache(size=2)
    loads = []

    def loader(key):
        return lambda: loads.append(key) or key

    for key in ("a", "b", "a", "c"):  # "b" is the least recently used when "c" arrives
        with cache.use(key, loader(key)) as value:
            assert value == key
    assert cache.keys() == ["a", "c"] and len(cache) == 2
    with cache.use("b", loader("b")):
        pass
    assert loads == ["a", "b", "c", "b"] and cache.keys() == ["c", "b"]


def test_a_load_that_fails_is_tried_again():
    cache = ModelCache(size=1)
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise FileNotFoundError("weights")
        return "model"

    with pytest.raises(FileNotFoundError):
        with cache.use("a", flaky):
            pass
    with cache.use("a", flaky) as model:
        assert model == "model"
    with pytest.raises(ValueError):
        ModelCache(size=0)
