import numpy as np
import pytest

from studyapp.annotations import selectors, services
from tests.factories import UserFactory, make_clip, make_hand

pytestmark = pytest.mark.django_db


def square(cx, cy, half):
    return [[cx - half, cy - half], [cx + half, cy - half], [cx + half, cy + half], [cx - half, cy + half]]


def test_roi_iou_and_csa_icc_and_bland_altman_match_independent_values(tmp_path):
    a = UserFactory(username="rater-a", role="annotator")
    b = UserFactory(username="rater-b", role="annotator")
    halves_a = [6, 8, 10, 7]
    halves_b = [6.5, 8, 9, 7.5]
    clips = []
    for i, (ha, hb) in enumerate(zip(halves_a, halves_b)):
        clip, _ = make_clip(tmp_path, hand=make_hand(study_code=f"AG-{i}"), name=f"c{i}.mp4", seed=i, n_frames=4)
        f = clip.frames.first()
        services.outline_create(frame=f, annotator=a, points=square(80, 60, ha))
        services.outline_create(frame=f, annotator=b, points=square(80, 60, hb))
        clips.append(clip)
    f0 = clips[0].frames.first()
    services.roi_save(frame=f0, annotator=a, center_x=80, center_y=60)
    services.roi_save(frame=f0, annotator=b, center_x=86, center_y=60)  # 6 px right: 54x60 overlap of 60x60

    roi = selectors.roi_agreement()
    assert roi["frames_compared"] == 1
    assert roi["mean_iou"] == pytest.approx((54 * 60) / (2 * 3600 - 54 * 60))

    csa = selectors.csa_agreement()
    areas = np.array([[(2 * ha * 0.25) ** 2, (2 * hb * 0.25) ** 2] for ha, hb in zip(halves_a, halves_b)])
    # ICC(2,1) from the two-way ANOVA mean squares (Shrout & Fleiss 1979), computed here independently.
    n, k = areas.shape
    grand = areas.mean()
    msr = k * ((areas.mean(axis=1) - grand) ** 2).sum() / (n - 1)
    msc = n * ((areas.mean(axis=0) - grand) ** 2).sum() / (k - 1)
    sse = ((areas - areas.mean(axis=1, keepdims=True) - areas.mean(axis=0, keepdims=True) + grand) ** 2).sum()
    mse = sse / ((n - 1) * (k - 1))
    icc = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    assert csa["hands"] == 4 and csa["raters"] == ["rater-a", "rater-b"]
    assert csa["icc"]["icc"] == pytest.approx(icc)
    assert csa["icc"]["ci_low"] < icc < csa["icc"]["ci_high"]
    diff = areas[:, 0] - areas[:, 1]
    assert csa["bland_altman"]["bias"] == pytest.approx(diff.mean())
    assert csa["bland_altman"]["loa_high"] == pytest.approx(diff.mean() + 1.96 * diff.std(ddof=1))


def test_agreement_api_with_too_few_raters(api_for):
    body = api_for("pi").get("/api/agreement/").json()
    assert body["roi"]["frames_compared"] == 0 and body["csa"]["icc"] is None and body["csa"]["note"]


@pytest.mark.parametrize("raters", [2, 3])
def test_identical_raters_give_icc_one_on_the_page_and_the_api(tmp_path, api_for, client_for, raters):
    # Two identical raters used to raise "ICC undefined" (a server error); three gave 0.9999999999999996.
    users = [UserFactory(username=f"same-{i}", role="annotator") for i in range(raters)]
    for i, half in enumerate([6, 8, 10, 7]):
        clip, _ = make_clip(tmp_path, hand=make_hand(study_code=f"ID-{i}"), name=f"i{i}.mp4", seed=i, n_frames=4)
        for user in users:
            services.outline_create(frame=clip.frames.first(), annotator=user, points=square(80, 60, half))
    body = api_for("pi").get("/api/agreement/").json()
    assert body["csa"]["icc"]["icc"] == 1.0 and body["csa"]["icc"]["f_value"] is None
    assert body["csa"]["bland_altman"]["bias"] == 0.0
    page = client_for("pi").get("/clips/agreement/")
    assert page.status_code == 200 and "no residual disagreement" in page.content.decode()
