"""`adamtune report` (index.html + PNGs) and `adamtune export --top K / --format csv`, through the real
command line, on one small digits study run in-process on an SQLite file."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from html.parser import HTMLParser

import optuna
import pytest
from optuna.trial import TrialState
from PIL import Image

from _chromium import artifact, chromium
from adamtune.results import full_curve
from adamtune.results._report_data import PNG_SIZES
from adamtune.studies import load_study_file, run_study
from conftest import adamtune, write_study

pytestmark = pytest.mark.slow  # a study, the CLI and a browser

NAME = "reported"
# Attributes through which a page loads something (a link's href is followed only when clicked; checked too).
RESOURCE_ATTRS = {"src", "href", "srcset", "data", "poster", "action", "formaction", "background", "xlink:href"}
EXTERNAL = re.compile(r"^\s*(https?:|ftp:|wss?:)?//", re.IGNORECASE)


@pytest.fixture(scope="module")
def study_url(tmp_path_factory) -> str:
    """Six trials, 3 epochs: the baseline and two more complete, the rest pruned by the median pruner."""
    tmp = tmp_path_factory.mktemp("report")
    url = f"sqlite:///{tmp / 'report.db'}"
    pruner = {"type": "median", "n_startup_trials": 2, "n_warmup_steps": 1}
    spec = load_study_file(write_study(tmp, NAME, n_trials=6, epochs=3, pruner=pruner))
    study = run_study(spec, url, device="cpu", progress=False).study
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) >= 2 and TrialState.PRUNED in states, states
    return url


@pytest.fixture(scope="module")
def report(study_url, tmp_path_factory):
    """`adamtune report` run once: (the command's result, the output directory)."""
    out = tmp_path_factory.mktemp("out") / "report"
    return adamtune("report", NAME, "-o", str(out), "--storage", study_url), out


def load(url: str) -> optuna.Study:
    return optuna.load_study(study_name=NAME, storage=url)


def sampled(t: optuna.trial.FrozenTrial) -> dict:
    """The trial's sampled values by public name, straight from Optuna's params (1 - one_minus_beta2)."""
    return {k.removeprefix("one_minus_"): 1.0 - v if k.startswith("one_minus_") else v
            for k, v in t.params.items()}


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of <style> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


def test_report_writes_offline_html_and_pngs(study_url, report):
    result, out = report
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"wrote the report of {NAME!r} to {out}; open {out / 'index.html'}\n"
    expected = [out / "index.html"] + [out / f"{name}.png" for name in PNG_SIZES]
    assert result.stdout.split() == [str(p) for p in expected]
    assert sorted(out.iterdir()) == sorted(expected)

    for name, size in PNG_SIZES.items():
        with Image.open(out / f"{name}.png") as image:
            assert image.format == "PNG" and image.size == size, name
            colors = image.convert("RGB").getcolors(maxcolors=size[0] * size[1])
        assert len(colors) >= 50, f"{name}.png has only {len(colors)} colors: blank?"
        assert max(n for n, _ in colors) < 0.9 * size[0] * size[1], f"{name}.png is one color"

    page = (out / "index.html").read_text(encoding="utf-8")
    parser = Tags()
    parser.feed(page)
    loaded = [(tag, key, value) for tag, attrs in parser.tags for key, value in attrs.items()
              if key in RESOURCE_ATTRS and value and EXTERNAL.match(value)]
    assert loaded == [], "index.html must load nothing from the network"
    assert [a for t, a in parser.tags if t == "script" and "src" in a] == [], "every script is inline"
    assert [a for t, a in parser.tags if t == "link"] == [], "no stylesheets, icons or preloads"
    assert not any("url(" in s or "@import" in s for s in parser.styles)
    # plotly.js is inlined exactly once; its own text holds URLs (license comments, map-tile templates for
    # map traces this report never draws), which is why the checks above look at tags, not at text.
    assert page.count("* plotly.js v") == 1 and "https://" in page
    assert page.count('class="plotly-graph-div"') == len(PNG_SIZES)
    links = [a["href"] for t, a in parser.tags if t == "a"]
    assert links == [f"{name}.png" for name in PNG_SIZES]

    study = load(study_url)
    assert page.count('id="trial-') == len(study.trials)
    for t in study.trials:
        row = re.search(rf'<tr class="(\w+)" id="trial-{t.number}">(.*?)</tr>', page)
        assert row is not None, f"trial #{t.number} missing from the trial table"
        assert row.group(1) == t.state.name.lower()
        assert f"lr={t.params['lr']:.2g}" in row.group(2), "the configuration in words"
    pruned = next(t for t in study.trials if t.state == TrialState.PRUNED)
    assert html.escape(pruned.user_attrs["pruned_reason"]) in page
    assert f"best trial #{study.best_trial.number}".lower() in page.lower()


def test_report_opens_in_a_browser_without_network(report, tmp_path):
    result, out = report
    assert result.returncode == 0, result.stderr
    with chromium(tmp_path / "profile") as context:
        page = context.new_page()
        requests, errors = [], []
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((out / "index.html").as_uri(), wait_until="load")
        page.wait_for_selector("#chart-learning_curves .main-svg", timeout=20_000)
        assert page.locator(".plotly-graph-div .main-svg").count() >= len(PNG_SIZES)
        page.screenshot(path=artifact("report_index.png"))
    assert errors == []
    assert requests == [(out / "index.html").as_uri()], "the report fetched something besides itself"


def test_export_top_k_lists_the_best_trials_in_the_single_export_format(study_url, tmp_path):
    study = load(study_url)
    complete = sorted(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: t.value)
    result = adamtune("export", NAME, "--top", "2", "--storage", study_url)
    assert result.returncode == 0, result.stderr
    top = json.loads(result.stdout)
    assert [e["trial"] for e in top] == [t.number for t in complete[:2]]
    for exported, t in zip(top, complete[:2]):
        assert exported["value"] == t.value and exported["params"] == pytest.approx(sampled(t))
        assert exported["config"]["lr"] == t.params["lr"] and exported["config"]["seed"] == t.number
        curve = full_curve(t, "val_loss")
        best_epoch = exported["metrics"]["best_epoch"]
        assert exported["metrics"]["val_loss"] == curve["val_loss"][best_epoch] == min(curve["val_loss"])
    single = json.loads(adamtune("export", NAME, "--storage", study_url).stdout)
    assert top[0] == single and [e["value"] for e in top] == sorted(e["value"] for e in top)

    out = tmp_path / "top.json"
    more = adamtune("export", NAME, "--top", "50", "-o", str(out), "--storage", study_url)
    assert more.returncode == 0, more.stderr
    assert [e["trial"] for e in json.loads(out.read_text())] == [t.number for t in complete]
    assert f"note: study {NAME!r} has only {len(complete)} complete trials" in more.stderr
    assert f"wrote the {len(complete)} best trials of {NAME!r} to {out}" in more.stderr

    bad = adamtune("export", NAME, "--top", "0", "--storage", study_url)
    assert (bad.returncode, bad.stdout, bad.stderr) == (2, "", "adamtune: error: export: --top: must be >= 1, got 0\n")


def test_export_csv_is_the_whole_trial_table(study_url, tmp_path):
    study = load(study_url)
    out = tmp_path / "trials.csv"
    result = adamtune("export", NAME, "--format", "csv", "-o", str(out), "--storage", study_url)
    assert result.returncode == 0, result.stderr
    reader = csv.DictReader(io.StringIO(out.read_text()))
    header = reader.fieldnames
    assert header[:3] == ["number", "state", "value"] and header[-3:] == ["val_accuracy", "epochs", "duration"]
    assert "params_beta2" in header and "params_one_minus_beta2" not in header
    rows = list(reader)
    assert [int(r["number"]) for r in rows] == [t.number for t in study.trials]
    for row, t in zip(rows, study.trials):
        assert row["state"] == t.state.name
        assert float(row["value"]) == t.value
        values = sampled(t)
        for column in header[3:-3]:
            name = column.removeprefix("params_")
            if name not in values:
                assert row[column] == "", (t.number, column)
            elif isinstance(values[name], float):
                assert float(row[column]) == pytest.approx(values[name], rel=1e-9), (t.number, column)
            else:
                assert row[column] == str(values[name]), (t.number, column)
        curve = full_curve(t, "val_loss")
        expected_accuracy = "" if t.state != TrialState.COMPLETE else \
            str(curve["val_accuracy"][curve["val_loss"].index(min(curve["val_loss"]))])
        assert row["val_accuracy"] == expected_accuracy
        assert int(row["epochs"]) == len(t.user_attrs["curve"]["train_loss"]) == len(t.intermediate_values)
        assert float(row["duration"]) == pytest.approx(t.duration.total_seconds())
    assert {r["state"] for r in rows} == {"COMPLETE", "PRUNED"}

    top = adamtune("export", NAME, "--format", "csv", "--top", "2", "--storage", study_url)
    assert top.returncode == 0, top.stderr
    best = sorted(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: t.value)[:2]
    assert [int(r["number"]) for r in csv.DictReader(io.StringIO(top.stdout))] == [t.number for t in best]


def test_report_names_what_it_cannot_draw_and_refuses_an_empty_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    optuna.create_study(study_name="empty", storage=url)
    empty = adamtune("report", "empty", "-o", str(tmp_path / "empty"), "--storage", url)
    assert empty.returncode == 2
    assert empty.stderr == "adamtune: error: study 'empty' has no complete trial yet; nothing to report\n"
    assert not (tmp_path / "empty").exists()

    plain = optuna.create_study(study_name="plain", storage=url)  # not made by adamtune: no curves, no epochs
    plain.optimize(lambda t: (t.suggest_float("lr", 1e-4, 1e-1, log=True) - 1e-2) ** 2
                   + t.suggest_float("beta1", 0.8, 0.99), n_trials=4)
    result = adamtune("report", "plain", "-o", str(tmp_path / "plain"), "--storage", url)
    assert result.returncode == 0, result.stderr
    drawn = {p.name for p in (tmp_path / "plain").iterdir()}
    assert drawn == {"index.html"} | {f"{n}.png" for n in PNG_SIZES} - {"intermediate_values.png",
                                                                          "learning_curves.png"}
    page = (tmp_path / "plain" / "index.html").read_text()
    assert "Not drawn: no trial reported intermediate values." in page
    assert "Not drawn: trial #" in page and "has no per-epoch `curve` attribute" in page
