"""Failed-login throttling: the login page, the admin and the API token endpoint share one count per username."""

import pytest
from rest_framework.test import APIClient

from studyapp.accounts.models import FailedLogin
from studyapp.accounts.throttle import ADDRESS_FACTOR, seconds_locked
from tests.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings):
    settings.CTS_LOGIN_MAX_FAILURES, settings.CTS_LOGIN_LOCKOUT_S = 3, 600
    return settings


def _login(client, username, password):
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_the_right_password_is_refused_once_an_account_is_locked(client, limits):
    UserFactory(username="coord", role="coordinator")
    for _ in range(3):
        assert "correct username and password" in _login(client, "coord", "guess").content.decode()
    response = _login(client, "coord", TEST_PASSWORD)
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert "Too many failed sign-ins" in response.content.decode()
    assert FailedLogin.objects.filter(username="coord").count() == 3  # refused unchecked: the lock is not extended


def test_a_success_before_the_limit_clears_the_count(client, limits):
    UserFactory(username="coord", role="coordinator")
    _login(client, "coord", "guess"), _login(client, "COORD", "guess")
    assert _login(client, "coord", TEST_PASSWORD).status_code == 302
    assert not FailedLogin.objects.filter(username="coord").exists()


def test_the_api_token_endpoint_shares_the_count_and_answers_429(client, limits):
    UserFactory(username="coord", role="coordinator")
    for _ in range(3):
        _login(client, "coord", "guess")
    response = APIClient().post("/api/auth/token/", {"username": "coord", "password": TEST_PASSWORD})
    assert response.status_code == 429 and response.json()["code"] == "locked"
    assert int(response["Retry-After"]) > 0


def test_the_lock_ends_with_the_window(limits):
    from datetime import timedelta

    from django.utils import timezone

    for _ in range(3):
        FailedLogin.objects.create(username="coord", ip="10.0.0.1")
    assert 590 <= seconds_locked("coord", "10.0.0.9") <= 600
    FailedLogin.objects.update(at=timezone.now() - timedelta(seconds=601))
    assert seconds_locked("coord", "10.0.0.9") == 0


def test_one_address_trying_many_usernames_is_locked_too(limits):
    for i in range(3 * ADDRESS_FACTOR):
        FailedLogin.objects.create(username=f"user{i}", ip="10.0.0.1")
    assert seconds_locked("someone-else", "10.0.0.1") > 0
    assert seconds_locked("someone-else", "10.0.0.2") == 0
