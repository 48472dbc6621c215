"""Datasets: the offline default, torchvision formats read from a data root, and a clear error offline."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from adamtune.data import DataError, load_dataset


def test_digits_split_is_fixed_disjoint_and_complete():
    d = load_dataset("digits")
    assert d.shape == (1, 8, 8) and d.num_classes == 10 and d.scale == 16.0
    assert (len(d.train), len(d.val), len(d.test)) == (1150, 288, 359)
    rows = lambda s: {tuple(x.flatten().tolist()) + (int(y),) for x, y in zip(s.images, s.labels)}  # noqa: E731
    assert not rows(d.val) & rows(d.test)
    assert torch.equal(load_dataset("digits").val.labels, d.val.labels)


def write_idx(path, array: np.ndarray) -> None:
    """The MNIST IDX format: magic (0, 0, dtype 0x08, ndim), big-endian sizes, raw uint8 data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist_files(root, n_train: int, n_test: int) -> None:
    """Random MNIST-format IDX files of `n_train` and `n_test` images under root/MNIST/raw."""
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n))


def test_mnist_is_read_from_a_data_root_of_idx_files(tmp_path):
    write_mnist_files(tmp_path, 12_000, 500)
    d = load_dataset("mnist", tmp_path)
    assert d.shape == (1, 28, 28) and d.scale == 255.0
    assert (len(d.train), len(d.val), len(d.test)) == (2_000, 10_000, 500)
    assert d.train.images.dtype == torch.uint8


def test_a_truncated_mnist_too_small_for_its_validation_split_is_one_line(tmp_path):
    """A copy with no more images than the validation split takes would leave nothing to train on (it crashed
    deep in the schedule or the pack): refused with the place and the reason."""
    write_mnist_files(tmp_path, 10_000, 50)
    with pytest.raises(DataError) as info:
        load_dataset("mnist", tmp_path)
    assert str(info.value) == (f"mnist under {tmp_path} has 10,000 training images, but its validation split "
                               "alone takes 10,000; the files are incomplete (the full set has more): replace them")


def test_missing_dataset_offline_says_where_and_what_works(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset("fashion_mnist", tmp_path / "nothing")
    message = str(info.value)
    assert str(tmp_path / "nothing" / "FashionMNIST" / "raw") in message
    assert "digits_mlp.yaml" in message and "\n" not in message
