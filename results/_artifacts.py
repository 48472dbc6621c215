"""What a person sees of a trial in optuna-dashboard: a note in words, its learning-curve plot, and
for the best trial its configuration, stored through Optuna's artifact API."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import optuna

STORE_DIR = "artifact-store"  # under the artifacts root; `adamtune dashboard --artifacts ROOT` serves it


def artifact_store(root: str | Path) -> optuna.artifacts.FileSystemArtifactStore:
    path = Path(root) / STORE_DIR
    path.mkdir(parents=True, exist_ok=True)
    return optuna.artifacts.FileSystemArtifactStore(str(path))


def write_note(trial: optuna.Trial, summary: str, params: dict) -> None:
    """The trial's configuration in words, shown as its note in the dashboard."""
    from optuna_dashboard import save_note

    rows = "\n".join(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in params.items())
    save_note(trial, f"**{summary}**\n\n| parameter | value |\n|---|---|\n{rows}\n")


def upload_curve(trial: optuna.Trial, curve: dict, store, title: str) -> None:
    """A PNG of the trial's loss, accuracy and learning rate per epoch (so pruned trials show where they
    stopped). The learning rate is the one each epoch's last batch trained with, so a per-batch
    schedule (a one-cycle, a decay every N batches) shows its shape at epoch ends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = range(1, len(curve["val_loss"]) + 1)
    fig, (loss_ax, acc_ax, lr_ax) = plt.subplots(1, 3, figsize=(11, 3), dpi=80)
    loss_ax.plot(epochs, curve["train_loss"], label="train loss")
    loss_ax.plot(epochs, curve["val_loss"], label="validation loss")
    loss_ax.set_xlabel("epoch")
    loss_ax.legend()
    acc_ax.plot(epochs, curve["val_accuracy"], color="tab:green")
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel("validation accuracy")
    lr_ax.plot(epochs, curve["lr"], color="tab:purple", marker=".")
    lr_ax.set_yscale("log")
    lr_ax.set_xlabel("epoch")
    lr_ax.set_ylabel("learning rate (last batch)")
    fig.suptitle(title, fontsize=9)
    # Fixed margins: tight_layout per trial is costly.
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.16, top=0.86, wspace=0.35)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"trial-{trial.number}-curve.png"
        fig.savefig(path)
        plt.close(fig)
        optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial,
                                         mimetype="image/png")


def upload_config(trial: optuna.Trial, config: dict, store) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"trial-{trial.number}-config.json"
        path.write_text(json.dumps(config, indent=2) + "\n")
        optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial,
                                         mimetype="application/json")
