"""`run --workers K` on a machine with several GPUs: one GPU per worker in turn, each child seeing only its own
(plain process arithmetic: tested without a GPU, through the real command where it reaches the children)."""

from __future__ import annotations

import pytest

from adamtune.studies import parse_devices
from adamtune.studies._errors import StudyError
from adamtune.studies._placement import place, placement_line, visible_gpus
from conftest import adamtune, write_study


def test_workers_take_the_gpus_in_turn():
    assert place(5, ["0", "1"]) == ["0", "1", "0", "1", "0"]
    assert place(2, ["3", "1", "2"]) == ["3", "1"]
    assert place(3, []) == [None, None, None], "no GPU: each worker inherits this process's view (the CPU)"
    assert placement_line(place(3, ["0", "1"])) == "worker 1 on GPU 0, worker 2 on GPU 1, worker 3 on GPU 0"
    assert placement_line(place(2, [])) == "no GPU: every worker trains on the CPU"


def test_the_visible_gpus_are_this_processs_own(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert visible_gpus() == ["2", "3"], "children get the physical ids this process was given"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert visible_gpus() == []


@pytest.mark.parametrize("text", ["", "0,,1", "a", "0,0", "-1", "1.5"])
def test_bad_devices_are_one_line(text):
    with pytest.raises(StudyError) as info:
        parse_devices(text, "study.yaml")
    assert str(info.value).startswith("study.yaml: --devices: GPU indices separated by commas, each once")


def test_the_command_says_the_placement_and_refuses_devices_for_one_worker(tmp_path):
    path = write_study(tmp_path, "placed", n_trials=2, epochs=1, pack=1)
    url = f"sqlite:///{tmp_path / 'p.db'}"
    # The children see GPU 0 and GPU 1 (none exists here: each then trains on the CPU, as torch finds no GPU).
    ran = adamtune("run", str(path), "--storage", url, "--workers", "2", "--devices", "0,1", "--n-trials", "2")
    assert ran.returncode == 0, ran.stderr
    assert "starting 2 workers in" in ran.stderr and ": worker 1 on GPU 0, worker 2 on GPU 1" in ran.stderr
    on_cpu = adamtune("run", str(path), "--storage", url, "--workers", "2", "--devices", "0,1", "--device", "cpu",
                      "--n-trials", "3")
    assert on_cpu.returncode == 0 and "no GPU: every worker trains on the CPU" in on_cpu.stderr, on_cpu.stderr
    one = adamtune("run", str(path), "--storage", url, "--devices", "0")
    assert one.returncode == 2 and one.stderr.strip().splitlines() == [
        f"adamtune: error: {path}: --devices: places two or more --workers; one worker takes a GPU with "
        "--device cuda:N"]
