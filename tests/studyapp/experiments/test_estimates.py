"""The launch estimate's arithmetic (pure)."""

import pytest

from studyapp.experiments.estimates import Measured, duration, training_estimate


def test_reference_figure_at_224_px_is_the_readme_benchmark():
    estimate = training_estimate(model_name="mobilenetv2_100", crops=800, epochs=30, input_size=224, measured=None)
    assert estimate.seconds == pytest.approx(800 * 30 * 0.101)  # 101 ms per crop-epoch
    assert "reference" in estimate.source and "no run measured" in estimate.source


def test_reference_figure_scales_with_pixel_count():
    full = training_estimate(model_name="squeezenet1_1", crops=100, epochs=1, input_size=224, measured=None)
    half = training_estimate(model_name="squeezenet1_1", crops=100, epochs=1, input_size=112, measured=None)
    assert half.seconds == pytest.approx(full.seconds / 4) and "scaled from 224 to 112 px" in half.source


def test_measured_throughput_wins_and_is_named():
    measured = Measured(images_per_s=400.0, input_size=224, device="cuda", run_id=7)
    estimate = training_estimate(model_name="efficientnet_b0", crops=8000, epochs=30, input_size=224,
                                 measured=measured)
    assert estimate.seconds == 600.0 and estimate.source == "measured on cuda by run #7 at 224 px"


@pytest.mark.parametrize("seconds, text", [(None, "—"), (0.4, "0 s"), (45, "45 s"), (89, "89 s"), (600, "10 min"),
                                           (5340, "89 min"), (12000, "3 h 20 min")])
def test_duration_for_people(seconds, text):
    assert duration(seconds) == text


def _run(history, best_epoch, epochs, patience):
    from studyapp.experiments.models import TrainingRun

    return TrainingRun(model_name="squeezenet1_1", status="done", best_epoch=best_epoch, history=history,
                       config={"epochs": epochs, "early_stopping_patience": patience})


def _history(losses):
    return [{"epoch": i + 1, "val_loss": loss, "val_auc": 0.5 + i / 100} for i, loss in enumerate(losses)]


def test_kept_weights_note_follows_fits_rule():
    from studyapp.experiments.selectors import kept_weights_note

    stopped = _run(_history([0.9, 0.5, 0.6, 0.7]), best_epoch=2, epochs=30, patience=2)
    assert kept_weights_note(stopped) == (
        "Weights of epoch 2 of 4 kept: lowest validation loss (0.500, validation AUC 0.510). "
        "Stopped early after 2 epochs without a lower validation loss (patience 2; 30 planned).")
    full = _run(_history([0.9, 0.8, 0.7]), best_epoch=3, epochs=3, patience=5)
    assert kept_weights_note(full).endswith("All 3 planned epochs ran.")
    assert kept_weights_note(_run([], best_epoch=None, epochs=3, patience=None)) == ""
    undefined = [{"epoch": 1, "val_loss": 0.7, "val_auc": None, "val_auc_undefined": "one class in validation"},
                 {"epoch": 2, "train_loss": None, "train_loss_undefined": "not finite: training diverged",
                  "val_loss": None, "val_auc": None}]
    assert kept_weights_note(_run(undefined, best_epoch=1, epochs=5, patience=None)) == (
        "Weights of epoch 1 of 2 kept: lowest validation loss (0.700, validation AUC undefined: one class in "
        "validation). Stopped at epoch 2: the training loss was not finite: training diverged.")


@pytest.mark.django_db
def test_launch_estimate_uses_this_installations_measured_throughput(small_study, monkeypatch):
    from django.utils import timezone

    from studyapp.experiments import selectors, services
    from studyapp.experiments.models import TrainingRun

    monkeypatch.setattr(services, "queue_run", lambda run_id: None)
    split = services.split_lock(split=services.split_create(name="s", test_per_group=2))
    run = services.experiment_launch(split=split, models=["mobilenetv2_100"], random_init=True).runs.get()
    TrainingRun.objects.filter(pk=run.pk).update(status="done", images_per_s=50.0, device="cuda",
                                                 finished_at=timezone.now())
    estimate = selectors.launch_estimates(split, models=["mobilenetv2_100", "efficientnet_b0"], epochs=4,
                                          input_size=224, seed=0)
    crops = len(services.fit_val_test(split.manifest, seed=0)[0])
    measured, reference = estimate["rows"]
    assert measured["seconds"] == pytest.approx(crops * 4 / 50.0)
    assert measured["source"] == f"measured on cuda by run #{run.pk} at 224 px"
    assert "reference" in reference["source"] and estimate["crops"] == crops
    other_size = selectors.launch_estimates(split, models=["mobilenetv2_100"], epochs=4, input_size=128, seed=0)
    assert "reference" in other_size["rows"][0]["source"]  # measured at 224 px only
    # Two permuted-label controls train the model twice more: three times as long in all.
    with_controls = selectors.launch_estimates(split, models=["mobilenetv2_100"], epochs=4, input_size=224, seed=0,
                                               null_controls=2)
    assert with_controls["total"] == duration(3 * crops * 4 / 50.0)


@pytest.mark.django_db
def test_the_estimate_prefers_the_device_training_used_last(small_study, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from studyapp.experiments import selectors, services
    from studyapp.experiments.models import TrainingRun

    monkeypatch.setattr(services, "queue_run", lambda run_id: None)
    split = services.split_lock(split=services.split_create(name="s", test_per_group=2))
    now = timezone.now()
    runs = {}
    for i, (model, device) in enumerate([("mobilenetv2_100", "cuda"), ("mobilenetv2_100", "cpu"),
                                         ("squeezenet1_1", "cuda")]):
        run = services.experiment_launch(split=split, models=[model], random_init=True, name=f"e{i}").runs.get()
        TrainingRun.objects.filter(pk=run.pk).update(status="done", images_per_s=10.0 * (i + 1), device=device,
                                                     finished_at=now + timedelta(minutes=i))
        runs[i] = run.pk
    row = selectors.launch_estimates(split, models=["mobilenetv2_100"], epochs=1, input_size=224, seed=0)["rows"][0]
    assert row["source"] == f"measured on cuda by run #{runs[0]} at 224 px"  # the latest run trained on cuda
