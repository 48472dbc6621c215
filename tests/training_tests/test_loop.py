"""The shared loop: reproducible on CPU, stops when told to, and turns divergence into an error."""

from __future__ import annotations

import dataclasses

import optuna
import pytest
import torch

from adamtune.data import SourceError, free_memory, load_dataset
from adamtune.training import ConfigError, DivergedError, ModelSource, TrainConfig, evaluate, fit


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_same_seed_same_curve_different_seed_different_curve(digits):
    cfg = TrainConfig(epochs=3, rotation=10, translate=0.1, random_erasing=0.3, dropout=0.2, seed=5)
    a, b = fit(cfg, digits), fit(cfg, digits)
    assert [r.val_loss for r in a.history] == [r.val_loss for r in b.history]
    c = fit(TrainConfig(**{**cfg.to_dict(), "seed": 6}), digits)
    assert [r.val_loss for r in c.history] != [r.val_loss for r in a.history]


def test_learns_digits_and_restores_the_best_epoch(digits):
    result = fit(TrainConfig(epochs=12, lr=3e-3), digits)
    assert result.val_accuracy > 0.93
    assert result.val_loss == min(r.val_loss for r in result.history)
    assert evaluate(result.model, digits.val, digits, "cpu").loss == pytest.approx(result.val_loss, rel=1e-6)


def test_hook_exception_stops_training_at_that_epoch(digits):
    seen = []

    def stop_at_two(record):
        seen.append(record.epoch)
        if record.epoch == 2:
            raise optuna.TrialPruned()

    with pytest.raises(optuna.TrialPruned):
        fit(TrainConfig(epochs=10), digits, on_epoch=stop_at_two)
    assert seen == [0, 1, 2]


def test_a_pruner_really_stops_a_trial_early(digits):
    """A real study and pruner: a trial worse than the threshold ends PRUNED after its first epoch."""
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=0.01))
    epochs = []

    def objective(trial):
        def report(record):
            epochs.append(record.epoch)
            trial.report(record.val_loss, record.epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return fit(TrainConfig(epochs=8), digits, on_epoch=report).val_loss

    study.optimize(objective, n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.PRUNED
    assert epochs == [0]


def test_nan_loss_raises_diverged(digits):
    broken = dataclasses.replace(digits, std=(0.0,))  # a constant-pixel dataset: inputs become inf
    with pytest.raises(DivergedError, match="loss became nan in epoch 0"):
        fit(TrainConfig(epochs=3), broken)


def test_early_stopping_patience(digits):
    result = fit(TrainConfig(epochs=40, lr=2e-2, patience=2), digits)
    assert result.stopped_early
    assert len(result.history) == result.best_epoch + 3


def test_train_plus_validation_runs_given_epochs_without_validation(digits):
    result = fit(TrainConfig(epochs=5), digits, validate=False, stop_after=2)
    assert len(result.history) == 2 and result.history[0].val_loss is None


# One warm-up epoch at half the lr, then each schedule's factor (gamma 0.9, halved every 2 epochs, cosine
# down to 0.01 of lr over the 2 epochs after warm-up); plateau holds the lr while validation improves.
SCHEDULED_LRS = {"none": [0.5, 1, 1, 1], "exponential": [0.5, 1, 0.9, 0.81], "step": [0.5, 1, 1, 0.5],
                 "cosine": [0.5, 1, 0.505, 0.01], "plateau": [0.5, 1, 1, 1]}


@pytest.mark.parametrize("scheduler", SCHEDULED_LRS)
def test_every_scheduler_and_warmup_trains(digits, scheduler):
    result = fit(TrainConfig(epochs=4, scheduler=scheduler, warmup_epochs=1, step_size=2, optimizer="adamw",
                             weight_decay=1e-3, amsgrad=True, grad_clip=1.0, label_smoothing=0.1), digits)
    assert [r.lr for r in result.history] == pytest.approx([f * 1e-3 for f in SCHEDULED_LRS[scheduler]])
    if scheduler == "plateau":
        losses = [r.val_loss for r in result.history]
        assert losses == sorted(losses, reverse=True), "every epoch improved, so the lr was held"
    assert result.val_accuracy > 0.8, "0.86-0.92 after 4 epochs; chance is 0.1"


def test_plateau_cuts_the_lr_after_patience_epochs_without_improvement(digits):
    result = fit(TrainConfig(epochs=8, lr=1e-2, width=32, batch_size=32, scheduler="plateau", warmup_epochs=1,
                             plateau_patience=1, plateau_factor=0.5, rotation=10, translate=0.1, random_crop=1,
                             random_erasing=0.25, dropout=0.1), digits)
    lrs, losses = [r.lr for r in result.history], [r.val_loss for r in result.history]
    cut = next(i for i in range(2, len(lrs)) if lrs[i] < lrs[i - 1])
    assert lrs[cut] == pytest.approx(lrs[cut - 1] / 2)
    best_before = min(losses[:cut - 2])
    assert losses[cut - 2] >= best_before and losses[cut - 1] >= best_before, "two epochs without a new best"
    assert all(lr == lrs[1] for lr in lrs[1:cut]), "held until then"


@pytest.mark.parametrize("model", ["mlp", "cnn", "resnet"])
def test_every_model_trains(digits, model):
    """0.93-0.99 validation accuracy after 3 epochs over seeds 0-5 (mlp lowest); chance is 0.1."""
    result = fit(TrainConfig(model=model, width=16, epochs=3, lr=1e-2, activation="elu", dropout=0.1), digits)
    assert result.param_count > 0 and result.val_accuracy > 0.85


def test_weight_decay_spares_biases(digits):
    from adamtune.training.loop import _optimizer
    from adamtune.training.models import build_model

    model = build_model("mlp", (1, 8, 8), 10, 16, "relu", 0.0)
    groups = _optimizer(model, TrainConfig(weight_decay=0.1), torch.device("cpu")).param_groups
    assert all(p.ndim >= 2 for p in groups[0]["params"]) and groups[0]["weight_decay"] == 0.1
    assert all(p.ndim == 1 for p in groups[1]["params"]) and groups[1]["weight_decay"] == 0.0


@pytest.mark.parametrize("key,value,reason", [
    ("lr", 0.0, "must be > 0"), ("beta2", 1.0, "[0, 1)"), ("optimizer", "sgd", "one of adam, adamw"),
    ("epochs", 0, ">= 1"), ("hflip", True, "not flip-invariant"), ("batch_size", "64", "expected int"),
    ("amsgrad", 1, "expected bool"), ("dataset", "imagenet", "must be one of"),
])
def test_config_rejects_bad_values_by_key(key, value, reason):
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({key: value}, source="x.json")
    assert info.value.key == key and reason in str(info.value) and str(info.value).startswith("x.json: ")


def test_config_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="x.json: learning_rate: unknown setting"):
        TrainConfig.from_dict({"learning_rate": 0.1}, source="x.json")


WRONG_MODELS = '''
import torch
from torch import nn


def logits(input_shape, num_classes, params, *, extra):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes + extra))


def frozen(input_shape, num_classes, params):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))
    model.requires_grad_(False)
    return model


class Slice(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :10]


def no_parameters(input_shape, num_classes, params):
    return Slice()


def huge(input_shape, num_classes, params, *, floats):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))
    model.register_parameter("unused", nn.Parameter(torch.empty(floats)))  # not touched: no page is committed
    return model
'''


def user_model(tmp_path, entry: str, **kwargs) -> ModelSource:
    (tmp_path / "wrong_models.py").write_text(WRONG_MODELS)
    return ModelSource.parse({"entry": f"wrong_models:{entry}", **kwargs}, origin="study.yaml", folder=tmp_path)


@pytest.mark.parametrize("extra", [1, -1])
def test_a_model_with_the_wrong_number_of_logits_is_refused_before_training(digits, tmp_path, extra):
    epochs = []
    source = user_model(tmp_path, "logits", extra=extra)
    with pytest.raises(SourceError) as info:
        fit(TrainConfig(model="wrong_models:logits"), digits, model_source=source, on_epoch=epochs.append)
    assert str(info.value) == (f"study.yaml: model.entry: model returned (2, {10 + extra}) logits for 10 classes; "
                               "it must return logits of shape (batch, num_classes) = (2, 10)")
    assert epochs == []


@pytest.mark.parametrize("entry,reason", [
    ("frozen", "the model has nothing to train: all 2 of its parameter tensors are frozen (requires_grad=False)"),
    ("no_parameters", "the model has nothing to train: it has no parameters"),
])
def test_a_model_with_nothing_to_train_is_refused_in_one_line(digits, tmp_path, entry, reason):
    with pytest.raises(SourceError) as info:
        fit(TrainConfig(model=f"wrong_models:{entry}"), digits, model_source=user_model(tmp_path, entry))
    assert str(info.value) == f"study.yaml: model.entry: {reason}"


def test_a_model_too_large_to_train_in_memory_is_refused_before_training(digits, tmp_path):
    free = free_memory(torch.device("cpu"))
    assert free is not None
    # Weights of half the free memory: they fit (allocated, never touched), but with gradients and Adam's
    # moments training needs twice the free memory.
    source = user_model(tmp_path, "huge", floats=free // 8)
    with pytest.raises(SourceError, match=r"study.yaml: model.entry: the model's [\d,]+ parameters need at least "
                                          r"[\d.]+ GiB to train \(weights, gradients and Adam's two moments\), but "
                                          r"cpu has [\d.]+ GiB free"):
        fit(TrainConfig(model="wrong_models:huge"), digits, model_source=source)
