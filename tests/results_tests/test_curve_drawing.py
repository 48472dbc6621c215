"""A trial's learning-curve PNG is drawn by the dashboard's artifact store from the stored curve, once, the
first time someone opens it; the worker that ran the trial draws and uploads none."""

from __future__ import annotations

import optuna
import pytest
from optuna.artifacts.exceptions import ArtifactNotFound
from PIL import Image

from adamtune.results import CurveDrawingStore, artifact_store
from adamtune.studies import load_study_file, run_study
from conftest import write_study


def pngs(folder) -> list:
    return [path for path in folder.iterdir() if path.read_bytes()[:4] == b"\x89PNG"]


def test_a_plain_workers_trial_curve_is_drawn_when_opened_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    art = tmp_path / "art"
    run_study(load_study_file(write_study(tmp_path, "curves", n_trials=3, epochs=3)), url, progress=False,
              artifacts=str(art))
    files = artifact_store(art)
    folder = art / "artifact-store"
    assert pngs(folder) == [], "the worker drew no picture"
    study = optuna.load_study(study_name="curves", storage=url)
    drawing = CurveDrawingStore(files, study._storage)
    for trial in study.trials:
        metas = [m for m in optuna.artifacts.get_all_artifact_meta(trial, storage=study._storage)
                 if m.mimetype == "image/png"]
        assert [m.filename for m in metas] == [f"trial-{trial.number}-curve.png"]
        with drawing.open_reader(metas[0].artifact_id) as reader:
            with Image.open(reader) as image:
                assert image.size == (880, 240)  # loss, accuracy and learning rate side by side
                assert len(image.getcolors(1 << 16)) > 20, "a blank picture"
        drawn = folder / metas[0].artifact_id
        first = drawn.stat().st_mtime_ns
        with drawing.open_reader(metas[0].artifact_id) as again:
            assert again.read() == drawn.read_bytes()
        assert drawn.stat().st_mtime_ns == first, "opened again, the picture is read, not drawn again"
    assert len(pngs(folder)) == len(study.trials)
    with pytest.raises(ArtifactNotFound):
        drawing.open_reader("0123abcd-1-1")  # names no curve of this store's trials


def test_a_curve_without_accuracy_shows_its_objectives_metric_in_the_middle_panel():
    """A regression trial's curve has no accuracy (issue 22): the middle panel shows its objective's metric."""
    import io

    from adamtune.results._artifacts import curve_metric, curve_png

    regression = {"train_loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.6, 0.5], "val_rmse": [60.0, 52.0, 50.0],
                  "lr": [1e-3] * 3, "seconds": [0.1] * 3}
    assert curve_metric(regression) == "val_rmse"
    assert curve_metric({**regression, "val_accuracy": [None] * 3}) == "val_rmse"
    assert curve_metric({"val_loss": [1.0], "val_accuracy": [0.5], "val_macro_f1": [0.4]}) == "val_accuracy"
    assert curve_metric({"val_loss": [1.0], "train_loss": [1.0]}) is None
    for curve in (regression, {k: v for k, v in regression.items() if k != "val_rmse"}):
        with Image.open(io.BytesIO(curve_png(curve, "trial 0"))) as image:
            middle = image.crop((330, 40, 570, 190)).convert("RGB")
            green = sum(count for count, (r, g, b) in middle.getcolors(1 << 16) if g > 100 and r < 100 and b < 100)
            assert (green > 0) == ("val_rmse" in curve), "the metric's line is drawn, and only when there is one"
