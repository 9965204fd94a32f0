"""Training loop: exact CPU reproducibility, resume after a crash, cancellation, early stopping, reloading."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from mlworker.ml import (
    BatchAugment,
    CropTensors,
    Speedups,
    TrainConfig,
    build_model,
    evaluate,
    fit,
    load_trained,
    make_optimizer,
    predict_proba,
    roc_auc,
    runtime_settings,
    select_device,
    train_one_epoch,
)

MakeCrops = Callable[..., CropTensors]


def _config(**overrides: object) -> TrainConfig:
    base = dict(model_name="squeezenet1_1", epochs=2, batch_size=8, lr=1e-3, pretrained=False, input_size=32,
                device="cpu")
    base.update(overrides)
    return TrainConfig(**base)


def _without_time(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


def _model_state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_config_round_trips_and_rejects_bad_values() -> None:
    config = _config(optimizer="sgd", weight_decay=1e-4, early_stopping_patience=None)
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="Unknown TrainConfig field"):
        TrainConfig.from_dict({**config.to_dict(), "learning_rate": 0.1})
    with pytest.raises(ValueError, match="choose one of adam, sgd, adamw"):
        _config(optimizer="rmsprop")
    with pytest.raises(ValueError, match="model_name"):
        _config(model_name="resnet18")


def test_select_device() -> None:
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="device='auto' or 'cpu'"):
            select_device("cuda")


def test_roc_auc_by_ranks() -> None:
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == pytest.approx(0.5)  # ties count half
    assert math.isnan(roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    labels, scores = rng.integers(0, 2, 50), rng.integers(0, 5, 50) / 4  # many ties
    assert roc_auc(labels, scores) == pytest.approx(sklearn_metrics.roc_auc_score(labels, scores))


def test_train_one_epoch_and_evaluate_metrics(make_crops: MakeCrops) -> None:
    torch.manual_seed(0)
    model = build_model("mobilenetv2_100", pretrained=False)  # has BatchNorm: a batch of one would fail
    crops = make_crops(17)
    config = _config(model_name="mobilenetv2_100")
    metrics = train_one_epoch(
        model, crops, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3), config=config,
        device=torch.device("cpu"), generator=torch.Generator().manual_seed(0),
        augment=BatchAugment(generator=torch.Generator().manual_seed(1)),
    )
    assert metrics["n"] == 16  # the trailing single-sample batch is dropped
    assert math.isfinite(metrics["loss"]) and 0 <= metrics["accuracy"] <= 1

    result = evaluate(model, crops, device=torch.device("cpu"), batch_size=5)
    assert result["n"] == 17 and result["probs"].shape == (17,)
    assert ((result["probs"] >= 0) & (result["probs"] <= 1)).all()
    assert result["auc"] == pytest.approx(roc_auc(crops.labels.numpy(), result["probs"]))
    predicted = (result["probs"] > 0.5).astype(int)
    assert result["accuracy"] == pytest.approx((predicted == crops.labels.numpy()).mean())
    # Another batch size may pick other CPU kernels: equal up to float32 rounding.
    np.testing.assert_allclose(predict_proba(model, crops, device=torch.device("cpu"), batch_size=4),
                               result["probs"], rtol=1e-4)


def test_fit_is_exactly_reproducible_on_cpu(make_crops: MakeCrops, tmp_path: Path) -> None:
    train, val = make_crops(16), make_crops(8, seed=1)
    first = fit(_config(), train, val, checkpoint_dir=tmp_path / "a")
    second = fit(_config(), train, val, checkpoint_dir=tmp_path / "b")
    assert len(first.history) == 2 and first.device == "cpu"
    assert _without_time(first.history) == _without_time(second.history)
    assert _same_state(_model_state(first.last_checkpoint), _model_state(second.last_checkpoint))
    other_seed = fit(_config(seed=1), train, val, checkpoint_dir=tmp_path / "c")
    assert _without_time(other_seed.history) != _without_time(first.history)
    # The registered file (best.pt) holds the weights without wall-clock timings: a rerun's SHA-256 is the same.
    assert first.best_checkpoint.read_bytes() == second.best_checkpoint.read_bytes()
    assert first.last_checkpoint.read_bytes() != second.last_checkpoint.read_bytes()  # timings live there
    assert first.runtime == second.runtime == runtime_settings(torch.device("cpu")) | {
        "deterministic_algorithms": True, "bf16": False, "channels_last": False, "fused_optimizer": False,
        "compile": None}
    assert first.runtime["torch_threads"] == torch.get_num_threads()


def test_resume_after_a_crash_matches_an_uninterrupted_run(make_crops: MakeCrops, tmp_path: Path) -> None:
    train, val = make_crops(16), make_crops(8, seed=1)
    config = _config(model_name="mobilenetv2_100", epochs=3)  # BatchNorm buffers and Adam state must resume too
    straight = fit(config, train, val, checkpoint_dir=tmp_path / "straight")

    def crash_after_epoch_1(record: dict[str, float]) -> bool:
        if record["epoch"] == 1:
            raise KeyboardInterrupt("worker killed")
        return True

    crashed_dir = tmp_path / "crashed"
    with pytest.raises(KeyboardInterrupt):
        fit(config, train, val, checkpoint_dir=crashed_dir, on_epoch=crash_after_epoch_1)
    assert torch.load(crashed_dir / "last.pt", weights_only=True)["epoch"] == 1

    seen: list[int] = []
    resumed = fit(config, train, val, checkpoint_dir=crashed_dir, on_epoch=lambda r: seen.append(r["epoch"]))
    assert resumed.resumed_from_epoch == 1 and seen == [2, 3]
    assert _without_time(resumed.history) == _without_time(straight.history)
    assert resumed.best_epoch == straight.best_epoch
    assert _same_state(_model_state(resumed.last_checkpoint), _model_state(straight.last_checkpoint))


def test_cancel_stops_after_the_current_epoch(make_crops: MakeCrops, tmp_path: Path) -> None:
    result = fit(_config(epochs=5), make_crops(16), make_crops(8, seed=1), checkpoint_dir=tmp_path,
                 on_epoch=lambda record: record["epoch"] < 2)
    assert result.cancelled and not result.stopped_early
    assert [r["epoch"] for r in result.history] == [1, 2]
    assert torch.load(result.last_checkpoint, weights_only=True)["epoch"] == 2


def test_early_stopping_on_validation_loss(make_crops: MakeCrops, tmp_path: Path) -> None:
    # Validation labels are the opposite of training labels, so learning makes validation loss worse.
    train, val = make_crops(16), make_crops(8, seed=1, invert_labels=True)
    config = _config(epochs=8, lr=3e-3, early_stopping_patience=2)
    result = fit(config, train, val, checkpoint_dir=tmp_path)
    losses = [r["val_loss"] for r in result.history]
    assert result.stopped_early and len(losses) < 8
    assert result.best_epoch == int(np.argmin(losses)) + 1
    assert len(losses) - result.best_epoch == 2
    assert result.best_val_loss == min(losses)
    # A stopped run is finished: calling fit again returns it without training.
    again = fit(config, train, val, checkpoint_dir=tmp_path)
    assert again.stopped_early and _without_time(again.history) == _without_time(result.history)


def test_best_checkpoint_reloads_for_prediction(make_crops: MakeCrops, tmp_path: Path) -> None:
    train, val = make_crops(16), make_crops(8, seed=1)
    result = fit(_config(epochs=3), train, val, checkpoint_dir=tmp_path)
    assert result.best_checkpoint == tmp_path / "best.pt"
    model, config = load_trained(result.best_checkpoint, device="cpu")
    assert config == _config(epochs=3) and not model.training
    metrics = evaluate(model, val, device=torch.device("cpu"), batch_size=config.batch_size)
    assert metrics["loss"] == result.history[result.best_epoch - 1]["val_loss"]
    saved = torch.load(result.last_checkpoint, weights_only=True)
    assert set(saved["rng"]) >= {"torch_cpu", "shuffle", "augment", "numpy"}
    assert saved["versions"]["torch"] == torch.__version__


def test_resume_refuses_a_different_run(make_crops: MakeCrops, tmp_path: Path) -> None:
    train, val = make_crops(16), make_crops(8, seed=1)
    fit(_config(epochs=1), train, val, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="lr: 0.001 in checkpoint vs 0.01 now.*new checkpoint_dir"):
        fit(_config(epochs=2, lr=1e-2), train, val, checkpoint_dir=tmp_path)
    extended = fit(_config(epochs=2), train, val, checkpoint_dir=tmp_path)  # more epochs: continues
    assert extended.resumed_from_epoch == 1 and len(extended.history) == 2


def test_fit_rejects_mismatched_crop_size(make_crops: MakeCrops, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="load_crops\\(..., size=32\\)"):
        fit(_config(), make_crops(16, size=24), make_crops(8, size=24), checkpoint_dir=tmp_path)


def test_should_stop_cancels_within_an_epoch_and_keeps_the_last_checkpoint(tmp_path):
    crops = CropTensors(torch.randint(0, 255, (24, 1, 32, 32), dtype=torch.uint8), torch.arange(24) % 2,
                        torch.arange(24) // 4, torch.arange(24))
    config = TrainConfig(model_name="squeezenet1_1", pretrained=False, epochs=3, batch_size=4, input_size=32,
                         early_stopping_patience=None)
    asked = []

    def should_stop():  # let epoch 1 finish (6 batches), then stop during epoch 2
        asked.append(1)
        return len(asked) > 8

    result = fit(config, crops, crops.select(range(8)), checkpoint_dir=tmp_path, should_stop=should_stop)
    assert result.cancelled and [h["epoch"] for h in result.history] == [1]
    assert torch.load(tmp_path / "last.pt", weights_only=False)["epoch"] == 1


def test_progress_is_reported_after_every_batch_with_throughput_and_eta(make_crops: MakeCrops,
                                                                        tmp_path: Path) -> None:
    seen: list[dict] = []
    result = fit(_config(epochs=2), make_crops(20), make_crops(8, seed=1), checkpoint_dir=tmp_path,
                 on_progress=seen.append)
    # 20 crops in batches of 8: 8, 8, 4 -> three batches per epoch.
    assert [(p["epoch"], p["batch"], p["batches"], p["images"]) for p in seen] == [
        (1, 1, 3, 8), (1, 2, 3, 16), (1, 3, 3, 20), (2, 1, 3, 8), (2, 2, 3, 16), (2, 3, 3, 20)]
    assert all(p["images_per_s"] > 0 and p["epochs"] == 2 for p in seen)
    assert seen[-1]["epoch_eta_s"] == 0 and seen[-1]["run_eta_s"] == 0
    assert seen[2]["epoch_eta_s"] == 0 and seen[2]["run_eta_s"] > 0  # end of epoch 1, one epoch to go
    assert result.images_per_s == pytest.approx(2 * 20 / sum(h["seconds"] for h in result.history))


def test_epoch_progress_arithmetic() -> None:
    from mlworker.ml import epoch_progress

    first = epoch_progress(epoch=1, epochs=3, batches_done=2, batches_total=10, images=64, elapsed_s=4.0, history=[])
    assert first["images_per_s"] == 16.0 and first["epoch_eta_s"] == 16.0
    assert first["run_eta_s"] == 16.0 + 2 * 20.0  # no finished epoch yet: this epoch's rate, 20 s an epoch
    later = epoch_progress(epoch=3, epochs=5, batches_done=5, batches_total=10, images=160, elapsed_s=10.0,
                           history=[{"seconds": 30.0}, {"seconds": 34.0}])
    assert later["epoch_eta_s"] == 10.0 and later["run_eta_s"] == 10.0 + 2 * 32.0  # finished epochs' mean


def test_a_one_class_validation_set_records_the_auc_as_undefined(make_crops: MakeCrops, tmp_path: Path) -> None:
    val = make_crops(8, seed=1)
    controls = val.select(torch.nonzero(val.labels == 0).flatten())
    result = fit(_config(epochs=2), make_crops(16), controls, checkpoint_dir=tmp_path)
    assert [r["val_auc"] for r in result.history] == [None, None]
    assert {r["val_auc_undefined"] for r in result.history} == {"one class in validation"}
    assert all(math.isfinite(r["val_loss"]) for r in result.history) and result.best_checkpoint is not None


def test_a_diverging_run_stops_with_its_losses_undefined(make_crops: MakeCrops, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import mlworker.ml.config

    monkeypatch.setattr(mlworker.ml.config, "LR_MAX", 1e30)  # the range refuses such rates; bypass it here
    result = fit(_config(epochs=5, lr=1e6, optimizer="sgd", early_stopping_patience=None), make_crops(16),
                 make_crops(8, seed=1), checkpoint_dir=tmp_path)
    assert result.diverged and len(result.history) < 5
    last = result.history[-1]
    assert last["train_loss"] is None and "diverged" in last["train_loss_undefined"]
    assert torch.load(tmp_path / "last.pt", weights_only=True)["diverged"]


@pytest.mark.parametrize("lr", [0.0, 1e-9, 0.5, float("nan")])
def test_learning_rates_outside_the_range_are_refused(lr: float) -> None:
    with pytest.raises(ValueError, match="lr must be between"):
        _config(lr=lr)


def test_checkpoints_every_k_epochs_resume_to_the_same_run(make_crops: MakeCrops, tmp_path: Path) -> None:
    train, val = make_crops(16), make_crops(8, seed=1)
    config = _config(model_name="mobilenetv2_100", epochs=4, checkpoint_every=2)
    straight = fit(config, train, val, checkpoint_dir=tmp_path / "straight")

    def crash_after_epoch_3(record: dict[str, float]) -> bool:
        if record["epoch"] == 3:
            raise KeyboardInterrupt("worker killed")
        return True

    crashed_dir = tmp_path / "crashed"
    with pytest.raises(KeyboardInterrupt):
        fit(config, train, val, checkpoint_dir=crashed_dir, on_epoch=crash_after_epoch_3)
    assert torch.load(crashed_dir / "last.pt", weights_only=True)["epoch"] == 2  # epoch 3 was not written
    resumed = fit(config, train, val, checkpoint_dir=crashed_dir)
    assert resumed.resumed_from_epoch == 2
    assert _without_time(resumed.history) == _without_time(straight.history)
    assert resumed.best_epoch == straight.best_epoch
    assert _same_state(_model_state(resumed.best_checkpoint), _model_state(straight.best_checkpoint))
    assert torch.load(straight.best_checkpoint, weights_only=True)["epoch"] == straight.best_epoch


def test_speedups_apply_on_cuda_only_and_follow_the_config() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    config = _config()
    assert (config.bf16, config.channels_last, config.fused_optimizer, config.compile) == (True, True, True, None)
    assert Speedups.of(config, cpu) == Speedups(bf16=False, channels_last=False, fused_optimizer=False, compile=None)
    assert Speedups.of(config, cuda) == Speedups(bf16=True, channels_last=True, fused_optimizer=True, compile=None)
    off = _config(bf16=False, channels_last=False, fused_optimizer=False, compile="inductor")
    assert Speedups.of(off, cuda) == Speedups(bf16=False, channels_last=False, fused_optimizer=False,
                                              compile="inductor")
    # Evaluation and explanations without a config: bf16 and channels_last on CUDA, nothing to fuse or compile.
    assert Speedups.of(None, cuda) == Speedups(bf16=True, channels_last=True, fused_optimizer=False, compile=None)
    with pytest.raises(ValueError, match="compile 'tensorrt' is unknown"):
        _config(compile="tensorrt")
    # A config stored before these options existed loads with the defaults.
    new_fields = ("bf16", "channels_last", "fused_optimizer", "compile")
    old = {k: v for k, v in config.to_dict().items() if k not in new_fields}
    assert TrainConfig.from_dict(old) == config


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_fused_optimizers_are_asked_for_by_flag(optimizer: str) -> None:
    model = build_model("squeezenet1_1", pretrained=False)
    assert make_optimizer(model, _config(optimizer=optimizer), fused=True).defaults["fused"] is True
    assert not make_optimizer(model, _config(optimizer=optimizer)).defaults.get("fused")


def test_a_compiled_step_trains_the_same_run_and_saves_plain_weights(make_crops: MakeCrops, tmp_path: Path) -> None:
    train, val = make_crops(16), make_crops(8, seed=1)
    eager = fit(_config(), train, val, checkpoint_dir=tmp_path / "eager")
    # The "eager" backend traces with dynamo and runs the captured graph with the same kernels: same numbers.
    compiled = fit(_config(compile="eager"), train, val, checkpoint_dir=tmp_path / "compiled")
    assert compiled.runtime["compile"] == "eager" and eager.runtime["compile"] is None
    assert _without_time(compiled.history) == _without_time(eager.history)
    state = _model_state(compiled.best_checkpoint)
    assert not any(k.startswith("_orig_mod") for k in state)
    assert _same_state(state, _model_state(eager.best_checkpoint))
    load_trained(compiled.best_checkpoint, device="cpu")


def test_resume_survives_an_augmentation_state_from_another_device(make_crops: MakeCrops, tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    train, val = make_crops(16), make_crops(8, seed=1)
    fit(_config(epochs=1), train, val, checkpoint_dir=tmp_path)
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    # What a CUDA generator's state looks like (16 bytes of Philox seed and offset), and a config written before
    # the speed options existed: the run resumes on the CPU all the same.
    last["rng"]["augment"] = torch.Generator("cpu").get_state()[:16].clone()
    last["config"] = {k: v for k, v in last["config"].items() if k not in ("bf16", "fused_optimizer")}
    torch.save(last, tmp_path / "last.pt")
    resumed = fit(_config(epochs=2), train, val, checkpoint_dir=tmp_path)
    assert resumed.resumed_from_epoch == 1 and len(resumed.history) == 2
    assert "from another device" in caplog.text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fit_on_cuda_keeps_the_crops_and_the_augmentation_on_the_device(make_crops: MakeCrops,
                                                                         tmp_path: Path) -> None:
    train, val = make_crops(16), make_crops(8, seed=1)
    result = fit(_config(device="cuda", epochs=2, checkpoint_every=1), train, val, checkpoint_dir=tmp_path)
    assert result.device.startswith("cuda") and result.runtime["bf16"] and result.runtime["fused_optimizer"]
    assert all(math.isfinite(h["train_loss"]) for h in result.history)
    augment_state = torch.load(tmp_path / "last.pt", weights_only=True)["rng"]["augment"]
    assert augment_state.numel() == torch.Generator("cuda").get_state().numel()  # drawn by a CUDA generator
    resumed = fit(_config(device="cuda", epochs=3, checkpoint_every=1), train, val, checkpoint_dir=tmp_path)
    assert resumed.resumed_from_epoch == 2 and len(resumed.history) == 3
