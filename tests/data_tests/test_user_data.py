"""The user's data as tensors: image folders (decoded once, cached by the files' names, sizes, mtimes, ctimes
and inodes, fingerprinted by their contents), .npz arrays and Python entry points, each through the same loop."""

from __future__ import annotations

import os
import re
import time

import numpy as np
import pytest
import torch
from PIL import Image

from adamtune.data import DataSource, SourceError, load_dataset
from adamtune.training import ModelSource, TrainConfig, fit
from adamtune.training.models import build_model
from own_data import digit_features, write_digit_images, write_images, write_module


def folder_source(tmp_path, **mapping) -> DataSource:
    return DataSource.parse({"type": "image_folder", **mapping}, origin="study.yaml", folder=tmp_path)


def test_image_folder_reads_classes_sorted_as_imagefolder_does(tmp_path):
    write_images(tmp_path / "pets", {"dog": 12, "cat": 10, "bird": 8}, size=(6, 5))
    (tmp_path / "pets" / ".ipynb_checkpoints").mkdir()  # hidden entries and other files are ignored
    (tmp_path / "pets" / "cat" / "notes.txt").write_text("not an image")
    data = load_dataset(folder_source(tmp_path, path="pets"), tmp_path / "root")
    assert data.classes == ("bird", "cat", "dog") and data.num_classes == 3
    assert data.shape == (1, 6, 5) and data.train.images.dtype == torch.uint8 and data.kind == "image"
    assert len(data.train) + len(data.val) + len(data.test) == 30
    assert (len(data.test), len(data.val)) == (6, 5), "the built-ins' seeded split: 20% test, 20% of the rest"
    labels = torch.cat([data.train.labels, data.val.labels, data.test.labels])
    assert torch.bincount(labels).tolist() == [8, 10, 12]


def test_image_folder_channels_and_size(tmp_path):
    write_images(tmp_path / "mixed" / "a", {"": 6}, mode="L", size=(8, 8))
    write_images(tmp_path / "mixed" / "b", {"": 6}, mode="RGB", size=(10, 12))
    with pytest.raises(SourceError, match=r"dataset.path: images differ in size: a/000.png is 8x8 but b/000.png "
                                          r"is 10x12; give size: \[height, width\]"):
        load_dataset(folder_source(tmp_path, path="mixed"), tmp_path / "root")
    mixed = load_dataset(folder_source(tmp_path, path="mixed", size=[16, 16]), tmp_path / "root")
    assert mixed.shape == (3, 16, 16), "one colour image makes the folder RGB"
    grey = load_dataset(folder_source(tmp_path, path="mixed", size=16, channels=1), tmp_path / "root")
    assert grey.shape == (1, 16, 16) and len(grey.mean) == 1


def test_explicit_val_and_test_folders_keep_the_training_class_order(tmp_path):
    write_images(tmp_path / "train", {"a": 10, "b": 10, "c": 10})
    write_images(tmp_path / "test", {"c": 4, "a": 2}, seed=1)  # a subset of the classes
    write_images(tmp_path / "val", {"b": 3}, seed=2)
    data = load_dataset(folder_source(tmp_path, path="train", val="val", test="test"), tmp_path / "root")
    assert (len(data.train), len(data.val), len(data.test)) == (30, 3, 6)
    assert data.test.labels.tolist() == [0, 0, 2, 2, 2, 2] and data.val.labels.tolist() == [1, 1, 1]
    write_images(tmp_path / "test" / "zebra", {"": 1})
    with pytest.raises(SourceError, match="dataset.test: class folder 'zebra' is not among the training classes"):
        load_dataset(folder_source(tmp_path, path="train", test="test"), tmp_path / "root")


def test_cache_hit_and_miss_after_a_file_changes(tmp_path):
    from adamtune.data._image_folder import list_images, load_image_folder

    paths = write_images(tmp_path / "pets", {"cat": 20, "dog": 20})
    cache = tmp_path / "cache"

    def load():
        listing = list_images(tmp_path / "pets", origin="s", key="k")
        return load_image_folder(listing, size=None, channels=None, skip_bad=False, cache_dir=cache, origin="s",
                                 key="k")

    first = load()
    assert not first.from_cache and len(list(cache.glob("*.pt"))) == 1
    start = time.perf_counter()
    second = load()
    assert second.from_cache and time.perf_counter() - start < 1.0
    assert torch.equal(first.images, second.images) and second.fingerprint == first.fingerprint
    os.utime(paths[3], ns=(paths[3].stat().st_atime_ns, paths[3].stat().st_mtime_ns + 10**9))
    touched = load()
    assert not touched.from_cache, "a newer mtime misses the cache"
    assert touched.fingerprint == first.fingerprint, "the fingerprint is of the contents, not the mtimes"
    write_images(tmp_path / "pets", {"cat": 1}, seed=9)  # rewrites cat/000.png with other pixels
    changed = load()
    assert not changed.from_cache and changed.fingerprint != first.fingerprint
    assert not torch.equal(changed.images[0], first.images[0])


def test_data_cache_lives_under_the_data_root(tmp_path):
    write_images(tmp_path / "pets", {"cat": 5, "dog": 5})
    load_dataset(folder_source(tmp_path, path="pets"), tmp_path / "root")
    assert len(list((tmp_path / "root" / "cache" / "image_folder").glob("*.pt"))) == 1


def arrays_source(tmp_path, **arrays) -> DataSource:
    np.savez(tmp_path / "data.npz", **arrays)
    return DataSource.parse({"type": "arrays", "path": "data.npz"}, origin="study.yaml", folder=tmp_path)


def test_float_features_train_in_the_same_loop_on_device_tensors(tmp_path):
    x, y = digit_features(600)
    data = load_dataset(arrays_source(tmp_path, x=x, y=y))
    assert data.kind == "features" and data.shape == (64,) and data.scale == 1.0
    assert data.train.images.dtype == torch.float32 and len(data.mean) == 64
    assert data.std[0] == 1.0, "a constant feature (digits' first pixel is always 0) is only centred"
    result = fit(TrainConfig(dataset="arrays", epochs=10, width=32, lr=3e-3), data)
    assert result.val_accuracy > 0.85


def test_signals_uint8_images_explicit_parts_and_class_names(tmp_path):
    rng = np.random.default_rng(0)
    signals = load_dataset(arrays_source(tmp_path, x=rng.normal(size=(50, 2, 30)), y=rng.integers(0, 3, 50)))
    assert signals.kind == "signal" and signals.shape == (2, 30) and len(signals.mean) == 2
    images = load_dataset(arrays_source(tmp_path, x=rng.integers(0, 256, (40, 9, 9), dtype=np.uint8),
                                        y=np.arange(40) % 2, x_test=np.zeros((5, 9, 9), np.uint8),
                                        y_test=np.ones(5, int), classes=np.array(["no", "yes"])))
    assert images.kind == "image" and images.shape == (1, 9, 9) and images.scale == 255.0
    assert (len(images.test), images.classes) == (5, ("no", "yes"))
    assert images.facts.split == {"seed": 0, "test": "given", "val": 0.2}
    assert len(images.train) + len(images.val) == 40, "validation is carved from x, the test part is given"
    a, b = (load_dataset(arrays_source(tmp_path, x=np.eye(20), y=np.arange(20) % 2)) for _ in range(2))
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 16
    c = load_dataset(arrays_source(tmp_path, x=np.eye(20), y=(np.arange(20) + 1) % 2))
    assert c.fingerprint != a.fingerprint


def test_python_entry_point_with_keyword_arguments(tmp_path):
    write_module(tmp_path, "my_data")
    source = DataSource.parse({"type": "python", "entry": "my_data:load", "n": 200}, origin="study.yaml",
                              folder=tmp_path)
    data = load_dataset(source)
    assert len(data.train) + len(data.val) + len(data.test) == 200 and data.classes[3] == "3"


def test_a_signal_is_shifted_and_feature_vectors_refuse_image_augmentation(tmp_path):
    rng = np.random.default_rng(0)
    signals = load_dataset(arrays_source(tmp_path, x=rng.normal(size=(80, 1, 16)), y=np.arange(80) % 2))
    shifted = fit(TrainConfig(dataset="arrays", epochs=1, translate=0.2, width=8), signals)
    plain = fit(TrainConfig(dataset="arrays", epochs=1, width=8), signals)
    assert shifted.history[0].train_loss != plain.history[0].train_loss, "translate shifts a signal"
    features = load_dataset(arrays_source(tmp_path, x=rng.normal(size=(80, 5)), y=np.arange(80) % 2))
    with pytest.raises(Exception, match="rotation applies to images only"):
        fit(TrainConfig(dataset="arrays", epochs=1, rotation=5.0), features)
    with pytest.raises(Exception, match="random_crop applies to images only .*only translate"):
        fit(TrainConfig(dataset="arrays", epochs=1, random_crop=2), signals)


def test_the_builtin_mlp_flattens_any_input_shape():
    for shape in [(64,), (2, 30), (3, 4, 5)]:
        out = build_model("mlp", shape, 4, 8, "relu", 0.0)(torch.zeros(2, *shape))
        assert out.shape == (2, 4)


def test_a_user_model_gets_shape_classes_params_and_kwargs(tmp_path):
    write_module(tmp_path)
    write_digit_images(tmp_path / "digits", per_class=20)
    data = load_dataset(folder_source(tmp_path, path="digits"), tmp_path / "root")
    source = ModelSource.parse({"entry": "my_nets:build", "hidden": 5}, origin="study.yaml", folder=tmp_path)
    config = TrainConfig(dataset="image_folder", model="my_nets:build", epochs=1)
    assert fit(config, data, model_source=source, params={"units": 12}).model[1].out_features == 12
    assert fit(config, data, model_source=source, params={}).model[1].out_features == 5, "kwargs reach build"


class _RunsCodeWhenUnpickled:
    """An array element that calls a function of the file's choice (here mkdir) if the .npz is ever unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_an_npz_that_would_run_code_is_refused_without_running_it(tmp_path):
    """The user's .npz may come from anywhere: loading it must never unpickle what it holds."""
    ran = tmp_path / "code-ran"
    planted = np.array([_RunsCodeWhenUnpickled(str(ran)), None], dtype=object)
    with pytest.raises(SourceError) as info:
        load_dataset(arrays_source(tmp_path, x=planted, y=np.arange(2)))
    assert not ran.exists(), "loading the .npz ran code it carried"
    assert "data.npz" in str(info.value) and ("Python objects" in str(info.value) or "pickled" in str(info.value))


def _load_folder(folder, cache, skip_bad=False):
    from adamtune.data._image_folder import list_images, load_image_folder

    listing = list_images(folder, origin="s.yaml", key="dataset.path", **({"skip_bad": True} if skip_bad else {}))
    return load_image_folder(listing, size=None, channels=None, skip_bad=skip_bad, cache_dir=cache,
                             origin="s.yaml", key="dataset.path")


def _ramp(high, dtype, shape=(16, 16)):
    return np.linspace(0, high, num=shape[0] * shape[1]).reshape(shape).astype(dtype)


# (file name, PIL image, the uint8 pixels (C, H, W) it must be cached as)
MODES = {
    "16-bit PNG (I;16)": lambda: ("a.png", Image.fromarray(_ramp(65535, np.uint16)),
                                  np.round(_ramp(65535, np.uint16) / 257.0)[None]),
    "32-bit integer TIFF (I)": lambda: ("a.tif", Image.fromarray(_ramp(65535, np.int32), mode="I"),
                                        np.round(_ramp(65535, np.int32) / 257.0)[None]),
    "float TIFF (F)": lambda: ("a.tif", Image.fromarray(_ramp(1, np.float32), mode="F"),
                               np.round(_ramp(1, np.float32).astype(np.float64) * 255)[None]),
    "1-bit PNG": lambda: ("a.png", Image.fromarray(_ramp(1, np.uint8) > 0), (_ramp(1, np.uint8) > 0)[None] * 255),
    "grey with alpha (LA)": lambda: ("a.png", Image.merge("LA", [Image.fromarray(_ramp(255, np.uint8))] * 2),
                                     _ramp(255, np.uint8)[None]),
    "palette (P)": lambda: ("a.png", Image.fromarray(_ramp(255, np.uint8)).convert("P"),
                            np.asarray(Image.fromarray(_ramp(255, np.uint8)).convert("P").convert("RGB"))
                            .transpose(2, 0, 1)),
    "CMYK TIFF": lambda: ("a.tif", Image.fromarray(np.stack([_ramp(255, np.uint8)] * 4, -1), mode="CMYK"),
                          np.asarray(Image.fromarray(np.stack([_ramp(255, np.uint8)] * 4, -1), mode="CMYK")
                                     .convert("RGB")).transpose(2, 0, 1)),
}


@pytest.mark.parametrize("mode", MODES, ids=list(MODES))
def test_every_image_mode_is_cached_over_its_real_range(tmp_path, mode):
    name, image, expected = MODES[mode]()
    for cls in ("a", "b"):
        (tmp_path / "f" / cls).mkdir(parents=True)
        image.save(tmp_path / "f" / cls / name)
    assert Image.open(tmp_path / "f" / "a" / name).mode == image.mode, "PIL reads back the mode written"
    first = _load_folder(tmp_path / "f", tmp_path / "cache")
    again = _load_folder(tmp_path / "f", tmp_path / "cache")
    assert again.from_cache and torch.equal(first.images, again.images)
    assert first.images.dtype == torch.uint8 and first.images[0].numpy().tolist() == expected.astype(np.uint8).tolist()
    assert len(torch.unique(first.images)) > 2 or mode == "1-bit PNG", "not clipped to 0 and 255"


@pytest.mark.parametrize("pixels,mode,reason", [
    (np.full((8, 8), 70000, np.int32), "I", "has 32-bit integer pixels from 70000 to 70000; integer images are "
                                            "read as 0..65535"),
    (np.full((8, 8), 2.5, np.float32), "F", "has floating-point pixels from 2.5 to 2.5; float images are read "
                                            "as 0..1"),
], ids=["32-bit beyond 16 bits", "float beyond 0..1"])
def test_pixels_outside_the_modes_range_are_refused_by_name(tmp_path, pixels, mode, reason):
    for cls in ("a", "b"):
        (tmp_path / "f" / cls).mkdir(parents=True)
        Image.fromarray(pixels, mode=mode).save(tmp_path / "f" / cls / "x.tif")
    with pytest.raises(SourceError, match=re.escape(f"s.yaml: dataset.path: {tmp_path}/f/a/x.tif {reason}")):
        _load_folder(tmp_path / "f", tmp_path / "cache")


def test_a_file_rewritten_with_the_same_size_and_mtime_misses_the_cache_and_changes_the_fingerprint(tmp_path):
    """BMP files of one size always take the same bytes: the rewrite keeps size and (restored) mtime, as a
    copy tool or `touch -r` does; only the ctime, which no user call sets back, tells it was written."""
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / "pets" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / "pets" / cls / f"{i}.bmp")
    first = _load_folder(tmp_path / "pets", tmp_path / "cache")
    path = tmp_path / "pets" / "cat" / "0.bmp"
    before = path.stat()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    rewritten = _load_folder(tmp_path / "pets", tmp_path / "cache")
    assert not rewritten.from_cache and rewritten.fingerprint != first.fingerprint
    assert rewritten.images[0].sum() == 0, "the new pixels, not the cached ones"
    fresh = _load_folder(tmp_path / "pets", tmp_path / "fresh-cache")
    assert fresh.fingerprint == rewritten.fingerprint, "the fingerprint is the contents', cached or not"


def _labels(dtype=np.int64, **at):
    y = (np.arange(20) % 2).astype(dtype)
    for i, value in at.items():
        y[int(i[1:])] = value
    return y


# (arrays, reason): labels outside 0..K-1 after conversion, K bounded by the samples or given by classes.
BAD_LABELS = {
    "stray label of 10^9": ({"y": _labels(i7=10**9)}, "y[7] = 1000000000 would make more classes than the 20 "
                                                      "samples; labels are 0..K-1, K at most the number of samples"),
    "uint64 label of 2^63": ({"y": _labels(np.uint64, i3=2**63)}, "y[3] = 9223372036854775808 would make more "
                                                                  "classes than the 20 samples"),
    "float label of 1e30": ({"y": _labels(np.float64, i5=1e30)}, "y[5] = 1e+30 would make more classes than"),
    "y_val beyond the class names": ({"y": _labels(), "x_val": np.ones((4, 3)), "y_val": np.array([0, 1, 2, 0]),
                                      "classes": np.array(["a", "b"])},
                                     "y_val[2] = 2 but classes names only 2 classes; labels are 0..K-1 indexing"),
    "a class name repeated": ({"y": _labels(), "classes": np.array(["a", "b", "a"])},
                              "classes[2] = 'a' repeats classes[0]; every class needs its own name"),
    "more class names than samples": ({"y": _labels(), "classes": np.array([str(i) for i in range(21)])},
                                      "classes names 21 classes but there are 20 samples; more classes than samples"),
    "class names of two dimensions": ({"y": _labels(), "classes": np.array([["a", "b"]])},
                                      "classes has shape (1, 2); it holds one name per class, shape (K,)"),
}


@pytest.mark.parametrize("kind", ["arrays", "python"])
@pytest.mark.parametrize("case", BAD_LABELS, ids=list(BAD_LABELS))
def test_labels_outside_0_to_k_minus_1_are_refused_naming_the_array_and_index(tmp_path, case, kind):
    arrays, reason = BAD_LABELS[case]
    np.savez(tmp_path / "data.npz", x=np.ones((20, 3), np.float32), **arrays)
    (tmp_path / "labels_entry.py").write_text("import numpy as np\n\n\ndef load(path):\n"
                                              "    return dict(np.load(path))\n")
    raw = {"type": "arrays", "path": "data.npz"} if kind == "arrays" else \
        {"type": "python", "entry": "labels_entry:load", "path": str(tmp_path / "data.npz")}
    where = f"dataset.path: {tmp_path}/data.npz" if kind == "arrays" else "dataset.entry: labels_entry:load"
    with pytest.raises(SourceError, match=re.escape(f"study.yaml: {where}: {reason}")):
        load_dataset(DataSource.parse(raw, origin="study.yaml", folder=tmp_path), task="classification")
