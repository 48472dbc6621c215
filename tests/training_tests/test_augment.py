"""Batched augmentation: per-sample parameters, the semantics of each transform."""

from __future__ import annotations

import torch

from adamtune.training.augment import Augmentation


def batch_of_one_image(n: int = 64) -> torch.Tensor:
    img = torch.zeros(1, 1, 16, 16)
    img[..., 4:12, 6:9] = 1.0  # a vertical bar off-centre
    return img.repeat(n, 1, 1, 1)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_every_sample_gets_its_own_rotation():
    out = Augmentation(rotation=30).warp(batch_of_one_image(), gen())
    distinct = {tuple(x.flatten().round(decimals=4).tolist()) for x in out}
    assert len(distinct) > 50
    assert out.shape == (64, 1, 16, 16)


def test_no_augmentation_is_identity():
    x = batch_of_one_image()
    aug = Augmentation()
    assert not aug.active
    assert torch.equal(aug.erase(aug.warp(x, gen()), gen()), x)


def test_hflip_mirrors_about_half_of_the_samples_exactly():
    x = batch_of_one_image(200)
    out = Augmentation(hflip=True).warp(x, gen())
    mirrored = torch.flip(x, dims=[3])
    same = [torch.allclose(o, a, atol=1e-5) for o, a in zip(out, x)]
    flipped = [torch.allclose(o, m, atol=1e-5) for o, m in zip(out, mirrored)]
    assert all(s or f for s, f in zip(same, flipped))
    assert 70 < sum(flipped) < 130


def test_random_crop_shifts_by_whole_pixels_with_zero_fill():
    x = batch_of_one_image(100)
    out = Augmentation(random_crop=2).warp(x, gen())
    for o in out:
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if torch.allclose(o, torch.roll(x[0], (dy, dx), dims=(1, 2)), atol=1e-5)]
        assert matches, "each output is the input shifted by at most 2 whole pixels"
    assert out.sum(dim=(1, 2, 3)).allclose(x.sum(dim=(1, 2, 3)))  # the bar never leaves the 16x16 frame


def test_random_erasing_zeroes_one_rectangle_in_the_chosen_share_of_samples():
    x = torch.ones(400, 1, 20, 20)
    out = Augmentation(random_erasing=0.5).erase(x, gen())
    erased = (out == 0).flatten(1).sum(1)
    share = (erased > 0).float().mean().item()
    assert 0.4 < share < 0.6
    areas = erased[erased > 0].float() / 400
    assert areas.min() >= 0.01 and areas.max() <= 0.4


def test_translate_shifts_each_signal_along_its_length_with_zero_fill():
    x = torch.arange(1.0, 21.0).view(1, 1, 20).repeat(200, 2, 1)  # (B, C, L), no zeros inside
    out = Augmentation(translate=0.2).shift(x, gen())
    steps = set()
    for o in out:
        step = next(s for s in range(-4, 5) if torch.equal(o, shifted(x[0], s)))  # at most 20% of 20 samples
        assert torch.equal(o[0], o[1]), "every channel of a signal moves together"
        steps.add(step)
    assert len(steps) == 9, "each signal draws its own shift"
    assert torch.equal(Augmentation().shift(x, gen()), x)


def shifted(signal: torch.Tensor, step: int) -> torch.Tensor:
    out = torch.roll(signal, step, dims=-1)
    if step > 0:
        out[..., :step] = 0
    elif step < 0:
        out[..., step:] = 0
    return out
