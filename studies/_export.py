"""The best configuration as one self-contained JSON object, and `train`, which turns it back into a model."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

from adamtune.data import DATA_TYPES, DataSource
from adamtune.results import StudyView, TrialRecord, output_dir, writing
from adamtune.training import BUILTIN_MODELS, ConfigError, ModelSource, TrainConfig

from ._errors import StudyError
from ._spec import check_entries
from ._versions import versions

EXPORT_KEYS = ("study", "trial", "value", "params", "config", "data", "model", "metrics", "metric", "versions",
               "packed")
_PATH_KEYS = ("path", "val", "test")


def export_trial(view: StudyView, trial: TrialRecord) -> dict[str, Any]:
    """Everything `train` needs; `params` are the sampled values by their public names (beta2, not 1-beta2).
    On the user's data, `data` holds the study's dataset mapping with absolute paths, the data fingerprint
    and the class names; with the user's model, `model` holds its entry point, keyword arguments, the values
    its builder got (`params`, fixed ones included) and the folder its module is imported from first."""
    if trial.config is None:
        raise StudyError(f"study {view.name!r}", f"trial {trial.number}",
                         "has no adamtune training config (the study was not made by adamtune)")
    out: dict[str, Any] = {
        "study": view.name,
        "trial": trial.number,
        "value": _json_number(trial.value),
        "params": trial.params,
        "config": trial.config,
    }
    context = view.context
    root = Path(context.root or ".")
    if context.data is not None:
        paths = _PATH_KEYS if context.data.get("type") != "python" else ()  # a python entry's kwargs stay as given
        out["data"] = {k: str(root / v) if k in paths else v for k, v in context.data.items()}
    if context.model is not None:
        out["model"] = {"entry": context.model.get("entry"), "kwargs": context.model.get("kwargs") or {},
                        "params": trial.model_params, "folder": str(root)}
    out["metrics"] = {"objective": trial.objective, "val_loss": _json_number(trial.val_loss),
                      "val_accuracy": _json_number(trial.val_accuracy), "best_epoch": trial.best_epoch,
                      "epochs_trained": trial.epochs}
    if trial.objective not in out["metrics"]:
        out["metrics"][trial.objective] = _json_number(trial.value)
    if context.metric is not None:  # the user's metric: `train --validate` computes it again
        out["metric"] = {**context.metric, "folder": str(root)}
    out["versions"] = versions()
    if trial.packed:  # trained in a pack: `train` uses the packed engine too (its own dropout masks)
        out["packed"] = trial.packed
    return out


def _json_number(value: float | None) -> float | None:
    """JSON has no inf or NaN (json.dumps would write `Infinity`, which jq and browsers reject): null instead."""
    return value if value is None or math.isfinite(value) else None


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
    packed = data.get("packed")
    if packed is not None and (isinstance(packed, bool) or not isinstance(packed, int) or packed < 1):
        raise ConfigError(source, "packed", f"the pack size the trial was trained in, an integer >= 1, got {packed!r}")
    objective = metrics.get("objective", "val_loss")
    if not isinstance(objective, str) or not objective.startswith("val_"):
        raise ConfigError(source, "metrics.objective", f"the study's objective, val_<metric>, got {objective!r}")
    config = TrainConfig.from_dict(data["config"], source=f"{source}: config")
    if best_epoch is not None and best_epoch >= config.epochs:
        raise ConfigError(source, "metrics.best_epoch", f"{best_epoch} is not an epoch of a {config.epochs}-epoch run "
                          "(0-based: at most epochs - 1)")
    export_sources(data, config, path)
    return data, config


def export_sources(exported: dict[str, Any], config: TrainConfig, path: str | Path
                   ) -> tuple[DataSource | None, ModelSource | None, dict[str, Any]]:
    """The user's data and model an export names, with relative paths and folders resolved against the
    export file's folder (absolute ones stay), and the values the model builder gets."""
    source, folder = str(path), Path(path).resolve().parent
    data, model = exported.get("data"), exported.get("model")
    if config.dataset in DATA_TYPES and not isinstance(data, dict):
        raise ConfigError(source, "data", f"required for {config.dataset} data: the dataset mapping "
                          "`adamtune export` writes")
    if config.model not in BUILTIN_MODELS and not isinstance(model, dict):
        raise ConfigError(source, "model", f"required for the model {config.model}: its entry, kwargs and params "
                          "as `adamtune export` writes them")
    data_source = model_source = None
    params: dict[str, Any] = {}
    if isinstance(data, dict):
        mapping = {k: v for k, v in data.items() if k not in ("fingerprint", "classes", "split", "task")}
        data_source = DataSource.parse(mapping, origin=source, folder=folder, key="data")
        if data_source.label != config.dataset:
            raise ConfigError(source, "data.type", f"{data_source.label!r} but config.dataset is {config.dataset!r}")
        if config.hflip and not data_source.flip_safe:
            raise ConfigError(source, "config.hflip", f"{data_source.describe()} is not marked flip_safe")
    if isinstance(model, dict):
        model_source = ModelSource.stored(model, origin=source, folder=folder / str(model.get("folder") or "."))
        if model_source.label != config.model:
            raise ConfigError(source, "model.entry", f"{model_source.label!r} but config.model is {config.model!r}")
        params = model.get("params") or {}
        if not isinstance(params, dict):
            raise ConfigError(source, "model.params", "an object: the values the model builder gets")
    check_entries(data_source, model_source)
    return data_source, model_source, params


def train_from_export(path: str | Path, out: str | Path | None, *, validate: bool = False,
                      device: str | None = None, data_root: str | None = None, allow_changed_data: bool = False,
                      log=print) -> dict[str, Any]:
    """Retrain an exported configuration with the shared loop.

    With `validate`, train on the training split alone and report validation metrics, exactly as the
    trial did. Otherwise train on train+validation for as many epochs as the trial needed to reach its
    best validation loss, evaluate once on the test split, and save weights, config and metrics to `out`.
    The schedule is kept, not stretched: laid out over the configured epochs (a per-batch one over
    that many epochs of train+validation batches) and cut after the best epoch, as `fit`'s `stop_after` does.
    The user's data must have the fingerprint the export records, unless `allow_changed_data`.
    A trial trained in a pack (`packed` in the export) is trained by the packed engine, alone: a trial's
    numbers in a pack are those it has alone there (its dropout masks are drawn as the pack draws them).
    """
    from adamtune.data import load_dataset
    from adamtune.training import Scoring, applicable, evaluate, fit, fit_packed, pick_device

    exported, config = load_export(path)
    if out is not None:
        output_dir(out, "train --out", create=False)  # before training, not after
    data_source, model_source, params = export_sources(exported, config, path)
    dev = pick_device(device)
    data = load_dataset(data_source or config.dataset, data_root, dev,
                        task=config.task if data_source is not None else None)
    recorded = (exported.get("data") or {}).get("fingerprint")
    if recorded and data.fingerprint != recorded:
        changed = (f"the data changed since the study ran: the export records fingerprint {recorded}, "
                   f"{data.name} now has {data.fingerprint}")
        if not allow_changed_data:
            raise ConfigError(str(path), "data.fingerprint", f"{changed}; pass --allow-changed-data to train anyway")
        log(f"warning: {changed}; training anyway (--allow-changed-data)")
    packed = bool(exported.get("packed"))
    objective = exported.get("metrics", {}).get("objective", "val_loss")
    scoring = export_scoring(exported, objective, path)

    def train(**options: Any):
        if packed:
            return fit_packed([config], data, device=dev, model_source=model_source, params=[params],
                              scoring=scoring, **options)[0]
        return fit(config, data, device=dev, model_source=model_source, params=params, scoring=scoring, **options)

    if validate:
        result = train()
        metrics = {"objective": objective, "val_loss": result.val_loss, "val_accuracy": result.val_accuracy,
                   objective: result.value(objective), "best_epoch": result.best_epoch,
                   "epochs_trained": len(result.history)}
        model = result.model
    else:
        best_epoch = exported.get("metrics", {}).get("best_epoch")
        epochs = config.epochs if best_epoch is None else best_epoch + 1
        log(f"training {config.model} on {config.dataset} train+validation for {epochs} epochs on {dev}")
        result = train(validate=False, stop_after=epochs)
        model = result.model
        test = evaluate(model, data.test, data, dev, Scoring(applicable(config.task, data.num_classes), scoring.user),
                        prefix="test_")
        metrics = {"test_loss": test.loss, **({"test_accuracy": test.accuracy} if test.accuracy is not None else {}),
                   **test.metrics, "test_samples": len(data.test), "epochs": epochs}
    metrics.update(device=str(dev), param_count=result.param_count)
    if out is not None:
        with writing(out, "train --out"):
            _save(Path(out), model, config, metrics)
    return metrics


def export_scoring(exported: dict[str, Any], objective: str, path: str | Path):
    """The objective's metric as the export names it: a built-in one, or the user's function it records."""
    from adamtune.training import METRICS, Scoring, UserMetric

    metric = exported.get("metric")
    if metric is None:
        name = objective.removeprefix("val_")
        if name not in METRICS:
            raise ConfigError(str(path), "metrics.objective", f"{objective} is no built-in metric and the export "
                              "records no user metric (`metric`)")
        return Scoring(names=(name,))
    if not isinstance(metric, dict) or not isinstance(metric.get("entry"), str):
        raise ConfigError(str(path), "metric", "the user's metric as `adamtune export` writes it: entry, direction")
    folder = Path(path).resolve().parent / str(metric.get("folder") or ".")
    return Scoring(user=UserMetric(metric["entry"], str(metric.get("direction")), str(folder), str(path)))


def _save(out: Path, model, config: TrainConfig, metrics: dict) -> None:
    import torch

    out.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()  # torch.save reports a failed write as a RuntimeError; a plain write says OSError
    torch.save(model.state_dict(), buffer)
    (out / "model.pt").write_bytes(buffer.getbuffer())
    (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
