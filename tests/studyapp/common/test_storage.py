from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, InMemoryStorage, Storage

from studyapp.common import storage


def test_disk_storage_gives_the_file_itself(tmp_path, monkeypatch):
    disk = FileSystemStorage(location=tmp_path / "media")
    monkeypatch.setattr(storage, "default_storage", disk)
    name = disk.save("clips/a.bin", ContentFile(b"abc"))
    assert storage.local_path(name, tmp_path / "cache") == tmp_path / "media" / name
    assert not (tmp_path / "cache").exists()


class RemoteLikeStorage(Storage):
    """Files kept in memory behind the bare Storage API, with no local path: how S3 storage looks to the code."""

    def __init__(self):
        self._files = InMemoryStorage()

    def _open(self, name, mode="rb"):
        return self._files.open(name, mode)

    def _save(self, name, content):
        return self._files.save(name, content)

    def delete(self, name):
        self._files.delete(name)

    def exists(self, name):
        return self._files.exists(name)


def test_storage_without_paths_is_copied_once_into_the_cache(tmp_path, monkeypatch):
    remote = RemoteLikeStorage()
    monkeypatch.setattr(storage, "default_storage", remote)
    name = remote.save("frames/x/frame_00001.png", ContentFile(b"png bytes"))
    path = storage.local_path(name, tmp_path)
    assert path == tmp_path / name and path.read_bytes() == b"png bytes"
    remote.delete(name)
    assert storage.local_path(name, tmp_path).read_bytes() == b"png bytes"  # served from the cache
