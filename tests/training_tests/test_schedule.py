"""Per-batch learning-rate schedules: each follows PyTorch's own scheduler step by step, the loop steps
it after every batch and records its shape, `train` keeps it, and a run killed mid-epoch resumes it exactly."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.optim import lr_scheduler

from adamtune.data import load_dataset
from adamtune.training import Checkpoint, ConfigError, TrainConfig, fit
from adamtune.training.schedule import build_schedule

LR = 1e-3


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def optimizer(lr: float = LR, beta1: float = 0.9) -> torch.optim.Optimizer:
    return torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=lr, betas=(beta1, 0.999))


def lrs_of(schedule, steps: int) -> list[float]:
    """The learning rate each of the first `steps` batches trains with."""
    seen = []
    for _ in range(steps):
        seen.append(schedule.optimizer.param_groups[0]["lr"])
        schedule.optimizer.step()
        schedule.batch_end()
    return seen


def pytorch_lrs(scheduler: lr_scheduler.LRScheduler, steps: int) -> list[float]:
    seen = []
    for _ in range(steps):
        seen.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return seen


def test_batch_exponential_is_the_articles_decay_every_100_batches():
    cfg = TrainConfig(epochs=3, scheduler="batch_exponential", decay_every=100, decay_rate=0.98)
    seen = lrs_of(build_schedule(optimizer(), cfg, steps_per_epoch=150), 450)
    expected = pytorch_lrs(lr_scheduler.StepLR(optimizer(), step_size=100, gamma=0.98), 450)
    assert seen == expected
    for step in (0, 99, 100, 199, 200, 449):
        assert seen[step] == pytest.approx(LR * 0.98 ** (step // 100), rel=1e-12)


def test_onecycle_is_pytorchs_over_all_epochs_peaking_at_the_searched_fraction():
    cfg = TrainConfig(epochs=4, scheduler="onecycle", onecycle_peak=0.25, lr=3e-3)
    seen = lrs_of(build_schedule(optimizer(3e-3), cfg, steps_per_epoch=50), 200)
    reference = lr_scheduler.OneCycleLR(optimizer(3e-3), max_lr=3e-3, total_steps=200, pct_start=0.25)
    assert seen == pytorch_lrs(reference, 200)
    assert seen[0] == pytest.approx(3e-3 / 25), "starts at lr / div_factor"
    assert max(seen) == pytest.approx(3e-3) and seen.index(max(seen)) == 49, "peaks at 25% of 200 batches"
    assert seen[-1] == pytest.approx(3e-3 / 25 / 1e4, rel=1e-3), "ends at the minimum"


def test_onecycle_cycles_beta1_only_when_asked():
    """With beta1 0.95 the cycle is OneCycleLR's default 0.95 -> 0.85 -> 0.95; another beta1 scales it."""
    cfg = TrainConfig(epochs=1, scheduler="onecycle", beta1=0.95, onecycle_peak=0.5, cycle_beta1=True)
    schedule = build_schedule(optimizer(beta1=0.95), cfg, steps_per_epoch=100)
    reference = lr_scheduler.OneCycleLR(optimizer(beta1=0.95), max_lr=LR, total_steps=100, pct_start=0.5)
    for _ in range(100):
        betas = schedule.optimizer.param_groups[0]["betas"]
        assert betas == pytest.approx(reference.optimizer.param_groups[0]["betas"])
        lrs_of(schedule, 1)
        pytorch_lrs(reference, 1)
    scaled = build_schedule(optimizer(beta1=0.9), TrainConfig(epochs=1, scheduler="onecycle", beta1=0.9,
                                                              onecycle_peak=0.5, cycle_beta1=True), 100)
    assert scaled.optimizer.param_groups[0]["betas"][0] == pytest.approx(0.9), "the trial's beta1 at the start"
    lrs_of(scaled, 49)
    assert scaled.optimizer.param_groups[0]["betas"][0] == pytest.approx(0.9 * 0.85 / 0.95), "lowest at the peak"
    still = build_schedule(optimizer(beta1=0.9), TrainConfig(epochs=1, scheduler="onecycle", beta1=0.9), 100)
    lrs_of(still, 49)
    assert still.optimizer.param_groups[0]["betas"][0] == 0.9, "beta1 stays without cycle_beta1"


def test_batch_cosine_warms_up_in_steps_then_follows_cosine_annealing():
    warmup, total = 20, 200
    cfg = TrainConfig(epochs=2, scheduler="batch_cosine", warmup_steps=warmup, cosine_min_factor=0.01)
    seen = lrs_of(build_schedule(optimizer(), cfg, steps_per_epoch=100), total)
    assert seen[:warmup] == pytest.approx([LR * (t + 1) / (warmup + 1) for t in range(warmup)], rel=1e-12)
    cosine = pytorch_lrs(lr_scheduler.CosineAnnealingLR(optimizer(), T_max=total - warmup, eta_min=LR * 0.01),
                         total - warmup)
    assert seen[warmup:] == pytest.approx(cosine, rel=1e-9), "the cosine starts after the warm-up"
    assert seen[warmup] == pytest.approx(LR) and seen[-1] == pytest.approx(LR * 0.01, rel=1e-2)


def test_warmup_steps_alone_ramps_to_lr_and_stays():
    cfg = TrainConfig(epochs=1, scheduler="none", warmup_steps=4)
    seen = lrs_of(build_schedule(optimizer(), cfg, steps_per_epoch=10), 10)
    assert seen == pytest.approx([LR * f for f in (0.2, 0.4, 0.6, 0.8)] + [LR] * 6, rel=1e-12)


def test_warmup_before_the_articles_decay_delays_it():
    cfg = TrainConfig(epochs=1, scheduler="batch_exponential", warmup_steps=10, decay_every=5, decay_rate=0.5)
    seen = lrs_of(build_schedule(optimizer(), cfg, steps_per_epoch=30), 30)
    assert seen[9] == pytest.approx(LR * 10 / 11) and seen[10:15] == pytest.approx([LR] * 5)
    assert seen[15] == pytest.approx(LR * 0.5) and seen[29] == pytest.approx(LR * 0.125)


SCHEDULES = {
    "batch_exponential": {"decay_every": 10, "decay_rate": 0.9},
    "onecycle": {"onecycle_peak": 0.4},
    "batch_cosine": {"warmup_steps": 25},
}


def reference_scheduler(cfg: TrainConfig, total: int) -> lr_scheduler.LRScheduler:
    """PyTorch's own scheduler for `cfg`, built here from the documented meaning of each setting."""
    opt = optimizer(cfg.lr)
    if cfg.scheduler == "batch_exponential":
        return lr_scheduler.StepLR(opt, step_size=cfg.decay_every, gamma=cfg.decay_rate)
    if cfg.scheduler == "onecycle":
        return lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total, pct_start=cfg.onecycle_peak)
    w = cfg.warmup_steps
    return lr_scheduler.SequentialLR(opt, [
        lr_scheduler.LinearLR(opt, start_factor=1 / (w + 1), total_iters=w),
        lr_scheduler.CosineAnnealingLR(opt, T_max=total - w, eta_min=cfg.lr * cfg.cosine_min_factor)],
        milestones=[w])


@pytest.mark.parametrize("scheduler", SCHEDULES)
def test_the_loop_steps_per_batch_and_records_each_epochs_last_batch_lr(digits, scheduler):
    cfg = TrainConfig(epochs=3, scheduler=scheduler, **SCHEDULES[scheduler])
    per_epoch = math.ceil(len(digits.train) / cfg.batch_size)
    expected = pytorch_lrs(reference_scheduler(cfg, 3 * per_epoch), 3 * per_epoch)
    lrs = [r.lr for r in fit(cfg, digits).history]
    assert lrs == pytest.approx([expected[(e + 1) * per_epoch - 1] for e in range(3)], rel=1e-9)
    assert len(set(lrs)) == 3, "the per-batch shape shows at epoch ends"


def test_train_on_train_plus_validation_keeps_the_schedule_laid_out_over_all_epochs(digits):
    """`train` stops after best_epoch + 1 epochs: the one-cycle is cut there, not squeezed into them."""
    cfg = TrainConfig(epochs=4, scheduler="onecycle", onecycle_peak=0.3)
    per_epoch = math.ceil((len(digits.train) + len(digits.val)) / cfg.batch_size)
    expected = pytorch_lrs(reference_scheduler(cfg, 4 * per_epoch), 2 * per_epoch)
    result = fit(cfg, digits, validate=False, stop_after=2)
    assert [r.lr for r in result.history] == pytest.approx([expected[per_epoch - 1], expected[-1]], rel=1e-9)
    assert result.history[-1].lr > cfg.lr / 10, "halfway through the cycle, far from its end"


KILLED_MID_EPOCH = textwrap.dedent("""
    import json, os, signal, sys
    from torch.optim.optimizer import register_optimizer_step_post_hook
    from adamtune.data import load_dataset
    from adamtune.training import Checkpoint, TrainConfig, fit

    cfg = TrainConfig.from_dict(json.loads(sys.argv[2]))
    kill_at, steps = int(sys.argv[3]), 0

    def kill_mid_epoch(optimizer, args, kwargs):
        global steps
        steps += 1
        if steps == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    register_optimizer_step_post_hook(kill_mid_epoch)
    fit(cfg, load_dataset("digits"), checkpoint=Checkpoint(sys.argv[1], owner="trial-0"))
""")

def same_run(resumed, uninterrupted) -> None:
    rows = [[(r.train_loss, r.val_loss, r.lr) for r in run.history] for run in (resumed, uninterrupted)]
    assert rows[0] == rows[1], "per-epoch losses and learning rates equal an uninterrupted run's"
    for key, weight in uninterrupted.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], weight), key


def test_a_run_killed_mid_epoch_resumes_the_per_batch_schedule_exactly(tmp_path, digits):
    """A real SIGKILL halfway through the third epoch of a one-cycle that also cycles beta1."""
    cfg = TrainConfig(epochs=4, seed=2, dropout=0.1, rotation=5.0, scheduler="onecycle", onecycle_peak=0.4,
                      cycle_beta1=True)
    path = tmp_path / "checkpoint.pt"
    kill_at = 2 * math.ceil(len(digits.train) / cfg.batch_size) + 9  # optimizer steps: mid third epoch
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_EPOCH, str(path), json.dumps(cfg.to_dict()),
                             str(kill_at)], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    assert path.exists(), "two finished epochs left a checkpoint"
    resumed = fit(cfg, digits, checkpoint=Checkpoint(path, owner="trial-0"))
    assert resumed.resumed_epochs == 2
    same_run(resumed, fit(cfg, digits))


@pytest.mark.parametrize("scheduler", SCHEDULES)
def test_every_per_batch_schedule_resumes_from_an_epoch_end_checkpoint_exactly(tmp_path, digits, scheduler):
    cfg = TrainConfig(epochs=3, seed=1, scheduler=scheduler, **SCHEDULES[scheduler])
    checkpoint = Checkpoint(tmp_path / "checkpoint.pt")
    fit(cfg, digits, checkpoint=checkpoint, stop_after=1)
    resumed = fit(cfg, digits, checkpoint=checkpoint)
    assert resumed.resumed_epochs == 1
    same_run(resumed, fit(cfg, digits))


@pytest.mark.parametrize("settings,key,reason", [
    ({"decay_every": 0}, "decay_every", "must be >= 1"),
    ({"decay_rate": 0.0}, "decay_rate", "must be in (0, 1]"),
    ({"onecycle_peak": 1.0}, "onecycle_peak", "must be in (0, 1)"),
    ({"onecycle_peak": 0.0}, "onecycle_peak", "must be in (0, 1)"),
    ({"warmup_steps": -1}, "warmup_steps", "must be >= 0"),
    ({"scheduler": "onecycle", "warmup_steps": 10}, "warmup_steps", "onecycle warms up by itself"),
    ({"scheduler": "cosine", "warmup_steps": 10}, "warmup_steps", "warms up with warmup_epochs"),
    ({"scheduler": "batch_cosine", "warmup_epochs": 1}, "warmup_epochs", "warms up with warmup_steps"),
    ({"warmup_steps": 10, "warmup_epochs": 1}, "warmup_steps", "not both"),
])
def test_config_rejects_bad_schedule_settings_by_key(settings, key, reason):
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict(settings, source="best.json")
    assert info.value.key == key and reason in str(info.value)
