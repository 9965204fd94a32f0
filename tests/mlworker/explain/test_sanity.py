import numpy as np
import pytest
import torch
from torch import nn

from mlworker.explain.sanity import SANITY_THRESHOLD, randomised_copy, sanity_check
from mlworker.ml import MODEL_NAMES, build_model

BOX = (slice(3, 7), slice(3, 7))


def _task(n, seed):
    """Grey 16 × 16 crops; CTS (1) when the box at rows/cols 3..6 is bright. Nothing else carries signal."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 16, 16, generator=g)
    y = torch.arange(n) % 2
    x[y == 1, :, BOX[0], BOX[1]] += 1.0
    return x, y


def _net():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 16 * 16, 2),
    )


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = _net()
    x, y = _task(256, seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    x_test, y_test = _task(64, seed=2)
    with torch.no_grad():
        assert (model(x_test).argmax(1) == y_test).float().mean() > 0.95  # it did learn the box
    return model


def _gradient_x_input(model, images):
    """Gradient × input of the CTS logit: depends on the weights through the gradient."""
    x = images.clone().requires_grad_(True)
    model(x)[:, 1].sum().backward()
    return (x.grad * x).detach()[:, 0].numpy()


def test_gradient_maps_of_a_trained_model_pass(trained):
    images, _ = _task(8, seed=3)
    result = sanity_check(_gradient_x_input, trained, images, seed=0)
    assert result["passed"] is True and result["median"] < SANITY_THRESHOLD
    assert len(result["spearman"]) == 8 and result["n_frames"] == 8
    assert result["median"] == pytest.approx(np.median(np.abs(result["spearman"])))
    assert result["threshold"] == SANITY_THRESHOLD and "reflect the trained model" in result["reason"]
    # The trained model's map concentrates on the box: the check compares a real map, not noise.
    trained_map = np.abs(_gradient_x_input(trained, images[1:2]))[0]
    assert trained_map[BOX].mean() > 3 * trained_map.mean()


def test_a_map_that_ignores_the_model_fails(trained):
    images, _ = _task(8, seed=3)
    result = sanity_check(lambda model, x: x[:, 0].numpy(), trained, images)
    assert result["passed"] is False and result["spearman"] == pytest.approx([1.0] * 8)
    assert "do not reflect what the model learned" in result["reason"]


def test_constant_maps_count_as_unchanged(trained):
    images, _ = _task(4, seed=3)
    flat = sanity_check(lambda model, x: np.zeros((len(x), 16, 16)), trained, images)
    assert flat["spearman"] == [1.0] * 4 and flat["passed"] is False

    def flat_when_random(model, x):
        maps = _gradient_x_input(model, x)
        return maps if model is trained else np.zeros_like(maps)

    changed = sanity_check(flat_when_random, trained, images)
    assert changed["spearman"] == [0.0] * 4 and changed["passed"] is True

    # A method that gives the trained model a flat map shows nothing of it, even if the copy's map varies.
    def flat_when_trained(model, x):
        maps = _gradient_x_input(model, x)
        return np.zeros_like(maps) if model is trained else maps

    blind = sanity_check(flat_when_trained, trained, images)
    assert blind["spearman"] == [1.0] * 4 and blind["passed"] is False


def test_bad_maps_and_thresholds_are_refused(trained):
    images, _ = _task(4, seed=3)
    with pytest.raises(ValueError, match="one map per frame"):
        sanity_check(lambda model, x: np.zeros((2, 16, 16)), trained, images)
    with pytest.raises(ValueError, match="NaN"):
        sanity_check(lambda model, x: np.full((4, 16, 16), np.nan), trained, images)
    with pytest.raises(ValueError, match="threshold"):
        sanity_check(_gradient_x_input, trained, images, threshold=0)
    with pytest.raises(ValueError, match="at least one frame"):
        sanity_check(_gradient_x_input, trained, images[:0])


def test_randomised_copy_is_seeded_and_leaves_the_model_and_global_rng_alone(trained):
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    rng_state = torch.get_rng_state()
    a = randomised_copy(trained, seed=5)
    b = randomised_copy(trained, seed=5)
    c = randomised_copy(trained, seed=6)
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert all(torch.equal(v, before[k]) for k, v in trained.state_dict().items())
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert not torch.equal(a[0].weight, c[0].weight)
    assert a.training is trained.training


def test_a_module_without_reset_parameters_is_shuffled():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = nn.Parameter(torch.arange(64.0))

        def forward(self, x):
            return x * self.gain

    model = nn.Sequential(Scale())
    copy = randomised_copy(model, seed=0)
    assert not torch.equal(copy[0].gain, model[0].gain)
    assert torch.equal(copy[0].gain.sort().values, model[0].gain)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_weight_of_the_study_models_is_redrawn(name):
    model = build_model(name, num_classes=2, pretrained=False).eval()
    with torch.no_grad():  # stand-in for training: move every weight and the batch-norm statistics
        for p in model.parameters():
            p.add_(torch.randn_like(p) + 0.5)
        for buf_name, buf in model.named_buffers():
            if buf_name.endswith(("running_mean", "running_var")):
                buf.add_(1.0)
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    copy = randomised_copy(model, seed=0)
    for k, v in copy.named_parameters():
        assert not torch.equal(v, trained[k]), k
    for k, v in copy.named_buffers():
        if k.endswith("running_var"):
            assert torch.equal(v, torch.ones_like(v)), k
    assert all(torch.equal(v, trained[k]) for k, v in model.state_dict().items())
    with torch.no_grad():
        out = copy(torch.rand(1, 3, 64, 64))
    assert out.shape == (1, 2) and torch.isfinite(out).all()
