"""An annotator's day starts at the worklist: log in, see the assigned clip's progress, take an open clip and
open its annotation page from the list."""

import pytest

from studyapp.annotations import services as annotation_services
from studyapp.annotations.models import RoiAnnotation
from studyapp.clips import services
from tests.factories import TEST_PASSWORD, UserFactory, make_clip, make_hand


pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def work(tmp_path, monkeypatch):
    """An annotator with one clip assigned (2 of 4 frames confirmed) and one open clip, both extracted."""
    monkeypatch.setattr(services, "_queue_extraction", lambda clip_id: None)
    annotator = UserFactory(username="anna", role="annotator")
    coordinator = UserFactory(username="cora", role="coordinator")
    assigned, _ = make_clip(tmp_path, hand=make_hand(study_code="W-001"), name="a.mp4", seed=1, n_frames=4)
    services.clip_assign(clip=assigned, annotator=annotator, assigned_by=coordinator)
    for frame in assigned.frames.order_by("index")[:2]:
        annotation_services.roi_save(frame=frame, annotator=annotator, center_x=80, center_y=60,
                                     status=RoiAnnotation.Status.CONFIRMED)
    open_clip, _ = make_clip(tmp_path, hand=make_hand(study_code="W-002"), name="b.mp4", seed=2, n_frames=4)
    return annotator, assigned, open_clip


def test_annotator_works_from_the_worklist(live_server, page, work):
    annotator, assigned, open_clip = work
    base = live_server.url
    page.goto(f"{base}/accounts/login/?next=/clips/worklist/")
    page.fill("#id_username", annotator.username)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/clips/worklist/")
    assert page.locator("nav.app a", has_text="Worklist").get_attribute("href") == "/clips/worklist/"

    mine = page.locator(f"#assigned #work-clip-{assigned.pk}")
    assert "W-001" in mine.inner_text()
    assert mine.locator(".roi-progress").inner_text() == "2 / 4"
    assert mine.locator("progress").get_attribute("value") == "2"
    assert "not yet" in mine.locator(".outline-cell").inner_text()

    # Take the open clip: it moves to the clips assigned to me.
    page.locator(f"#open #work-clip-{open_clip.pk} .take-button").click()
    page.wait_for_url(f"{base}/clips/worklist/")
    taken = page.locator(f"#assigned #work-clip-{open_clip.pk}")
    taken.wait_for()
    assert "on your worklist now" in page.locator(".messages").inner_text()
    assert taken.locator(".roi-progress").inner_text() == "0 / 4"
    assert page.locator(f"#open #work-clip-{open_clip.pk}").count() == 0
    open_clip.refresh_from_db()
    assert open_clip.assigned_to_id == annotator.pk

    # And annotate it from the list.
    taken.locator(".annotate-link").click()
    page.wait_for_url(f"{base}/clips/{open_clip.pk}/annotate/")
    page.wait_for_selector('#annotate[data-ready="true"]')
    assert page.locator("#count-total").inner_text() == "4"
