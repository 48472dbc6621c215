"""The loop, a study and `train` on CUDA. These tests exist only where torch sees a GPU: CI has none, so
they are collected on a lent GPU machine (`benchmarks/gpu_check.sh`) and their output is recorded in
benchmarks/RESULTS.md. They are not skipped elsewhere, they are simply not defined."""

from __future__ import annotations

import json

import optuna
import pytest
import torch

from adamtune.data import load_dataset
from adamtune.training import Checkpoint, TrainConfig, evaluate, fit
from conftest import adamtune, write_study

if torch.cuda.is_available():

    @pytest.fixture(scope="module")
    def digits_on_gpu():
        return load_dataset("digits", device="cuda")

    def test_the_loop_trains_on_the_gpu_as_well_as_on_the_cpu(digits_on_gpu):
        cfg = TrainConfig(epochs=12, lr=3e-3, dropout=0.1, rotation=10, translate=0.1, random_erasing=0.2)
        result = fit(cfg, digits_on_gpu, device="cuda")
        assert result.device.startswith("cuda") and next(result.model.parameters()).is_cuda
        assert result.val_accuracy > 0.93, "well above chance (0.1) on digits"
        loss = evaluate(result.model, digits_on_gpu.val, digits_on_gpu, "cuda").loss
        assert loss == pytest.approx(result.val_loss, rel=1e-5), "the best epoch's weights were restored"

    @pytest.fixture
    def deterministic_cudnn():
        """cuDNN may pick kernels whose sums run in any order; a resume is compared with them fixed."""
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        yield
        torch.backends.cudnn.deterministic = False

    @pytest.mark.parametrize("model", ["mlp", "cnn"])
    def test_a_run_resumed_from_its_checkpoint_on_the_gpu_continues_the_same_curve(digits_on_gpu, model, tmp_path,
                                                                                   deterministic_cudnn):
        """Dropout on a GPU draws from the GPU's generator: the checkpoint must carry its state."""
        cfg = TrainConfig(model=model, epochs=4, width=32, lr=2e-3, dropout=0.1, rotation=5)
        whole = fit(cfg, digits_on_gpu, device="cuda")
        checkpoint = Checkpoint(tmp_path / "trial.pt")
        fit(cfg, digits_on_gpu, device="cuda", checkpoint=checkpoint, stop_after=2)
        resumed = fit(cfg, digits_on_gpu, device="cuda", checkpoint=checkpoint)
        assert resumed.resumed_epochs == 2
        assert [r.val_loss for r in resumed.history] == pytest.approx([r.val_loss for r in whole.history],
                                                                      rel=1e-5)

    def test_a_study_runs_on_the_gpu_and_its_export_trains_there(tmp_path):
        study = write_study(tmp_path, "gpu", n_trials=3, epochs=3)
        url = f"sqlite:///{tmp_path / 'gpu.db'}"
        run = adamtune("run", str(study), "--storage", url, "--device", "cuda", "--quiet", cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        trials = adamtune("trials", "gpu", "--storage", url, cwd=tmp_path)
        assert trials.returncode == 0 and "complete" in trials.stdout
        exported = adamtune("export", "gpu", "--storage", url, "-o", str(tmp_path / "best.json"), cwd=tmp_path)
        assert exported.returncode == 0, exported.stderr
        devices = {t.user_attrs["device"] for t in optuna.load_study(study_name="gpu", storage=url).trials}
        assert all(d.startswith("cuda") for d in devices), devices
        train = adamtune("train", str(tmp_path / "best.json"), "--device", "cuda", "--out", str(tmp_path / "model"),
                         cwd=tmp_path)
        assert train.returncode == 0, train.stderr
        metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
        assert metrics["device"].startswith("cuda") and metrics["test_accuracy"] > 0.8, metrics
