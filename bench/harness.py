"""What the page benchmarks share: a throwaway database and media folder of their own, removed afterwards."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.test.utils import setup_test_environment


@contextmanager
def throwaway_study(name: str) -> Iterator[Path]:
    """Create `bench_<name>_<database>` (dropped after) and a temporary MEDIA_ROOT (removed after); yield it."""
    setup_test_environment()
    media = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    settings.MEDIA_ROOT = media
    database = settings.DATABASES["default"]
    database.setdefault("TEST", {})["NAME"] = f"bench_{name}_{database['NAME']}"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        yield media
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(media, ignore_errors=True)
