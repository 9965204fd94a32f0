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


def test_bland_altman_covers_every_pair_of_three_raters_with_the_limits_cis(tmp_path, client_for):
    raters = [UserFactory(username=f"r{i}", role="annotator") for i in range(3)]
    halves = [[6, 6.5, 7], [8, 8, 8.5], [10, 9, 10], [7, 7.5, 6.5]]
    for i, per_rater in enumerate(halves):
        clip, _ = make_clip(tmp_path, hand=make_hand(study_code=f"TP-{i}"), name=f"p{i}.mp4", seed=i, n_frames=4)
        for rater, half in zip(raters, per_rater):
            services.outline_create(frame=clip.frames.first(), annotator=rater, points=square(80, 60, half))
    csa = selectors.csa_agreement()
    pairs = csa["bland_altman_pairs"]
    assert [p["raters"] for p in pairs] == [["r0", "r1"], ["r0", "r2"], ["r1", "r2"]]
    assert csa["bland_altman"] == pairs[0]
    areas = np.array([[(2 * h * 0.25) ** 2 for h in row] for row in halves])
    for pair, (i, j) in zip(pairs, [(0, 1), (0, 2), (1, 2)]):
        d = areas[:, i] - areas[:, j]
        assert pair["bias"] == pytest.approx(d.mean())
        low, high = pair["loa_low_ci"]
        assert low < pair["loa_low"] < high
    html = client_for("pi").get("/clips/agreement/").content.decode()
    assert 'id="ba-pairs"' in html and "r1 − r2" in html
    assert 'data-figure="figure-bland-altman-3"' in html
