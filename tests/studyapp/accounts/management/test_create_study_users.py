import re

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from studyapp.accounts.management.commands.create_study_users import STUDY_USERS

pytestmark = pytest.mark.django_db


def credentials(text: str) -> dict[str, str]:
    return dict(re.findall(r"^\s+(\S+)\s+(\S+)$", text, flags=re.MULTILINE))


def test_each_account_gets_its_own_password_written_to_the_file(tmp_path, capsys):
    path = tmp_path / "credentials.txt"
    call_command("create_study_users", "--credentials-file", str(path))
    written = credentials(path.read_text())
    assert set(written) == set(STUDY_USERS)
    assert len(set(written.values())) == len(STUDY_USERS)
    assert credentials(capsys.readouterr().out) == written
    for username, password in written.items():
        assert authenticate(username=username, password=password).username == username
        for other in set(written) - {username}:
            assert authenticate(username=other, password=password) is None
    assert get_user_model().objects.get(username="admin").is_superuser
    assert list(get_user_model().objects.get(username="pi").groups.values_list("name", flat=True)) == ["pi"]


def test_password_option_sets_every_account(tmp_path):
    path = tmp_path / "credentials.txt"
    call_command("create_study_users", "--password", "scripted-pw-1", "--credentials-file", str(path))
    assert set(credentials(path.read_text()).values()) == {"scripted-pw-1"}
    for username in STUDY_USERS:
        assert authenticate(username=username, password="scripted-pw-1") is not None


def test_existing_accounts_keep_their_password_and_only_new_ones_are_listed(tmp_path):
    call_command("create_study_users", "--password", "kept-pw-1")
    get_user_model().objects.get(username="annotator").delete()
    path = tmp_path / "credentials.txt"
    call_command("create_study_users", "--credentials-file", str(path))
    assert list(credentials(path.read_text())) == ["annotator"]
    assert authenticate(username="pi", password="kept-pw-1") is not None
