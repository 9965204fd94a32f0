"""A small, thread-safe cache of loaded models: bounded, least recently used dropped first (no torch here)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any

_MISSING = object()


class _Entry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value: Any = _MISSING


class ModelCache:
    """At most `size` loaded models. `with cache.use(key, load) as model:` loads once per key, even when threads
    ask together, and holds the model for this thread alone until the block ends (hooks some explanation
    methods register on a model must not meet another thread's forward pass). Different keys run in parallel."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("the model cache holds at least one model")
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return sum(entry.value is not _MISSING for entry in self._entries.values())

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._entries)

    @contextmanager
    def use(self, key: Hashable, load: Callable[[], Any]) -> Iterator[Any]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)  # a thread still using it keeps its reference
            self._entries.move_to_end(key)
        with entry.lock:
            if entry.value is _MISSING:
                entry.value = load()  # a load that raises leaves the entry empty: the next use tries again
            yield entry.value
