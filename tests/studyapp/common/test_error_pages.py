"""The 403, 404 and 500 pages as a user meets them (DEBUG off): styled, with the navigation and a log-in link."""

import pytest

pytestmark = pytest.mark.django_db

STYLESHEET = "/static/css/app.css"


@pytest.fixture(autouse=True)
def production(settings):
    settings.DEBUG = False


def _page(response) -> str:
    html = response.content.decode()
    assert STYLESHEET in html and '<nav class="app">' in html
    return html


def test_403_names_the_user_and_offers_another_log_in(client_for):
    response = client_for("coordinator").get("/clips/worklist/")
    assert response.status_code == 403
    html = _page(response)
    assert 'data-status="403"' in html and "not for your role" in html
    assert "logged in as <strong>coord</strong> (coordinator)" in html
    assert 'href="/accounts/login/?next=/clips/worklist/"' in html and "Log in as someone else" in html
    assert 'href="/cohort/"' in html  # the site navigation of the role


def test_404_for_a_missing_hand(client_for, client):
    response = client_for("annotator").get("/cohort/hands/987654/")
    assert response.status_code == 404
    html = _page(response)
    assert 'data-status="404"' in html and "Not found" in html and 'href="/clips/worklist/"' in html
    client.logout()
    anonymous = client.get("/no/such/page/")
    assert anonymous.status_code == 404
    html = _page(anonymous)
    assert 'href="/accounts/login/?next=/no/such/page/"' in html and ">Log in</a>" in html


@pytest.mark.urls("tests.studyapp.common.error_urls")
def test_500_renders_without_a_request_context(client_for):
    client = client_for("pi")
    client.raise_request_exception = False
    response = client.get("/fail/")
    assert response.status_code == 500
    html = _page(response)
    assert 'data-status="500"' in html and "error on our side" in html
    assert 'href="/accounts/login/"' in html and 'href="/cohort/"' in html
