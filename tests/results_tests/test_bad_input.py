"""Outputs that cannot be written (export -o, report -o, train --out): one line and the documented exit code,
found before any work, and no half-written file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bad_input import one_line_error
from conftest import adamtune, write_study
from small_filesystems import fill, tmpfs

pytestmark = pytest.mark.slow  # one CLI process per case


def test_outputs_that_cannot_be_written_fail_before_any_work(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert adamtune("run", str(write_study(tmp_path, "out", n_trials=1, epochs=1)), "--storage", url).returncode == 0
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    one_line_error(adamtune("export", "out", "-o", str(tmp_path / "missing" / "best.json"), "--storage", url), 2,
                   "export -o", "does not exist")
    one_line_error(adamtune("report", "out", "-o", str(a_file), "--storage", url), 2, "report -o", "is a file")
    exported = tmp_path / "best.json"
    assert adamtune("export", "out", "-o", str(exported), "--storage", url).returncode == 0
    one_line_error(adamtune("train", str(exported), "--out", str(a_file)), 2, "train --out", "is a file")


def test_outputs_on_a_read_only_or_full_file_system_are_one_line(tmp_path):
    """A read-only mount and /proc are refused before any work (root passes chmod, so a real read-only tmpfs);
    a disk that is full when the file is written is one line too (exit 1), and no half-written export stays."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert adamtune("run", str(write_study(tmp_path, "ro", n_trials=1, epochs=1)), "--storage", url).returncode == 0
    exported = tmp_path / "best.json"
    assert adamtune("export", "ro", "-o", str(exported), "--storage", url).returncode == 0
    with tmpfs(tmp_path / "ro_mount", read_only=True) as ro:
        for args, flag, target in [
            (["export", "ro", "-o"], "export -o", ro / "best.json"),
            (["export", "ro", "--format", "csv", "-o"], "export -o", ro / "trials.csv"),
            (["export", "ro", "-o"], "export -o", Path("/proc/best.json")),
            (["report", "ro", "-o"], "report -o", ro / "report"),
            (["train", str(exported), "--out"], "train --out", ro / "model"),
            (["train", str(exported), "--out"], "train --out", Path("/proc/model")),
        ]:
            result = adamtune(*args, str(target), *(["--storage", url] if args[0] != "train" else []))
            one_line_error(result, 2, f"{flag}: {target}: cannot be ")
            assert "training" not in result.stderr, "refused before training"
    with tmpfs(tmp_path / "full_mount", size="1m") as full:
        fill(full)
        for args, flag, target in [
            (["export", "ro", "-o"], "export -o", full / "best.json"),
            (["export", "ro", "--format", "csv", "-o"], "export -o", full / "trials.csv"),
            (["train", str(exported), "--out"], "train --out", full / "model"),
        ]:
            result = adamtune(*args, str(target), *(["--storage", url] if args[0] != "train" else []))
            assert result.returncode == 1, result.stderr
            assert result.stderr.splitlines()[-1].startswith(f"adamtune: error: {flag} {target}: writing failed: "
                                                             "No space left on device"), result.stderr
            assert "Traceback" not in result.stderr
            assert not target.is_file(), "no half-written export is left"


def test_a_path_with_a_name_longer_than_the_file_system_allows_is_one_line(tmp_path):
    """Names are bounded in bytes (255 on most file systems): 100 CJK characters are 300 bytes."""
    long = "字" * 100
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert adamtune("run", str(write_study(tmp_path, "long", n_trials=1, epochs=1)), "--storage", url).returncode == 0
    exported = tmp_path / "best.json"
    assert adamtune("export", "long", "-o", str(exported), "--storage", url).returncode == 0
    for args, flag, target in [(["export", "long", "--storage", url, "-o"], "export -o", tmp_path / f"{long}.json"),
                               (["report", "long", "--storage", url, "-o"], "report -o", tmp_path / long),
                               (["train", str(exported), "--out"], "train --out", tmp_path / long / "model")]:
        one_line_error(adamtune(*args, str(target)), 2, f"{flag}: {target}: cannot be used: File name too long")
    study = write_study(tmp_path, "long_data", dataset={"type": "arrays", "path": f"{long}.npz"})
    one_line_error(adamtune("check", str(study)), 2,
                   f"{study}: dataset.path: {tmp_path / long}.npz: File name too long")
