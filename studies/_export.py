"""The best configuration as one self-contained JSON object, and `train`, which turns it back into a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adamtune.results import StudyView, TrialRecord, output_dir
from adamtune.training import ConfigError, TrainConfig

from ._errors import StudyError
from ._versions import versions

EXPORT_KEYS = ("study", "trial", "value", "params", "config", "metrics", "versions")


def export_trial(view: StudyView, trial: TrialRecord) -> dict[str, Any]:
    """Everything `train` needs; `params` are the sampled values by their public names (beta2, not 1-beta2)."""
    if trial.config is None:
        raise StudyError(f"study {view.name!r}", f"trial {trial.number}",
                         "has no adamtune training config (the study was not made by adamtune)")
    return {
        "study": view.name,
        "trial": trial.number,
        "value": trial.value,
        "params": trial.params,
        "config": trial.config,
        "metrics": {"val_loss": trial.val_loss, "val_accuracy": trial.val_accuracy,
                    "best_epoch": trial.best_epoch, "epochs_trained": trial.epochs},
        "versions": versions(),
    }


def load_export(path: str | Path) -> tuple[dict[str, Any], TrainConfig]:
    """Read an exported JSON file; unknown keys and invalid values raise ConfigError naming them."""
    source = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(source, "<file>", "file not found") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(source, "<json>", f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(source, "<json>", "expected a JSON object as written by `adamtune export`")
    unknown = sorted(set(data) - set(EXPORT_KEYS))
    if unknown:
        raise ConfigError(source, unknown[0], f"unknown key (allowed: {', '.join(EXPORT_KEYS)})")
    if not isinstance(data.get("config"), dict):
        raise ConfigError(source, "config", "required: an object of training settings")
    metrics = data.get("metrics", {})
    if not isinstance(metrics, dict):
        raise ConfigError(source, "metrics", "expected an object")
    best_epoch = metrics.get("best_epoch")
    if best_epoch is not None and (isinstance(best_epoch, bool) or not isinstance(best_epoch, int) or best_epoch < 0):
        raise ConfigError(source, "metrics.best_epoch", f"an integer >= 0, got {best_epoch!r}")
    config = TrainConfig.from_dict(data["config"], source=f"{source}: config")
    if best_epoch is not None and best_epoch >= config.epochs:
        raise ConfigError(source, "metrics.best_epoch", f"{best_epoch} is not an epoch of a {config.epochs}-epoch run "
                          "(0-based: at most epochs - 1)")
    return data, config


def train_from_export(path: str | Path, out: str | Path | None, *, validate: bool = False,
                      device: str | None = None, data_root: str | None = None, log=print) -> dict[str, Any]:
    """Retrain an exported configuration with the shared loop.

    With `validate`, train on the training split alone and report validation metrics, exactly as the
    trial did. Otherwise train on train+validation for as many epochs as the trial needed to reach its
    best validation loss, evaluate once on the test split, and save weights, config and metrics to `out`.
    The schedule is kept, not stretched: laid out over the configured epochs (a per-batch one over
    that many epochs of train+validation batches) and cut after the best epoch, as `fit`'s `stop_after` does.
    """
    from adamtune.training import evaluate, fit, load_dataset, pick_device

    exported, config = load_export(path)
    if out is not None:
        output_dir(out, "train --out")  # before training, not after
    dev = pick_device(device)
    data = load_dataset(config.dataset, data_root, dev)
    if validate:
        result = fit(config, data, device=dev)
        metrics = {"val_loss": result.val_loss, "val_accuracy": result.val_accuracy,
                   "best_epoch": result.best_epoch, "epochs_trained": len(result.history)}
        model = result.model
    else:
        best_epoch = exported.get("metrics", {}).get("best_epoch")
        epochs = config.epochs if best_epoch is None else best_epoch + 1
        log(f"training {config.model} on {config.dataset} train+validation for {epochs} epochs on {dev}")
        result = fit(config, data, device=dev, validate=False, stop_after=epochs)
        model = result.model
        test_loss, test_acc = evaluate(model, data.test, data, dev)
        metrics = {"test_loss": test_loss, "test_accuracy": test_acc, "test_samples": len(data.test),
                   "epochs": epochs}
    metrics.update(device=str(dev), param_count=result.param_count)
    if out is not None:
        _save(Path(out), model, config, metrics)
    return metrics


def _save(out: Path, model, config: TrainConfig, metrics: dict) -> None:
    import torch

    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / "model.pt")
    (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
