import shutil
from pathlib import Path

from django.core.files.storage import default_storage


def local_path(name: str, cache: Path) -> Path:
    """A local file for a stored one: the file itself on disk storage, else a copy kept under `cache`.

    OpenCV, pydicom and the training loop read paths, and remote storages (S3) have none.
    """
    try:
        return Path(default_storage.path(name))
    except NotImplementedError:
        target = cache / name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with default_storage.open(name, "rb") as source, target.open("wb") as out:
                shutil.copyfileobj(source, out)
        return target
