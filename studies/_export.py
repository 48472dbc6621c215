"""The best configuration as one self-contained JSON object, and `train`, which turns it back into a model."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
import csv
import io
from typing import Any, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from training import ConfigError, TrainConfig, evaluate, fit, load_dataset, pick_device

EXPORT_KEYS = ("study", "trial", "value", "params", "config", "metrics", "versions")


def versions() -> dict[str, str]:
    import torch

    try:
        own = metadata.version("adamtune")
    except metadata.PackageNotFoundError:
        own = "unknown (not installed)"
    return {"adamtune": own, "torch": torch.__version__, "optuna": optuna.__version__}


def export_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """Everything `train` needs; `params` are the sampled values by their public names (beta2, not 1-beta2)."""
    attrs = trial.user_attrs
    return {
        "study": study.study_name,
        "trial": trial.number,
        "value": trial.value,
        "params": attrs.get("params", trial.params),
        "config": attrs["config"],
        "metrics": {"val_loss": attrs.get("val_loss"), "val_accuracy": attrs.get("val_accuracy"),
                    "best_epoch": attrs.get("best_epoch"), "epochs_trained": attrs.get("epochs_trained")},
        "versions": versions(),
    }


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise LookupError(f"study {study.study_name!r} has no complete trial yet")
    return study.best_trial


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
    return data, TrainConfig.from_dict(data["config"], source=f"{source}: config")


def train_from_export(path: str | Path, out: str | Path | None, *, validate: bool = False,
                      device: str | None = None, data_root: str | None = None, log=print) -> dict[str, Any]:
    """Retrain an exported configuration with the shared loop.

    With `validate`, train on the training split alone and report validation metrics, exactly as the
    trial did. Otherwise train on train+validation for as many epochs as the trial needed to reach its
    best validation loss, evaluate once on the test split, and save weights, config and metrics to `out`.
    """
    exported, config = load_export(path)
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


def top_trials(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The `k` best complete trials, best first (ties: lower trial number first)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise LookupError(f"study {study.study_name!r} has no complete trial yet")
    sign = 1 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1
    return sorted(complete, key=lambda t: (sign * t.value, t.number))[:k]


def trials_csv(trials: Sequence[FrozenTrial], param_order: Sequence[str] = ()) -> str:
    """One CSV row per trial: number, state, value, `params_NAME` (the sampled values by their public names,
    as in the export: beta2, not one_minus_beta2), val_accuracy, epochs trained, duration in seconds.
    Columns follow `param_order` (the study's search space), then any other parameter as first seen."""
    sampled = [t.user_attrs.get("params", t.params) for t in trials]
    names = [n for n in param_order if any(n in s for s in sampled)]
    for s in sampled:
        names.extend(n for n in s if n not in names)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["number", "state", "value", *(f"params_{n}" for n in names), "val_accuracy", "epochs",
                     "duration"])
    for t, s in zip(trials, sampled):
        writer.writerow([t.number, t.state.name, _csv(t.value), *(_csv(s.get(n)) for n in names),
                         _csv(t.user_attrs.get("val_accuracy")), epochs_trained(t), _csv(duration_seconds(t))])
    return buffer.getvalue()


def _csv(value: Any) -> Any:
    return "" if value is None else value


def epochs_trained(t: FrozenTrial) -> int:
    return len(t.intermediate_values)


def duration_seconds(t: FrozenTrial) -> float | None:
    return t.duration.total_seconds() if t.duration is not None else None
