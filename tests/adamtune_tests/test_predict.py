"""A model `adamtune train` saved, used without adamtune's internals: model.json beside the weights,
`adamtune predict` on image files, folders and .npz files, and `adamtune.load_model`, which takes inputs in
the data's own units and applies the training's preprocessing itself."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import adamtune
from adamtune.data import load_dataset
from adamtune.errors import InputError
from conftest import adamtune as adamtune_cli
from conftest import write_study
from own_data import write_digit_images, write_module

pytestmark = pytest.mark.slow  # trains studies and runs the adamtune command


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    """The folder `adamtune train --out` wrote for a small digits study's best trial."""
    folder = tmp_path_factory.mktemp("digits_model")
    url = f"sqlite:///{folder / 'saved.db'}"
    study_file = write_study(folder, "saved", n_trials=2, epochs=3)
    assert adamtune_cli("run", str(study_file), "--storage", url).returncode == 0
    assert adamtune_cli("export", "saved", "-o", str(folder / "best.json"), "--storage", url).returncode == 0
    trained = adamtune_cli("train", str(folder / "best.json"), "--out", str(folder / "model"))
    assert trained.returncode == 0, trained.stderr
    return folder / "model"


def test_model_json_says_what_using_the_model_needs(digits_model):
    card = json.loads((digits_model / "model.json").read_text())
    data = load_dataset("digits")
    assert card["format"] == 1 and card["task"] == "classification"
    assert card["classes"] == [str(i) for i in range(10)]
    assert card["input"] == {"kind": "image", "shape": [1, 8, 8], "scale": 16.0, "mean": list(data.mean),
                             "std": list(data.std), "resize": False}
    assert card["model"] == {"name": "mlp"} and card["weights"] == "model.pt"
    assert card["config"] == json.loads((digits_model / "config.json").read_text())
    best = json.loads((digits_model.parent / "best.json").read_text())
    assert card["trained_on"] == {"study": "saved", "trial": best["trial"], "data": "digits", "fingerprint": None}


def test_the_loaded_model_takes_raw_inputs_and_scores_what_train_measured(digits_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # from anywhere
    model = adamtune.load_model(digits_model)
    assert isinstance(model, torch.nn.Module) and not model.training and model.input_shape == (1, 8, 8)
    test = load_dataset("digits").test  # uint8 0..16, as scikit-learn's digits hold them
    probabilities = model.predict(test.images)
    assert probabilities.shape == (len(test), 10) and torch.allclose(probabilities.sum(1), torch.ones(len(test)))
    labels = model.answers(probabilities)
    accuracy = sum(int(label) == y for label, y in zip(labels, test.labels.tolist())) / len(test)
    assert accuracy == json.loads((digits_model / "metrics.json").read_text())["test_accuracy"], \
        "the module preprocesses as training evaluated: the same test accuracy, exactly"
    first = model(test.images[:3])
    assert first.shape == (3, 10)
    assert torch.allclose(model(test.images[0]), first[:1], atol=1e-6), "one sample"
    assert torch.equal(model(test.images[:3, 0].numpy()), first), "grey images without their channel, numpy"
    with pytest.raises(InputError, match=r"has shape \(2, 9, 9\); the model takes a batch \(N, 1, 8, 8\)"):
        model(torch.zeros(2, 9, 9, dtype=torch.uint8))


def test_predict_prints_one_line_per_input_or_writes_a_csv(digits_model, tmp_path):
    test = load_dataset("digits").test
    np.savez(tmp_path / "samples.npz", x=test.images[:4, 0].numpy())
    (tmp_path / "pngs").mkdir()
    for i in range(2):  # 8-bit files of the digits' 0..16 levels, as examples/image_folder writes them
        Image.fromarray(np.uint8(np.round(test.images[i, 0].numpy() * (255 / 16))), mode="L").save(
            tmp_path / "pngs" / f"{i}.png")
    inputs = [str(tmp_path / "samples.npz"), str(tmp_path / "pngs")]
    printed = adamtune_cli("predict", str(digits_model), *inputs)
    assert printed.returncode == 0, printed.stderr
    rows = [line.split("\t") for line in printed.stdout.splitlines()]
    names = [f"{tmp_path / 'samples.npz'}[{i}]" for i in range(4)] + [str(tmp_path / "pngs" / f"{i}.png")
                                                                      for i in range(2)]
    assert [row[0] for row in rows] == names
    model = adamtune.load_model(digits_model)
    expected = model.answers(model.predict(test.images[:4]))
    assert [row[1] for row in rows[:4]] == expected and [row[1] for row in rows[4:]] == expected[:2]
    for png, array in zip(rows[4:], rows[:2]):  # 8 bits back to the digits' 0..16: the same input but rounding
        assert abs(float(png[2]) - float(array[2])) < 0.01, (png, array)
    assert all(0 < float(row[2]) <= 1 for row in rows)

    written = adamtune_cli("predict", str(digits_model), *inputs, "--out", str(tmp_path / "predictions.csv"))
    assert written.returncode == 0 and written.stdout == ""
    assert written.stderr == f"wrote 6 predictions to {tmp_path / 'predictions.csv'}\n"
    with open(tmp_path / "predictions.csv", newline="") as file:
        table = list(csv.reader(file))
    assert table[0] == ["input", "label", "probability"] and [r[:2] for r in table[1:]] == [r[:2] for r in rows]


def _missing(tmp_path, model):
    return [str(tmp_path / "nowhere"), str(tmp_path / "x.npz")]


def _untrained(tmp_path, model):
    (tmp_path / "weights").mkdir()
    shutil.copy(model / "model.pt", tmp_path / "weights")
    return [str(tmp_path / "weights"), str(tmp_path / "x.npz")]


def _npz(x):
    def make(tmp_path, model):
        np.savez(tmp_path / "x.npz", x=x)
        return [str(model), str(tmp_path / "x.npz")]
    return make


def _file(name: str, write):
    def make(tmp_path, model):
        write(tmp_path / name)
        return [str(model), str(tmp_path / name)]
    return make


BAD = {
    "missing model folder": (_missing, "{tmp}/nowhere: MODEL_DIR: does not exist; give the folder `adamtune train "
                                       "--out` wrote"),
    "folder without model.json": (_untrained, "{tmp}/weights/model.json: <file>: missing: not a folder `adamtune "
                                              "train --out` wrote"),
    "missing input": (lambda t, m: [str(m), str(t / "gone.png")], "predict: {tmp}/gone.png: does not exist"),
    "features for an image model": (_npz(np.ones((5, 64), np.float32)),
                                    "predict: {tmp}/x.npz: x: has shape (5, 64) (float32) but the model takes uint8 "
                                    "images (C, H, W) of shape (1, 8, 8)"),
    "images of another size": (_npz(np.ones((5, 9, 9), np.uint8)),
                               "predict: {tmp}/x.npz: x: has shape (5, 9, 9) (uint8) but the model takes uint8 images"),
    "npz without x": (lambda t, m: np.savez(t / "x.npz", y=np.ones(3)) or [str(m), str(t / "x.npz")],
                      "predict: {tmp}/x.npz: holds no array 'x' (it holds y)"),
    "unreadable image": (_file("bad.png", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n not a png")),
                         "predict: {tmp}/bad.png: is not a readable image (not an image format PIL can read)"),
    "image of another size": (_file("big.png", lambda p: Image.new("L", (9, 8)).save(p)),
                              "predict: {tmp}/big.png: is 8x9 pixels but the model takes 8x8 images: resize it"),
    "not an input": (_file("notes.txt", lambda p: p.write_text("hi")),
                     "predict: {tmp}/notes.txt: is neither an image file"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_a_bad_model_folder_or_input_is_one_line_and_exit_2(digits_model, tmp_path, case):
    make, expected = BAD[case]
    result = adamtune_cli("predict", *make(tmp_path, digits_model), "--out", str(tmp_path / "p.csv"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("adamtune: error: " + expected.format(tmp=tmp_path)), result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert not (tmp_path / "p.csv").exists()


OWN_MODEL = {"model": {"entry": "my_nets:build", "hidden": 8}, "search_space": ["adam", "batch"], "exclude": [],
             "params": {"batch_size": {"choices": [32, 64]},
                        "units": {"type": "categorical", "choices": [16, 32], "default": 16}}}


def test_a_model_of_your_own_on_an_image_folder_predicts_image_files_as_training_read_them(tmp_path):
    """Images resized by the study (`size:`) and a network of the user's own module: `predict` on the test
    folder's files, run from elsewhere, scores exactly the test accuracy `train` measured on them."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    write_digit_images(project / "train", per_class=20)
    write_digit_images(project / "test", per_class=5)
    write_module(project)
    elsewhere.mkdir()
    dataset = {"type": "image_folder", "path": "train", "test": "test", "size": [10, 10]}
    study = write_study(project, "own_saved", dataset=dataset, n_trials=2, epochs=3, **OWN_MODEL)
    env, url = {"ADAMTUNE_DATA": str(tmp_path / "cache")}, f"sqlite:///{tmp_path / 'own.db'}"
    assert adamtune_cli("run", str(study), "--storage", url, env=env).returncode == 0
    assert adamtune_cli("export", "own_saved", "-o", str(tmp_path / "best.json"), "--storage", url).returncode == 0
    trained = adamtune_cli("train", str(tmp_path / "best.json"), "--out", "m", cwd=elsewhere, env=env)
    assert trained.returncode == 0, trained.stderr
    best = json.loads((tmp_path / "best.json").read_text())
    card = json.loads((elsewhere / "m" / "model.json").read_text())
    assert card["model"] == {"entry": "my_nets:build", "kwargs": {"hidden": 8}, "folder": str(project),
                             "params": best["model"]["params"]}
    assert card["input"]["shape"] == [1, 10, 10] and card["input"]["resize"] is True

    predicted = adamtune_cli("predict", "m", str(project / "test"), cwd=elsewhere)
    assert predicted.returncode == 0, predicted.stderr
    rows = [line.split("\t") for line in predicted.stdout.splitlines()]
    assert len(rows) == 50
    accuracy = sum(row[1] == row[0].split("/")[-2] for row in rows) / len(rows)  # the class folder is the truth
    assert accuracy == json.loads((elsewhere / "m" / "metrics.json").read_text())["test_accuracy"]


def _tasks_data(tmp_path, task: str):
    """Features whose targets follow them: regression values far from 0 (standardising them matters), or three
    0/1 labels; a test part given, and the same x_test alone in inputs.npz."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5)).astype(np.float32)
    if task == "regression":
        y = (1000 + 50 * x[:, :2].sum(1, keepdims=True)).astype(np.float32)
    else:
        y = (x[:, :3] > 0).astype(np.int64)
    np.savez(tmp_path / "data.npz", x=x[:300], y=y[:300], x_test=x[300:], y_test=y[300:],
             classes=np.array(["value"] if task == "regression" else ["a", "b", "c"]))
    np.savez(tmp_path / "inputs.npz", x=x[300:])
    return y[300:]


@pytest.mark.parametrize("task,metric", [("regression", "test_rmse"), ("multilabel", "test_subset_accuracy")])
def test_a_regression_or_multilabel_model_predicts_in_the_targets_units_and_names(tmp_path, task, metric):
    """A regression model's outputs are standardised values: `predict` gives them back in the targets' units; a
    multi-label model's labels are those at probability 0.5 or more. Scored as `train` scored them, exactly."""
    targets = _tasks_data(tmp_path, task)
    study = write_study(tmp_path, f"{task}_saved", dataset={"type": "arrays", "path": "data.npz"}, task=task,
                        objective="val_loss", search_space=["adam", "batch", "mlp"], exclude=[], n_trials=2, epochs=5)
    url = f"sqlite:///{tmp_path / 't.db'}"
    assert adamtune_cli("run", str(study), "--storage", url).returncode == 0
    assert adamtune_cli("export", f"{task}_saved", "-o", str(tmp_path / "best.json"), "--storage", url).returncode == 0
    trained = adamtune_cli("train", str(tmp_path / "best.json"), "--out", str(tmp_path / "m"))
    assert trained.returncode == 0, trained.stderr
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    assert card["task"] == task and card["classes"] == (["value"] if task == "regression" else ["a", "b", "c"])
    assert ("targets" in card) == (task == "regression")

    written = adamtune_cli("predict", str(tmp_path / "m"), str(tmp_path / "inputs.npz"), "--out",
                           str(tmp_path / "p.csv"))
    assert written.returncode == 0, written.stderr
    with open(tmp_path / "p.csv", newline="") as file:
        header, *rows = list(csv.reader(file))
    measured = json.loads((tmp_path / "m" / "metrics.json").read_text())[metric]
    if task == "regression":
        assert header == ["input", "value"]
        values = np.array([float(row[1]) for row in rows])
        assert abs(values.mean() - 1000) < 100, "in the targets' units, not standardised"
        assert np.sqrt(np.mean((values - targets[:, 0]) ** 2)) == pytest.approx(measured, rel=1e-4)
    else:
        assert header == ["input", "labels", "a", "b", "c"]
        probabilities = np.array([[float(v) for v in row[2:]] for row in rows])
        chosen = probabilities >= 0.5
        assert [row[1] for row in rows] == ["|".join(n for n, on in zip("abc", r) if on) for r in chosen]
        assert np.mean((chosen == targets.astype(bool)).all(1)) == pytest.approx(measured, abs=1e-9)
