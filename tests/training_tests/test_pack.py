"""Packed training: a trial's numbers must not depend on the pack it trains in (its size, its slot, its
neighbours), so `train --validate` reproduces a packed trial and a retried one resumes as it would have gone on."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from adamtune.data import SourceError, load_dataset
from adamtune.training import Checkpoint, ModelSource, Pack, TrainConfig, fit, fit_packed, unpackable

DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
# CUDA trains under bf16 autocast, and cuBLAS/cuDNN pick kernels by batch count (and some backward kernels
# are not deterministic): a pack of 4 and a pack of 1 round differently there; on CPU they must agree.
RTOL = {"cpu": 1e-5, "cuda": 2e-2}


def mixed(model: str, epochs: int = 3) -> list[TrainConfig]:
    """Four trials of one structure differing in every continuous setting: optimizer, lr, betas, eps, weight
    decay, amsgrad, every kind of schedule (per epoch, per batch, plateau, one-cycle with beta1 cycling),
    dropout, label smoothing, clipping, early stopping and every augmentation digits allows."""
    base = TrainConfig(model=model, width=8 if model == "cnn" else 32, batch_size=64, epochs=epochs)
    changes = [
        dict(optimizer="adam", lr=3e-3, beta1=0.9, beta2=0.999, eps=1e-8, scheduler="cosine", warmup_epochs=1,
             dropout=0.0, rotation=10.0, patience=1),
        dict(optimizer="adamw", lr=1e-2, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.05, amsgrad=True,
             scheduler="onecycle", cycle_beta1=True, dropout=0.3, label_smoothing=0.1, grad_clip=0.5,
             translate=0.1, random_erasing=0.3),
        dict(optimizer="adam", lr=1e-3, beta1=0.95, beta2=0.9999, eps=1e-10, weight_decay=1e-3,
             scheduler="batch_exponential", decay_every=10, decay_rate=0.9, warmup_steps=5, dropout=0.1,
             grad_clip=1.0, random_crop=1),
        dict(optimizer="adamw", lr=5e-3, beta1=0.85, beta2=0.995, eps=1e-7, weight_decay=1e-2, scheduler="plateau",
             plateau_patience=1, plateau_factor=0.5, dropout=0.5, label_smoothing=0.2, rotation=5.0,
             translate=0.05),
    ]
    return [dataclasses.replace(base, seed=i, **change) for i, change in enumerate(changes)]


def of_many_shapes(model: str, epochs: int = 3) -> list[TrainConfig]:
    """`mixed`'s four trials at four widths and three activations; for the MLP (no BatchNorm) also at four
    batch sizes, one of them (48) not a power of two and one (128) not dividing the split."""
    widths = [8, 16, 4, 12] if model == "cnn" else [32, 128, 64, 16]
    batches = [64] * 4 if model == "cnn" else [16, 64, 48, 128]
    activations = ["relu", "leaky_relu", "elu", "leaky_relu"]
    return [dataclasses.replace(cfg, width=w, activation=a, batch_size=b)
            for cfg, w, a, b in zip(mixed(model, epochs), widths, activations, batches)]


def val_losses(result) -> list[float]:
    return [r.val_loss for r in result.history]


def assert_close(a: list[float], b: list[float], rtol: float) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert abs(x - y) <= rtol * abs(y), (a, b)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_a_trial_in_a_pack_trains_as_it_trains_packed_alone(digits, model, device):
    configs = mixed(model)
    data = digits if device == "cpu" else load_dataset("digits", device=device)
    together = fit_packed(configs, data, device=device)
    reversed_slots = fit_packed(configs[::-1], data, device=device)[::-1]
    for cfg, packed, other_slot in zip(configs, together, reversed_slots):
        alone = fit_packed([cfg], data, device=device)[0]
        assert_close(val_losses(packed), val_losses(alone), RTOL[device])
        assert_close(val_losses(other_slot), val_losses(alone), RTOL[device])
        assert (packed.best_epoch, packed.stopped_early) == (alone.best_epoch, alone.stopped_early)
    lrs = [[r.lr for r in result.history] for result in together]
    assert len({tuple(lr) for lr in lrs}) == len(configs), "every schedule shows in its own trial's records"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_trials_of_different_widths_activations_and_batch_sizes_share_one_pack_and_train_as_alone(
        digits, model, device):
    """The pack does not narrow the search: trials of any width and activation (and, without BatchNorm, batch
    size) train in one program, each as it trains alone."""
    configs = of_many_shapes(model)
    data = digits if device == "cpu" else load_dataset("digits", device=device)
    pack = Pack(data, device=device, width=max(cfg.width for cfg in configs), max_padding=None, mix_batches=True)
    for i, cfg in enumerate(configs):
        assert pack.can_take(cfg)
        pack.add(i, cfg)
    assert pack.keys == [0, 1, 2, 3]
    together = fit_packed(configs, data, device=device)
    for cfg, packed in zip(configs, together):
        alone = fit_packed([cfg], data, device=device)[0]
        assert alone.param_count == packed.param_count < pack.slot_result(0).param_count * 16
        assert_close(val_losses(packed), val_losses(alone), RTOL[device])
        assert (packed.best_epoch, packed.stopped_early) == (alone.best_epoch, alone.stopped_early)
        for key, value in packed.model.state_dict().items():
            assert value.shape == alone.model.state_dict()[key].shape


def test_a_model_with_batchnorm_keeps_one_batch_size_per_pack(digits):
    """BatchNorm normalises by the rows it sees at once: its trials cannot sum a batch over ticks."""
    cnn, mlp = Pack(digits, width=8, mix_batches=True), Pack(digits, width=64, max_padding=None, mix_batches=True)
    cnn.add(0, TrainConfig(model="cnn", width=8, batch_size=64))
    mlp.add(0, TrainConfig(model="mlp", width=64, batch_size=64))
    assert not cnn.can_take(TrainConfig(model="cnn", width=8, batch_size=32))
    assert mlp.can_take(TrainConfig(model="mlp", width=64, batch_size=32))
    assert not mlp.can_take(TrainConfig(model="mlp", width=128, batch_size=64)), "wider than the pack"
    assert not mlp.can_take(TrainConfig(model="mlp", width=64, batch_size=63)), "63 and 64 share no tick"


def test_on_a_cpu_a_pack_pads_at_most_twice_and_keeps_one_batch_size_on_a_gpu_it_mixes_all(digits):
    """Padded units and every tick's step cost arithmetic on a CPU; a pack there holds widths within a factor
    of two and one batch size."""
    narrow = Pack(digits, width=512)  # the widest the study samples
    narrow.add(0, TrainConfig(model="mlp", width=128))
    assert narrow.width == 128, "512 would pad the first trial 4x"
    assert narrow.can_take(TrainConfig(model="mlp", width=64))
    assert not narrow.can_take(TrainConfig(model="mlp", width=32))
    assert not narrow.can_take(TrainConfig(model="mlp", width=256))
    wide = Pack(digits, width=512)
    wide.add(0, TrainConfig(model="mlp", width=256))
    assert wide.width == 512 and wide.can_take(TrainConfig(model="mlp", width=512))
    assert not narrow.can_take(TrainConfig(model="mlp", width=128, batch_size=32)), "on a CPU, one batch size"
    narrow.remove([0])
    narrow.add(1, TrainConfig(model="mlp", width=512))  # emptied, it takes any width up to the widest again
    assert narrow.width == 512
    anywhere = Pack(digits, width=512, max_padding=None, mix_batches=True)  # as on a GPU
    anywhere.add(0, TrainConfig(model="mlp", width=32))
    assert anywhere.width == 512 and anywhere.can_take(TrainConfig(model="mlp", width=64, batch_size=32))


def test_packed_alone_is_fit_to_float_rounding_without_dropout(digits):
    """Without dropout (whose masks the pack draws its own way) the packed engine is `fit`: same batches,
    augmentation, initialisation, schedules and Adam, only batched kernels round differently."""
    for cfg in mixed("mlp") + of_many_shapes("mlp"):  # the latter at other widths, activations, batch sizes
        cfg = dataclasses.replace(cfg, dropout=0.0)
        assert_close(val_losses(fit_packed([cfg], digits)[0]), val_losses(fit(cfg, digits)), 1e-5)


def test_a_diverged_slot_leaves_the_others_untouched(digits):
    configs = mixed("mlp")
    pack = Pack(digits)
    for i, cfg in enumerate(configs):
        pack.add(i, cfg)
    with torch.no_grad():
        pack.model.flat[1] = math.nan  # type: ignore[union-attr]  # slot 1's weights go bad before epoch 0
    results, errors = {}, {}
    while pack.slots:
        outcomes = pack.epoch()
        errors.update((o.key, o.error) for o in outcomes if o.error is not None)
        results.update((o.key, pack.result(o.key)) for o in outcomes if o.finished and o.error is None)
        pack.remove([o.key for o in outcomes if o.finished])
    assert list(errors) == [1] and "became nan" in str(errors[1])
    for i in (0, 2, 3):
        assert_close(val_losses(results[i]), val_losses(fit_packed([configs[i]], digits)[0]), 1e-5)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_a_packed_trial_resumes_from_its_checkpoint_as_if_never_stopped(digits, tmp_path, model):
    """Killed after epoch 2 in a pack of four widths, each trial resumes in a pack of three (narrower: its
    checkpoint holds its own shapes, not the pack's) as if it had never stopped."""
    configs = of_many_shapes(model, epochs=4)
    whole = fit_packed(configs, digits)
    pack = Pack(digits, checkpoint_every=0, width=max(cfg.width for cfg in configs), max_padding=None,
                mix_batches=True)
    for i, cfg in enumerate(configs):
        pack.add(i, cfg, checkpoint=Checkpoint(tmp_path / f"{i}.pt"))
    pack.remove([o.key for o in pack.epoch() if o.finished])
    pack.remove([o.key for o in pack.epoch() if o.finished])  # stopped after epoch 2: the worker dies

    retried = (3, 2, 0)  # not the widest (1): the new pack is narrower than the one they were killed in
    width = max(configs[i].width for i in retried)
    assert width < pack.width
    # A new worker packs the retries in another order.
    resumed = Pack(digits, checkpoint_every=0, width=width, max_padding=None, mix_batches=True)
    restored = {i: resumed.add(i, configs[i], checkpoint=Checkpoint(tmp_path / f"{i}.pt")) for i in retried}
    assert {i: len(r) for i, r in restored.items()} == dict.fromkeys(retried, 2)
    results = {}
    while resumed.slots:
        ended = [o.key for o in resumed.epoch() if o.finished]
        results.update((k, resumed.result(k)) for k in ended)
        resumed.remove(ended)
    for i in retried:
        assert results[i].resumed_epochs == 2
        assert_close(val_losses(results[i]), val_losses(whole[i]), 1e-5)
        for key, value in results[i].model.state_dict().items():
            assert torch.allclose(value.float(), whole[i].model.state_dict()[key].float(), rtol=1e-4, atol=1e-6)


class _ChannelDropout(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Dropout2d(0.2), nn.Flatten(), nn.LazyLinear(10))

    def forward(self, x):
        return self.body(x)


class _Branching(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc(x) if x.sum() > 0 else -self.fc(x)  # control flow on values: vmap cannot batch it


@pytest.mark.parametrize("model,reason", [(_ChannelDropout, "Dropout2d; only nn.Dropout masks"),
                                          (_Branching, "torch.func.vmap cannot run its forward pass")])
def test_a_model_that_cannot_be_stacked_says_why(digits, tmp_path, monkeypatch, model, reason):
    module = tmp_path / "odd_nets.py"
    module.write_text("from training_tests.test_pack import _ChannelDropout, _Branching\n\n"
                      f"def build(input_shape, num_classes, params):\n    return {model.__name__}()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    source = ModelSource.parse({"entry": "odd_nets:build"}, origin="study.yaml", folder=tmp_path)
    found = unpackable(digits, TrainConfig(model="odd_nets:build"), {}, model_source=source)
    assert found is not None and reason in found
    assert unpackable(digits, TrainConfig(model="cnn", width=8)) is None


@pytest.mark.parametrize("extra", [1, -1])
def test_a_slot_whose_model_has_the_wrong_number_of_logits_is_refused_before_training(digits, tmp_path, extra):
    # The output depends on a setting that need not agree within a pack: each slot's model is checked.
    (tmp_path / "wrong_nets.py").write_text(
        "from torch import nn\n\ndef build(input_shape, num_classes, params, *, extra):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes + (extra if params['lr'] > 0.005 else 0)))\n")
    source = ModelSource.parse({"entry": "wrong_nets:build", "extra": extra}, origin="study.yaml", folder=tmp_path)
    pack = Pack(digits, model_source=source)
    pack.add("good", TrainConfig(model="wrong_nets:build", lr=1e-3), {"lr": 1e-3})
    with pytest.raises(SourceError) as info:
        pack.add("bad", TrainConfig(model="wrong_nets:build", lr=1e-2), {"lr": 1e-2})
    assert str(info.value) == (f"study.yaml: model.entry: model returned (2, {10 + extra}) logits for 10 classes; "
                               "it must return logits of shape (batch, num_classes) = (2, 10)")
    assert pack.keys == ["good"]
