"""Tasks beyond single-label classification: each task's loss, its metrics as scikit-learn computes them on
the same predictions, a packed trial of each task training as it trains alone, resuming as if never stopped,
and the deeper built-in MLP."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from sklearn import metrics as sk

from adamtune.data import DataSource, load_dataset
from adamtune.training import Checkpoint, Scoring, TrainConfig, fit, fit_packed
from adamtune.training.losses import TaskLoss
from adamtune.training.models import MLP
from adamtune.training.rules import normalizer, unit


def arrays_dataset(folder, name: str, **arrays):
    path = folder / f"{name}.npz"
    np.savez(path, **arrays)
    return load_dataset(DataSource.parse({"type": "arrays", "path": path.name}, origin="test", folder=folder))


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory):
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    return arrays_dataset(tmp_path_factory.mktemp("diabetes"), "diabetes", x=x.astype(np.float32),
                          y=y.astype(np.float32))


@pytest.fixture(scope="module")
def two_targets(tmp_path_factory):
    """Two targets of very different scales: standardisation must make both count."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6)).astype(np.float32)
    y = np.stack([x[:, 0] * 1000 + 5000, x[:, 1] - x[:, 2] * 0.01], axis=1).astype(np.float64)
    return arrays_dataset(tmp_path_factory.mktemp("two"), "two", x=x, y=y)


@pytest.fixture(scope="module")
def tags(tmp_path_factory):
    from sklearn.datasets import make_multilabel_classification

    x, y = make_multilabel_classification(n_samples=500, n_features=20, n_classes=4, random_state=0)
    return arrays_dataset(tmp_path_factory.mktemp("tags"), "tags", x=x.astype(np.float32), y=y.astype(np.int64))


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def predictions(result, data) -> np.ndarray:
    """The model's predictions on the validation split, computed here without adamtune's metric code: class
    or label probabilities, or values in the targets' units."""
    model = result.model.eval()
    with torch.no_grad():
        out = model(normalizer(data, torch.device("cpu"))(unit(data.val.images, data.scale))).double()
    if data.task == "classification":
        return out.softmax(-1).numpy()
    if data.task == "multilabel":
        return out.sigmoid().numpy()
    return (out * torch.tensor(data.target_std, dtype=torch.float64) + torch.tensor(data.target_mean,
                                                                                     dtype=torch.float64)).numpy()


def test_regression_metrics_are_scikit_learns_on_the_same_predictions_in_the_targets_units(diabetes):
    cfg = TrainConfig(dataset="arrays", task="regression", loss="huber", epochs=3, lr=1e-2, width=32)
    result = fit(cfg, diabetes, scoring=Scoring(names=("rmse", "mae", "r2")))
    best = result.history[result.best_epoch]
    y, p = diabetes.val.labels.numpy(), predictions(result, diabetes)
    assert best.metrics["val_rmse"] == pytest.approx(sk.root_mean_squared_error(y, p), rel=1e-6)
    assert best.metrics["val_mae"] == pytest.approx(sk.mean_absolute_error(y, p), rel=1e-6)
    assert best.metrics["val_r2"] == pytest.approx(sk.r2_score(y, p), rel=1e-6)
    assert best.metrics["val_rmse"] > 10, "in the targets' units (diabetes scores are in the hundreds)"
    # val_loss is the plain squared error of standardised targets, whatever the training loss
    z = (y - np.array(diabetes.target_mean)) / np.array(diabetes.target_std)
    zp = (p - np.array(diabetes.target_mean)) / np.array(diabetes.target_std)
    assert best.val_loss == pytest.approx(float(((zp - z) ** 2).mean()), rel=1e-5)
    assert best.val_accuracy is None


def test_multilabel_metrics_are_scikit_learns(tags):
    cfg = TrainConfig(dataset="arrays", task="multilabel", loss="bce", epochs=3, lr=1e-2, class_weights=True)
    result = fit(cfg, tags, scoring=Scoring(names=("micro_f1", "macro_f1", "subset_accuracy")))
    best = result.history[result.best_epoch]
    y, p = tags.val.labels.numpy().astype(int), (predictions(result, tags) >= 0.5).astype(int)
    assert best.metrics["val_micro_f1"] == pytest.approx(sk.f1_score(y, p, average="micro"), rel=1e-9)
    assert best.metrics["val_macro_f1"] == pytest.approx(sk.f1_score(y, p, average="macro"), rel=1e-9)
    assert best.metrics["val_subset_accuracy"] == pytest.approx(sk.accuracy_score(y, p), rel=1e-9)
    probs = predictions(result, tags)
    assert best.val_loss == pytest.approx(sk.log_loss(y.ravel(), probs.ravel()), rel=1e-4)


def test_classification_metrics_are_scikit_learns(digits):
    cfg = TrainConfig(epochs=2, lr=3e-3)
    names = ("balanced_accuracy", "macro_f1", "top5_accuracy", "auroc_ovr")
    result = fit(cfg, digits, scoring=Scoring(names=names))
    best = result.history[result.best_epoch]
    y, probs = digits.val.labels.numpy(), predictions(result, digits)
    labels = probs.argmax(1)
    assert best.val_accuracy == pytest.approx(sk.accuracy_score(y, labels))
    assert best.metrics["val_balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(y, labels))
    assert best.metrics["val_macro_f1"] == pytest.approx(sk.f1_score(y, labels, average="macro"))
    assert best.metrics["val_top5_accuracy"] == pytest.approx(sk.top_k_accuracy_score(y, probs, k=5))
    assert best.metrics["val_auroc_ovr"] == pytest.approx(sk.roc_auc_score(y, probs, multi_class="ovr"), rel=1e-6)
    assert best.val_loss == pytest.approx(sk.log_loss(y, probs, labels=range(10)), rel=1e-5)


def test_binary_auroc_is_scikit_learns(tmp_path):
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    data = arrays_dataset(tmp_path, "cancer", x=x.astype(np.float32), y=y.astype(np.int64))
    result = fit(TrainConfig(dataset="arrays", epochs=2), data, scoring=Scoring(names=("auroc",)))
    best = result.history[result.best_epoch]
    probs = predictions(result, data)
    assert best.metrics["val_auroc"] == pytest.approx(sk.roc_auc_score(data.val.labels.numpy(), probs[:, 1]))


def test_standardised_targets_make_a_small_target_count_as_much_as_a_large_one(two_targets):
    """Without standardisation the squared error of the target in thousands would drown the other."""
    result = fit(TrainConfig(dataset="arrays", task="regression", epochs=30, lr=1e-2), two_targets,
                 scoring=Scoring(names=("r2",)))
    p, y = predictions(result, two_targets), two_targets.val.labels.numpy()
    per_target = sk.r2_score(y, p, multioutput="raw_values")
    assert per_target.min() > 0.8, per_target


def test_class_weights_are_scikit_learns_balanced_weights(tmp_path):
    from sklearn.utils.class_weight import compute_class_weight

    rng = np.random.default_rng(0)
    y = np.array([0] * 300 + [1] * 60 + [2] * 20)
    data = arrays_dataset(tmp_path, "imbalanced", x=rng.normal(size=(len(y), 4)).astype(np.float32), y=y)
    loss = TaskLoss(data, torch.device("cpu"))
    train = data.train.labels.numpy()
    expected = compute_class_weight("balanced", classes=np.unique(train), y=train)
    assert loss.class_weight is not None
    assert np.allclose(loss.class_weight.numpy(), expected)
    out, target = torch.randn(5, 3), torch.tensor([0, 1, 2, 2, 0])
    weighted = loss.per_sample(out, target, loss="cross_entropy", weighted=1.0)
    plain = torch.nn.functional.cross_entropy(out, target, reduction="none")
    assert torch.allclose(weighted, plain * torch.tensor(expected, dtype=torch.float32)[target])


def test_positive_weights_are_negatives_over_positives_per_label(tags):
    loss = TaskLoss(tags, torch.device("cpu"))
    y = tags.train.labels
    assert torch.allclose(loss.pos_weight, (len(y) - y.sum(0)) / y.sum(0))
    out = torch.randn(7, y.shape[1])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(out, y[:7], pos_weight=loss.pos_weight,
                                                                    reduction="none").mean(-1)
    assert torch.allclose(loss.per_sample(out, y[:7], loss="bce", weighted=1.0), expected, atol=1e-6)


def regression_trials(epochs: int = 3) -> list[TrainConfig]:
    base = TrainConfig(dataset="arrays", task="regression", loss="huber", epochs=epochs, width=32)
    changes = [dict(huber_delta=0.5, lr=3e-3, batch_size=32), dict(huber_delta=2.0, lr=1e-2, width=16, depth=2,
                                                                    dropout=0.2, batch_size=32),
               dict(huber_delta=1.0, lr=1e-3, activation="elu", optimizer="adamw", weight_decay=0.01,
                    batch_size=32)]
    return [dataclasses.replace(base, seed=i, **change) for i, change in enumerate(changes)]


def multilabel_trials(epochs: int = 3) -> list[TrainConfig]:
    base = TrainConfig(dataset="arrays", task="multilabel", loss="bce", class_weights=True, epochs=epochs)
    return [dataclasses.replace(base, seed=i, lr=lr, width=w) for i, (lr, w) in enumerate(
        [(3e-3, 32), (1e-2, 64), (1e-3, 16)])]


@pytest.mark.parametrize("task", ["regression", "multilabel"])
def test_a_trial_of_each_task_trains_in_a_pack_as_it_trains_packed_alone(task, diabetes, tags):
    data, configs = (diabetes, regression_trials()) if task == "regression" else (tags, multilabel_trials())
    if task == "regression":  # a pack holds one depth: the depth-2 trial trains in a pack of its own
        configs = [c for c in configs if c.depth == 1]
    names = ("rmse", "r2") if task == "regression" else ("macro_f1",)
    together = fit_packed(configs, data, scoring=Scoring(names=names))
    for cfg, packed in zip(configs, together):
        alone = fit_packed([cfg], data, scoring=Scoring(names=names))[0]
        for a, b in zip(packed.history, alone.history):
            assert a.val_loss == pytest.approx(b.val_loss, rel=1e-5)
            for name, value in b.metrics.items():
                assert a.metrics[name] == pytest.approx(value, rel=1e-4, abs=1e-6)
        assert packed.best_epoch == alone.best_epoch


def test_a_packed_regression_trial_is_fit_to_float_rounding(diabetes):
    """The packed engine computes the same Huber loss as the solo loop (no dropout: same random draws)."""
    cfg = dataclasses.replace(regression_trials()[0], dropout=0.0)
    packed = fit_packed([cfg], diabetes)[0]
    alone = fit(cfg, diabetes)
    assert [r.val_loss for r in packed.history] == pytest.approx([r.val_loss for r in alone.history], rel=1e-5)


@pytest.mark.parametrize("task", ["regression", "multilabel"])
def test_a_trial_of_each_task_resumes_from_its_checkpoint_as_if_never_stopped(task, diabetes, tags, tmp_path):
    data, cfg = (diabetes, regression_trials(4)[1]) if task == "regression" else (tags, multilabel_trials(4)[0])
    names = ("mae",) if task == "regression" else ("micro_f1",)
    whole = fit(cfg, data, scoring=Scoring(names=names))
    checkpoint = Checkpoint(tmp_path / "trial.pt")

    def die_after_two(record):
        if record.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(cfg, data, checkpoint=checkpoint, checkpoint_every=3600, on_epoch=die_after_two,
            scoring=Scoring(names=names))
    resumed = fit(cfg, data, checkpoint=checkpoint, scoring=Scoring(names=names))
    assert resumed.resumed_epochs == 2
    assert [r.val_loss for r in resumed.history] == pytest.approx([r.val_loss for r in whole.history], rel=1e-6)
    assert [r.metrics for r in resumed.history] == [r.metrics for r in whole.history]


def test_the_mlp_gets_depth_and_one_layer_keeps_the_articles_names():
    article = MLP(64, 128, 10, torch.nn.ReLU, 0.0)
    assert [k for k in article.state_dict()] == ["1.weight", "1.bias", "4.weight", "4.bias"]
    deep = MLP(64, 32, 10, torch.nn.ReLU, 0.0, depth=3)
    linears = [m for m in deep if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 32), (32, 32), (32, 32), (32, 10)]


def test_deeper_mlps_of_many_widths_share_a_pack_and_train_as_alone(digits):
    configs = [TrainConfig(depth=3, width=w, activation=a, epochs=2, seed=i, lr=3e-3)
               for i, (w, a) in enumerate([(32, "relu"), (16, "elu"), (48, "leaky_relu")])]
    together = fit_packed(configs, digits)
    for cfg, packed in zip(configs, together):
        alone = fit(cfg, digits)
        assert alone.param_count == packed.param_count
        assert [r.val_loss for r in packed.history] == pytest.approx([r.val_loss for r in alone.history], rel=1e-5)


@pytest.mark.parametrize("values, key", [
    (dict(task="regression", loss="cross_entropy"), "loss"),
    (dict(task="classification", loss="mse"), "loss"),
    (dict(task="regression", class_weights=True), "class_weights"),
    (dict(task="multilabel", label_smoothing=0.1), "label_smoothing"),
    (dict(depth=5), "depth"),
    (dict(model="cnn", depth=2), "depth"),
    (dict(task="ranking"), "task"),
])
def test_settings_that_do_not_fit_the_task_are_refused_naming_the_key(values, key):
    from adamtune.training import ConfigError

    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_dict(values)
    assert caught.value.key == key


def test_each_task_trains_with_its_own_loss_by_default():
    assert TrainConfig.from_dict({"task": "regression"}).loss == "mse"
    assert TrainConfig.from_dict({"task": "multilabel"}).loss == "bce"
    assert TrainConfig.from_dict({}).loss == "cross_entropy"
    assert not math.isnan(TrainConfig.from_dict({"task": "regression", "loss": "huber"}).huber_delta)
