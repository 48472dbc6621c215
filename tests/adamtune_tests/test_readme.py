"""README as a new user reads it, word for word: what it shows is what ships, what it tells to install holds
what it tells to run, and its Python example runs where nothing else ran before."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib

import pytest

from _chromium import CHROMIUM
from conftest import REPO

README = (REPO / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_the_study_readme_shows_is_the_shipped_quickstart_study_word_for_word():
    shown = [block for block in blocks("yaml") if "\nname: digits_mlp " in block]
    assert shown == [(REPO / "studies" / "digits_mlp.yaml").read_text()]


def test_readme_says_how_to_install_what_its_test_commands_run():
    """`pip install -e .` gives no pytest, ruff or mypy: README names the extras that hold them, and where the
    browser tests find their browser."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    tests = README[README.index("## Tests"):README.index("## Benchmarks")]
    installs = re.findall(r"pip install -e '\.\[([a-z,]+)\]'", tests)
    installed = {name for line in installs for name in line.split(",")}
    for tool in ("pytest", "playwright", "ruff", "mypy"):
        holding = [extra for extra, packages in extras.items() if any(p.startswith(tool) for p in packages)]
        assert holding and set(holding) & installed, f"README's Tests install no extra holding {tool}"
        assert tool in tests.split("then")[0], f"the install line says what it brings: {tool}"
    assert CHROMIUM in tests and "apt-get install chromium" in tests


def test_readme_says_how_to_install_cpu_only_torch():
    install = README[README.index("## Install"):README.index("## Quickstart")]
    cpu = "pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu"
    assert cpu in install and install.index(cpu) < install.rindex("pip install -e .")


@pytest.mark.slow  # runs README's study and trains its best trial
def test_readmes_python_example_runs_in_a_fresh_folder(tmp_path):
    """README's Python API block, as written, in a folder holding only the study file (no best.json left by
    the quickstart): it exports to a file, trains the exported mapping and loads the model."""
    [example] = [block for block in blocks("python") if "adamtune.run(" in block]
    (tmp_path / "studies").mkdir()
    shutil.copy(REPO / "studies" / "digits_mlp.yaml", tmp_path / "studies")
    check = ("\nimport json, torch\n"
             "assert json.load(open('best.json')) == best and baseline['trial'] == 0\n"
             "assert metrics['test_accuracy'] > 0.9 and isinstance(model, torch.nn.Module)\n"
             "assert model(torch.zeros(8, 8, dtype=torch.uint8)).shape == (1, 10)\n")
    ran = subprocess.run([sys.executable, "-c", example + check], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert ran.returncode == 0, ran.stderr
