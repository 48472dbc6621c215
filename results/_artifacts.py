"""What a person sees of a trial in optuna-dashboard: a note in words, its learning-curve plot (drawn by
the dashboard when opened: `_curve_drawing`), and for the best trial its configuration, stored through
Optuna's artifact API."""

from __future__ import annotations

import io
import json
import tempfile
import uuid
from dataclasses import asdict
from pathlib import Path

import optuna

ARTIFACTS_ATTR_PREFIX: str | None  # Optuna's key prefix of an artifact's meta (private; 3.x through 5.1)
try:
    from optuna.artifacts._upload import ARTIFACTS_ATTR_PREFIX
except ImportError:  # pragma: no cover - a future Optuna: curves are drawn and uploaded at once
    ARTIFACTS_ATTR_PREFIX = None

CURVE_SUFFIX = "-curve.png"  # a learning-curve artifact's file name ends so: trial-N-curve.png

STORE_DIR = "artifact-store"  # under the artifacts root; `adamtune dashboard --artifacts ROOT` serves it


def artifact_store(root: str | Path) -> optuna.artifacts.FileSystemArtifactStore:
    path = Path(root) / STORE_DIR
    path.mkdir(parents=True, exist_ok=True)
    return optuna.artifacts.FileSystemArtifactStore(str(path))


def write_note(trial: optuna.Trial, summary: str, params: dict, warm_start: str | None = None) -> None:
    """The trial's configuration in words (and, warm-started, where its values came from), shown as its note
    in the dashboard. A new trial has no note, so
    it is written as version 1 without reading the study's notes, which optuna-dashboard's `save_note` reads
    twice (every note of the study: 0.2 s a trial at 500 trials); its key layout is checked to exist."""
    rows = "\n".join(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in params.items())
    origin = f"warm start: {warm_start}\n\n" if warm_start else ""
    body = f"**{summary}**\n\n{origin}| parameter | value |\n|---|---|\n{rows}\n"
    try:
        from optuna_dashboard._note import note_ver_key, split_body
    except ImportError:  # pragma: no cover - another optuna-dashboard
        from optuna_dashboard import save_note

        save_note(trial, body)
        return
    study_id = trial.study._study_id
    for key, chunk in split_body(body, trial._trial_id).items():
        trial.storage.set_study_system_attr(study_id, key, chunk)
    trial.storage.set_study_system_attr(study_id, note_ver_key(trial._trial_id), 1)


def announce_curve(trial: optuna.Trial, curve: dict, store, title: str) -> None:
    """The trial's learning-curve PNG, as an artifact whose meta alone is written now (one attribute, in the
    transaction that ends the trial's record): `adamtune dashboard` draws the picture from the stored curve
    the first time someone opens it (`CurveDrawingStore`), so no trial spends its time on matplotlib. An
    Optuna without the artifact-key prefix this writes under gets the picture drawn and uploaded now."""
    if ARTIFACTS_ATTR_PREFIX is None:  # pragma: no cover - a future Optuna
        upload_curve(trial, curve, store, title)
        return
    # Random (artifact stores are shared), then the study's and the trial's ids in the store, in hex (the
    # dashboard's artifact route takes hex digits and dashes).
    artifact_id = f"{uuid.uuid4()}-{trial.study._study_id:x}-{trial._trial_id:x}"
    meta = optuna.artifacts.ArtifactMeta(artifact_id=artifact_id, filename=f"trial-{trial.number}{CURVE_SUFFIX}",
                                         mimetype="image/png", encoding=None)
    trial.storage.set_trial_system_attr(trial._trial_id, ARTIFACTS_ATTR_PREFIX + artifact_id, json.dumps(asdict(meta)))


def upload_curve(trial: optuna.Trial, curve: dict, store, title: str) -> None:
    """The PNG of `curve_png`, drawn and uploaded now."""
    _upload_bytes(trial, store, f"trial-{trial.number}{CURVE_SUFFIX}", curve_png(curve, title), "image/png")


def curve_metric(curve: dict) -> str | None:
    """The series a curve's middle panel shows: a classifier's accuracy, else the objective's metric
    (val_rmse, val_macro_f1, ...), else none (a regression judged by its loss)."""
    present = [k for k, series in curve.items() if k.startswith("val_") and k != "val_loss"
               and any(v is not None for v in series)]
    return "val_accuracy" if "val_accuracy" in present else (present[0] if present else None)


def curve_png(curve: dict, title: str) -> bytes:
    """A PNG of a trial's loss, accuracy (or its objective's metric) and learning rate per epoch (so pruned
    trials show where they stopped). The learning rate is the one each epoch's last batch trained with, so a per-batch
    schedule (a one-cycle, a decay every N batches) shows its shape at epoch ends."""
    from matplotlib.figure import Figure

    epochs = range(1, len(curve["val_loss"]) + 1)
    fig = Figure(figsize=(11, 3), dpi=80)
    loss_ax, acc_ax, lr_ax = fig.subplots(1, 3)
    loss_ax.plot(epochs, curve["train_loss"], label="train loss")
    loss_ax.plot(epochs, curve["val_loss"], label="validation loss")
    loss_ax.set_xlabel("epoch")
    loss_ax.legend()
    metric = curve_metric(curve)
    if metric is not None:
        acc_ax.plot(epochs, curve[metric], color="tab:green")
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel(metric.replace("val_", "validation ").replace("_", " ") if metric else "(no metric)")
    lr_ax.plot(epochs, curve["lr"], color="tab:purple", marker=".")
    lr_ax.set_yscale("log")
    lr_ax.set_xlabel("epoch")
    lr_ax.set_ylabel("learning rate (last batch)")
    fig.suptitle(title, fontsize=9)
    # Fixed margins: tight_layout is costly.
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.16, top=0.86, wspace=0.35)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def upload_config(trial: optuna.Trial, config: dict, store) -> None:
    _upload_bytes(trial, store, f"trial-{trial.number}-config.json", (json.dumps(config, indent=2) + "\n").encode(),
                  "application/json")


def _upload_bytes(trial: optuna.Trial, store, filename: str, data: bytes, mimetype: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / filename
        path.write_bytes(data)
        optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial,
                                         mimetype=mimetype)
