"""Bad data and models of the user's own, a built-in dataset absent offline, and entries that are not files
beside the study: exit code 2, one line naming the file and key, found before the store is touched (the SQLite
file is not even created)."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import optuna
import pytest
from PIL import Image

from bad_input import one_line_error, row_count
from conftest import REPO, adamtune, write_study
from own_data import corrupt, digit_features, folder, with_module, write_images

pytestmark = pytest.mark.slow  # runs the adamtune command or trains studies

FEATURES = {"search_space": ["adam", "batch", "mlp"], "exclude": []}


def arrays(tmp_path, **data):
    np.savez(tmp_path / "data.npz", **data)
    return {"dataset": {"type": "arrays", "path": "data.npz"}, **FEATURES}


def features(tmp_path, **changes):
    x, y = digit_features(200)
    return {**arrays(tmp_path, x=x, y=y), **changes}


def huge_npz(tmp_path):
    """An .npz whose header says x is 10^7 x 10^5 float32 (4 TB) and which holds no data at all."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**7, 10**5)}
    with zipfile.ZipFile(tmp_path / "data.npz", "w") as archive:
        with archive.open("x.npy", "w") as fh:
            np.lib.format.write_array_header_1_0(fh, header)
    return {"dataset": {"type": "arrays", "path": "data.npz"}, **FEATURES}


def pickled(tmp_path):
    np.savez(tmp_path / "data.npz", x=np.array([{"a": 1}, None], dtype=object), y=np.arange(2))
    return {"dataset": {"type": "arrays", "path": "data.npz"}, **FEATURES}


CASES = {
    "missing path": (lambda t: folder(t), "dataset.path: {tmp}/pets does not exist"),
    "empty folder": (lambda t: (t / "pets").mkdir() or folder(t), "is empty; put one sub-folder of images per class"),
    "class folder without images": (
        lambda t: write_images(t / "pets", {"cat": 3}) and (t / "pets" / "dog").mkdir() or folder(t),
        "dataset.path: class folder {tmp}/pets/dog holds no images"),
    "corrupt image": (corrupt, "dataset.path: {tmp}/pets/dog/bad.png is not a readable image (not an image format "
                               "PIL can read); fix or remove it, or set skip_bad_images: true"),
    "sizes differ without size": (
        lambda t: write_images(t / "pets" / "a", {"": 3}, size=(8, 8)) and write_images(
            t / "pets" / "b", {"": 3}, size=(9, 8)) and folder(t),
        "images differ in size: a/000.png is 8x8 but b/000.png is 9x8; give size: [height, width]"),
    "single class folder": (lambda t: write_images(t / "pets", {"cat": 9}) and folder(t),
                            "has a single class folder ('cat'); a classifier needs at least two"),
    "unknown dataset key": (lambda t: write_images(t / "pets", {"cat": 3, "dog": 3}) and folder(t, sizes=8),
                            "dataset.sizes: unknown key for image_folder data"),
    "x and y lengths differ": (lambda t: arrays(t, x=np.ones((20, 3)), y=np.arange(19) % 2),
                               "x has 20 samples but y has 19 labels"),
    "NaN target": (lambda t: arrays(t, x=np.ones((4, 3)), y=np.array([0, 1, np.nan, 1])),
                   "y[2] = nan is not a finite number; targets must be finite"),
    "negative label": (lambda t: arrays(t, x=np.ones((4, 3)), y=np.array([0, 1, -1, 1])),
                       "y[2] = -1 is negative; labels are 0..K-1"),
    "a single class": (lambda t: arrays(t, x=np.ones((4, 3)), y=np.zeros(4, int)),
                       "y holds a single class ('0'); a classifier needs at least two"),
    "NaN in features": (lambda t: arrays(t, x=np.where(np.arange(30).reshape(10, 3) == 10, np.nan, 1.0),
                                         y=np.arange(10) % 2), "x holds NaN or inf (first in sample 3)"),
    "npz without y": (lambda t: arrays(t, x=np.ones((4, 3))), "no array 'y'; it needs x (samples) and y"),
    "pickle-bearing npz": (pickled, "array 'x' holds Python objects, which load only by unpickling"),
    "data larger than memory (npz header)": (huge_npz, "dataset.path: the data would take 3725.3 GiB as tensors but "
                                                       "cpu has"),
    "data larger than memory (image size)": (
        lambda t: write_images(t / "pets", {"cat": 3, "dog": 3}) and folder(t, size=[200_000, 200_000]),
        "dataset.path: the data would take"),
    "data entry module missing": (lambda t: {"dataset": {"type": "python", "entry": "nosuch:load"}, **FEATURES},
                                  "dataset.entry: no module 'nosuch' in {tmp} or on sys.path"),
    "data entry attribute missing": (
        lambda t: with_module(t, dataset={"type": "python", "entry": "my_nets:nothing"}, **FEATURES),
        "dataset.entry: module 'my_nets' ({tmp}/my_nets.py) has no 'nothing'"),
    "data entry raises": (lambda t: with_module(t, dataset={"type": "python", "entry": "my_nets:load_fails"},
                                                **FEATURES),
                          "dataset.entry: my_nets:load_fails raised RuntimeError: disk on fire"),
    "data entry returns the wrong thing": (
        lambda t: with_module(t, dataset={"type": "python", "entry": "my_nets:load_list"}, **FEATURES),
        "my_nets:load_list returned list, not a mapping with x and y"),
    "model entry module missing": (lambda t: {"model": {"entry": "nosuch:build"}},
                                   "model.entry: no module 'nosuch' in {tmp} or on sys.path"),
    "model entry raises": (lambda t: with_module(t, model={"entry": "my_nets:raises"}),
                           "model.entry: my_nets:raises raised ValueError: no model for you (input_shape=(1, 8, 8), "
                           "num_classes=10"),
    "model entry returns the wrong thing": (lambda t: with_module(t, model={"entry": "my_nets:not_a_model"}),
                                            "model.entry: my_nets:not_a_model returned int, not a torch.nn.Module"),
    "model output shape": (lambda t: with_module(t, model={"entry": "my_nets:wrong_classes"}),
                           "model.entry: model returned (64, 7) logits for 10 classes"),
    "augmentation on feature vectors": (  # one line for the whole fragment, not flip_safe, then one run per parameter
        lambda t: features(t, search_space=["adam", "augmentation", "batch", "mlp"]),
        "own_bad.yaml: search_space: the data are feature vectors (D,) of shape (64,), which take no augmentation, "
        "but the fragment augmentation searches rotation, translate, hflip, random_crop, random_erasing; remove "
        "augmentation from search_space (and its parameters from exclude, if it lists any)\n"),
    "augmentation on feature vectors, a parameter overridden": (
        lambda t: features(t, search_space=["adam", "augmentation", "batch", "mlp"], params={"rotation": {"high": 5}}),
        "own_bad.yaml: search_space: the data are feature vectors (D,) of shape (64,), which take no augmentation, "
        "but the study's params search rotation and the fragment augmentation searches translate, hflip, "
        "random_crop, random_erasing; remove rotation from params and remove augmentation from search_space (and "
        "its parameters from exclude, if it lists any)\n"),
    "augmentation on signals": (
        lambda t: {**arrays(t, x=np.ones((40, 2, 16), np.float32), y=np.arange(40) % 2),
                   "search_space": ["adam", "augmentation", "batch", "mlp"]},
        "own_bad.yaml: search_space: the data are 1-D signals (C, L) of shape (2, 16), which take only translate (a "
        "shift along the length), but the fragment augmentation searches rotation, hflip, random_crop, "
        "random_erasing; add exclude: [rotation, hflip, random_crop, random_erasing]\n"),
    "built-in cnn on feature vectors": (lambda t: features(t, model="cnn", exclude=["depth"]),
                                        "model: cnn needs images (C, H, W), but one sample has shape (64,)"),
    "hflip on a folder not flip_safe": (
        lambda t: write_images(t / "pets", {"cat": 3, "dog": 3}) and {**folder(t), "exclude": []},
        "augmentation.yaml: params.hflip: image_folder pets is not marked flip_safe"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_data_or_model_exits_2_before_the_store_is_touched(tmp_path, case):
    make, expected = CASES[case]
    study = write_study(tmp_path, "own_bad", **make(tmp_path))
    result = adamtune("run", str(study), "--storage", f"sqlite:///{tmp_path / 'studies.db'}",
                      env={"ADAMTUNE_DATA": str(tmp_path / "cache")})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("adamtune: error: ") and ".yaml: " in result.stderr, result.stderr
    assert expected.format(tmp=tmp_path) in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "studies.db").exists()


OFFLINE = {"https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}  # no download, even online


@pytest.mark.parametrize("make,expected", [
    (None, "dataset: MNIST is not under"),
    (corrupt, "is not a readable image"),
], ids=["built-in dataset absent offline", "corrupt image"])
def test_nothing_is_written_to_either_store(tmp_path, own_store_url, make, expected):
    study = REPO / "studies" / "mnist_mlp.yaml" if make is None else write_study(tmp_path, "own_bad", **make(tmp_path))
    before = row_count(own_store_url)
    result = adamtune("run", str(study), "--storage", own_store_url,
                      env={"ADAMTUNE_DATA": str(tmp_path / "nothing"), **OFFLINE})
    assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and f"{study}: dataset" in result.stderr
    assert row_count(own_store_url) == before


def _hazard(make):
    """An image folder pets/{cat,dog} of good PNGs, plus what `make(pets)` adds."""
    def build(tmp_path, **mapping):
        write_images(tmp_path / "pets", {"cat": 6, "dog": 6})
        make(tmp_path / "pets")
        return folder(tmp_path, **mapping)
    return build


def _non_utf8(path: bytes) -> None:
    """A real PNG whose path holds bytes that are not UTF-8 (created through a bytes path)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(fh, format="PNG")


def _sparse(path, size: int) -> None:
    """A file of `size` bytes that takes no disk space (its content is never read)."""
    with open(path, "wb") as fh:
        fh.truncate(size)


# What an image folder may hold that is not a readable regular image file: each is one line naming the path
# (exit 2), or skipped and counted with skip_bad_images; the FIFO and /dev/zero were read forever before.
HAZARDS = {
    "symlink loop": (lambda p: os.symlink(p / "dog", p / "dog" / "again"),
                     "{tmp}/pets/dog/again is a link to a folder it is inside (a loop); remove the link"),
    "broken symlink": (lambda p: os.symlink(p / "nowhere.png", p / "dog" / "gone.png"),
                       "{tmp}/pets/dog/gone.png is a broken symbolic link (to {tmp}/pets/nowhere.png)"),
    "symlink to itself": (lambda p: os.symlink(p / "dog" / "self.png", p / "dog" / "self.png"),
                          "{tmp}/pets/dog/self.png is a symbolic link loop (to {tmp}/pets/dog/self.png)"),
    "FIFO named x.png": (lambda p: os.mkfifo(p / "dog" / "x.png"), "{tmp}/pets/dog/x.png is not a regular file "
                                                                    "(a FIFO)"),
    "symlink to /dev/zero": (lambda p: os.symlink("/dev/zero", p / "dog" / "zero.png"),
                             "{tmp}/pets/dog/zero.png is not a regular file (a character device)"),
    "file over the size bound": (lambda p: _sparse(p / "dog" / "big.png", 300 * 2**20),
                                 "{tmp}/pets/dog/big.png is 300 MiB; an image file may take at most 256 MiB"),
    "non-UTF-8 file name": (lambda p: _non_utf8(os.fsencode(p / "dog") + b"/caf\xe9.png"),
                            "{tmp}/pets/dog/caf\\xe9.png has a name that is not valid UTF-8; rename it"),
    "non-UTF-8 folder name": (lambda p: _non_utf8(os.fsencode(p / "dog") + b"/sub\xff/a.png"),
                              "{tmp}/pets/dog/sub\\xff is a folder whose name is not valid UTF-8; rename it"),
}


@pytest.mark.parametrize("case", HAZARDS, ids=list(HAZARDS))
def test_a_folder_entry_that_is_not_a_readable_image_file_is_one_line_or_skipped_and_counted(tmp_path, case):
    make, expected = HAZARDS[case]
    study = write_study(tmp_path, "own_hazard", **_hazard(make)(tmp_path))
    env = {"ADAMTUNE_DATA": str(tmp_path / "cache")}
    result = adamtune("run", str(study), "--storage", f"sqlite:///{tmp_path / 'studies.db'}", env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"adamtune: error: {study}: dataset.path: {expected.format(tmp=tmp_path)}; fix or " \
                            "remove it, or set skip_bad_images: true to skip such files\n"
    assert not (tmp_path / "studies.db").exists()
    skipping = write_study(tmp_path, "own_hazard", **folder(tmp_path, skip_bad_images=True))
    checked = adamtune("check", str(skipping), env=env, timeout=120)
    assert checked.returncode == 0, checked.stderr
    assert "1 unreadable images skipped" in checked.stdout and "12 train/validation/test" not in checked.stdout


def test_a_class_folder_whose_name_is_not_utf8_is_one_line_in_check_and_run(tmp_path):
    write_images(tmp_path / "pets", {"cat": 6, "dog": 6})
    _non_utf8(os.fsencode(tmp_path / "pets") + b"/ch\xe2t/a.png")
    study = write_study(tmp_path, "own_hazard", **folder(tmp_path, skip_bad_images=True))
    expected = (f"adamtune: error: {study}: dataset.path: class folder {tmp_path}/pets/ch\\xe2t has a name that is "
                "not valid UTF-8 (class names are stored as text); rename it\n")
    for command in (["check"], ["run", "--storage", f"sqlite:///{tmp_path / 'studies.db'}"]):
        result = adamtune(command[0], str(study), *command[1:], env={"ADAMTUNE_DATA": str(tmp_path / "cache")})
        assert (result.returncode, result.stderr) == (2, expected)
    assert not (tmp_path / "studies.db").exists()


@pytest.mark.parametrize("command", ["check", "run"])
def test_a_uint64_label_of_2_to_the_63_is_one_line_in_check_and_run(tmp_path, command):
    """It wrapped to a negative int64: `check` said "0 classes" and the trial failed with a traceback."""
    x, y = digit_features(200)
    y = y.astype(np.uint64)
    y[4] = 2**63
    study = write_study(tmp_path, "own_labels", **arrays(tmp_path, x=x, y=y))
    store = ["--storage", f"sqlite:///{tmp_path / 'studies.db'}"] if command == "run" else []
    result = adamtune(command, str(study), *store)
    assert (result.returncode, result.stderr) == (2, f"adamtune: error: {study}: dataset.path: {tmp_path}/data.npz: "
                                                     "y[4] = 9223372036854775808 would make more classes than the "
                                                     "200 samples; labels are 0..K-1, K at most the number of "
                                                     "samples\n")
    assert not (tmp_path / "studies.db").exists()


OUTSIDE = "from torch import nn\n\ndef build(input_shape, num_classes, params):\n" \
          "    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))\n"


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize("changes,key,needle", [
    ({"model": {"entry": "os:system", "command": "touch pwned"}}, "model.entry",
     "module 'os' is not a file beside {study} (in {tmp}): a study or export runs only its own modules, not "
     "standard-library or installed ones; pass --trust-entries to allow it"),
    ({"dataset": {"type": "python", "entry": "subprocess:run", "args": ["touch", "pwned"]}}, "dataset.entry",
     "module 'subprocess' is not a file beside {study}"),
    ({"model": {"entry": "outside_nets:build"}}, "model.entry", "module 'outside_nets' is not a file beside"),
    ({"model": {"entry": "json:loads"}}, "model.entry", "{tmp}/json.py has the name of the module imported from"),
], ids=["stdlib model", "stdlib data", "installed model", "shadowing file"])
def test_entries_resolve_only_to_files_beside_the_study_unless_trusted(tmp_path, command, changes, key, needle):
    (tmp_path / "json.py").write_text("raise SystemExit('the study ran json.py')\n")
    lib = tmp_path / "lib"  # a module on sys.path, as an installed one is
    lib.mkdir()
    (lib / "outside_nets.py").write_text(OUTSIDE)
    study = write_study(tmp_path, "entries", search_space=["adam"], params={}, exclude=[], **changes)
    env = {"PYTHONPATH": str(lib)}
    args = [command, str(study)] + (["--storage", f"sqlite:///{tmp_path / 's.db'}"] if command == "run" else [])
    one_line_error(adamtune(*args, cwd=tmp_path, env=env), 2,
                   f"{study}: {key}: " + needle.format(study=study, tmp=tmp_path))
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "s.db").exists()
    if "outside_nets" in str(changes):  # the person running it may trust the file: the flag, or the environment
        assert adamtune("check", str(study), "--trust-entries", env=env).returncode == 0
        assert adamtune("check", str(study), env={**env, "ADAMTUNE_TRUST_ENTRIES": "1"}).returncode == 0


def test_train_resolves_an_exports_entries_only_beside_it(tmp_path):
    (tmp_path / "nets.py").write_text(OUTSIDE)
    study = write_study(tmp_path, "exported", model={"entry": "nets:build"}, epochs=1, n_trials=1,
                        search_space=["adam"], params={}, exclude=[])
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert adamtune("run", str(study), "--storage", url).returncode == 0
    exported = json.loads(adamtune("export", "exported", "--storage", url).stdout)
    site_packages = str(Path(optuna.__file__).parents[1])  # an export's folder can name any folder
    for model, needle in [({"entry": "os:system"}, "module 'os' is not a file beside"),
                          ({"entry": "optuna.cli:main", "folder": site_packages},
                           "is an installed or standard-library module")]:
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**exported, "model": {**exported["model"], **model},
                                   "config": {**exported["config"], "model": model["entry"]}}))
        one_line_error(adamtune("train", str(bad), "--out", str(tmp_path / "m")), 2, f"{bad}: model.entry: ", needle,
                       "--trust-entries")
    assert not (tmp_path / "m").exists()
