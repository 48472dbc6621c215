"""What `adamtune train` saves beside the weights so the model is used without the study, the store or the data:
model.json (the task, class names, the input's shape and units, the normalisation statistics, and what rebuilds
the network), and both read back as one `Predictor` that applies the training's preprocessing itself.

model.json is versioned (`format`); `task` says how the outputs are read: classification (class probabilities),
regression (values, the targets' standardisation undone with `targets`), multilabel (label probabilities).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adamtune.data import KIND_SHAPES, TASKS, DataSource
from adamtune.errors import InputError
from adamtune.training import BUILTIN_MODELS, ConfigError, ModelSource, TrainConfig

from ._spec import check_entries
from ._versions import versions

if TYPE_CHECKING:
    from adamtune.data import Dataset, InputSpec
    from adamtune.training import Predictor

MODEL_FILE = "model.json"
WEIGHTS_FILE = "model.pt"  # the network's state_dict, loaded with weights_only=True
FORMAT = 1


def model_card(exported: dict[str, Any], config: TrainConfig, data: Dataset, data_source: DataSource | None,
               model_source: ModelSource | None, params: dict[str, Any]) -> dict[str, Any]:
    """model.json: what using the trained model needs. `classes` names the outputs (classes, regression targets
    or labels); `input` is one sample as the training data held it (raw units: `scale` is the value meaning
    white, 255 for 8-bit images, 16 for scikit-learn's digits, 1 for numbers) and the statistics it is
    normalised with after dividing by `scale`; `targets` (regression) the training targets' mean and std the
    network's outputs are standardised with; `model` rebuilds the network (a built-in from `config`, the user's
    entry from its folder, keyword arguments and the values its builder got)."""
    model: dict[str, Any] = {"name": config.model}
    if model_source is not None:
        model = {"entry": model_source.entry, "kwargs": dict(model_source.kwargs), "folder": model_source.folder,
                 "params": dict(params)}
    card: dict[str, Any] = {
        "format": FORMAT,
        "task": data.task,
        "classes": list(data.facts.classes),
        "input": {"kind": data.kind, "shape": list(data.shape), "scale": data.scale, "mean": list(data.mean),
                  "std": list(data.std), "resize": bool(data_source is not None and data_source.size is not None)},
    }
    if data.task == "regression":
        card["targets"] = {"mean": list(data.target_mean), "std": list(data.target_std)}
    return {
        **card,
        "model": model,
        "weights": WEIGHTS_FILE,
        "config": config.to_dict(),
        "trained_on": {"study": exported.get("study"), "trial": exported.get("trial"), "data": data.name,
                       "fingerprint": data.fingerprint or None},
        "versions": versions(),
    }


@dataclass(frozen=True)
class Prediction:
    """One input's prediction. classification: `label` the most likely class, `values` {"probability": p};
    multilabel: `label` the labels predicted, joined by '|', `values` each label's probability; regression:
    `label` "", `values` each target's value."""

    input: str  # the file, or `file.npz[i]`
    task: str
    label: str
    values: dict[str, float]


def load_model(directory: str | Path, *, device: Any = "cpu") -> Predictor:
    """The model `adamtune train --out DIRECTORY` saved, in eval mode on `device`, taking inputs in raw units
    (see `model_card`); a missing or damaged folder is an InputError naming the file and key."""
    import torch

    from adamtune.training import Predictor, make_model

    card, where = read_card(directory)
    source, params = _model_source(card, where)
    shape = tuple(card["input"]["shape"])
    config = TrainConfig.from_dict(card["config"], source=f"{where}: config")
    network = make_model(source, shape, len(card["classes"]), config, params)
    weights = Path(directory) / WEIGHTS_FILE
    try:
        network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except FileNotFoundError:
        raise InputError(str(weights), "<file>", "missing: model.json names these weights") from None
    except Exception as exc:  # a damaged file, or weights of another network
        reason = " ".join(str(exc).split())[:300]
        raise InputError(str(weights), "<file>", f"cannot be loaded into the network model.json describes "
                         f"({type(exc).__name__}: {reason})") from None
    inputs, targets = card["input"], card.get("targets") or {}
    predictor = Predictor(network, input_shape=shape, scale=float(inputs["scale"]), mean=inputs["mean"],
                          std=inputs["std"], classes=card["classes"], task=card["task"], card=card,
                          target_mean=targets.get("mean"), target_std=targets.get("std"))
    return predictor.to(device).eval()


def predict(directory: str | Path, inputs: list[str | Path], *, device: Any = "cpu") -> list[Prediction]:
    """One Prediction per input: image files, folders of them, and .npz files holding `x` (read by
    `adamtune.data.read_inputs` as training read its data); bad inputs are InputErrors, raised before any
    prediction."""
    from adamtune.data import read_inputs

    card, _ = read_card(directory)
    read = read_inputs(inputs, input_spec(card))
    model = load_model(directory, device=device)
    predicted = model.predict(read.x)
    answers = model.answers(predicted)
    if model.task == "classification":
        return [Prediction(name, model.task, label, {"probability": float(row.max())})
                for name, label, row in zip(read.names, answers, predicted)]
    if model.task == "multilabel":
        return [Prediction(name, model.task, "|".join(labels), dict(zip(model.classes, row)))
                for name, labels, row in zip(read.names, answers, predicted.tolist())]
    return [Prediction(name, model.task, "", values) for name, values in zip(read.names, answers)]


def input_spec(card: dict[str, Any]) -> InputSpec:
    from adamtune.data import InputSpec

    inputs = card["input"]
    return InputSpec(tuple(inputs["shape"]), inputs["kind"], float(inputs["scale"]), bool(inputs.get("resize")))


def read_card(directory: str | Path) -> tuple[dict[str, Any], str]:
    """model.json of `directory`, checked (a newer format or an unknown task is refused, not misread), and how
    messages name it."""
    folder = Path(directory)
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        raise InputError(str(folder), "MODEL_DIR", f"{what}; give the folder `adamtune train --out` wrote")
    path = folder / MODEL_FILE
    where = str(path)
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(where, "<file>", "missing: not a folder `adamtune train --out` wrote (a folder trained by "
                         "an adamtune without model.json holds only model.pt: train the export again)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(where, "<json>", f"cannot be read: {' '.join(str(exc).split())}") from None
    if not isinstance(card, dict):
        raise InputError(where, "<json>", "expected a JSON object as `adamtune train` writes it")
    _check_card(card, where)
    return card, where


def _check_card(card: dict[str, Any], where: str) -> None:
    def need(ok: bool, key: str, reason: str) -> None:
        if not ok:
            raise InputError(where, key, reason)

    fmt: Any = card.get("format")
    need(isinstance(fmt, int) and not isinstance(fmt, bool), "format", f"an integer, got {fmt!r}")
    need(fmt <= FORMAT, "format", f"{fmt} was written by a newer adamtune (this one reads format {FORMAT})")
    task = card.get("task")
    need(task in TASKS, "task", f"{task!r} is not a task this adamtune knows ({', '.join(TASKS)})")
    classes: Any = card.get("classes")
    need(isinstance(classes, list) and len(classes) >= 1 and all(isinstance(c, str) for c in classes), "classes",
         "a list of the outputs' names (classes, targets or labels)")
    if task == "regression":
        targets: Any = card.get("targets")
        need(isinstance(targets, dict) and all(
            isinstance(targets.get(k), list) and len(targets[k]) == len(classes) for k in ("mean", "std")),
            "targets", f"the training targets' mean and std, {len(classes)} numbers each")
    inputs: Any = card.get("input")
    need(isinstance(inputs, dict), "input", "an object: kind, shape, scale, mean, std")
    kind = inputs.get("kind")
    need(kind in KIND_SHAPES, "input.kind", f"one of {', '.join(KIND_SHAPES)}, got {kind!r}")
    shape: Any = inputs.get("shape")
    need(isinstance(shape, list) and 1 <= len(shape) <= 3
         and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape), "input.shape",
         f"one sample's shape, 1 to 3 positive integers, got {shape!r}")
    scale = inputs.get("scale")
    need(isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0, "input.scale",
         f"a number > 0, got {scale!r}")
    for key in ("mean", "std"):
        values = inputs.get(key)
        need(isinstance(values, list) and len(values) == shape[0]
             and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values), f"input.{key}",
             f"{shape[0]} numbers, one per channel (per feature for vectors)")
    need(isinstance(card.get("model"), dict), "model", "an object naming the network: name, or entry and its folder")
    need(isinstance(card.get("config"), dict), "config", "an object of training settings")


def _model_source(card: dict[str, Any], where: str) -> tuple[ModelSource, dict[str, Any]]:
    """The network model.json names: a built-in, or the user's entry imported from its folder (relative to the
    model folder when relative); the user's entry obeys the same trust rule as in `train`."""
    model = card["model"]
    if "entry" not in model:
        name = model.get("name")
        if name not in BUILTIN_MODELS:
            raise ConfigError(where, "model.name", f"one of {', '.join(BUILTIN_MODELS)}, or an entry, got {name!r}")
        return ModelSource.builtin(name), {}
    folder = Path(where).resolve().parent / str(model.get("folder") or ".")
    source = ModelSource.stored(model, origin=where, folder=folder)
    params = model.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(where, "model.params", "an object: the values the model builder gets")
    check_entries(None, source)
    return source, params
