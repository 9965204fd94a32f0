"""A file-system storage that takes its time to write each file: fault tests kill a worker mid-extraction.

The extraction itself is real; only the storage is slow (as object storage is), so that "midway" is a
window of seconds on any machine rather than a race against a fast one.
"""

import os
import time

from django.core.files.storage import FileSystemStorage


class SlowFileSystemStorage(FileSystemStorage):
    def _save(self, name, content):
        time.sleep(float(os.environ.get("CTS_TEST_SLOW_SAVE_S", "0.1")))
        return super()._save(name, content)
