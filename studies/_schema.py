"""The study file's keys, declared once: what each takes, its default and a line on what it is for.
load_study_file checks every file against STUDY_FILE, and `adamtune schema` writes it as JSON Schema for
editors (studies/study.schema.json). The dataset, model and parameter mappings take their schemas from their
own parsers, and the keys load_study_file checks itself (task, objective, direction, warm_start) from the
constants it checks them against. What needs more than one value (direction against objective,
grace_period against interval), the file system or an import (fragments, entries, data) stays in
load_study_file."""

from __future__ import annotations

from typing import Any

from adamtune.data import ENTRY_PATTERN, dataset_schema
from adamtune.search_spaces import param_schema
from adamtune.storage import Heartbeat
from adamtune.training import LIMITS, LOSSES, MAX_PACK, model_schema

from ._factories import PRUNERS, SAMPLERS
from ._keys import MAX_SECONDS, Choice, Flag, Mapping, NameOrMapping, Names, Parsed, Seconds, Table, Text, Whole
from ._warm_start_key import KEYS as WARM_START_KEYS

# Bounds of the study file's own numbers, beyond which a library refuses them mid-run: Optuna's samplers seed
# numpy (at most 2**32 - 1), a timer waits at most MAX_SECONDS.
MAX_SEED = 2**32 - 1
MAX_TRIALS = 10**9
AUTO = "auto"  # `pack: auto`: the worker chooses K (studies/_pack_size.py)
DIRECTIONS = ("minimize", "maximize")
OBJECTIVE_KEYS = ("entry", "direction")  # of `objective: {entry: 'module:function', direction: ...}`
_WARM_START_HELP = {"study": "the earlier study's name", "storage": "its store's URL (default: this study's store)",
                    "top": "how many of its best complete trials (default 5)",
                    "exports": "files written by `adamtune export`, relative to the study file"}
SCHEMA_FILE = "studies/study.schema.json"  # the copy editors read, relative to the repository root


def _component(what: str, names: dict, default: str, note: str = "") -> NameOrMapping:
    """`sampler:` or `pruner:`: a name, or a mapping of `type` and the options of Optuna's class."""
    kind = Choice(help=f"the {what}", choices=tuple(names), default=default)
    return NameOrMapping(help=f"the {what}: {', '.join(names)}, or a mapping {{type: NAME, OPTION: VALUE, ...}} "
                         f"with the options of Optuna's {what}{note}", names=tuple(names),
                         mapping=Mapping(help="", keys={"type": kind}, open=True),
                         expects="a name or a mapping with 'type' and options", default=default)


_HEARTBEAT = Heartbeat()
STUDY_FILE = Mapping(help="An adamtune study: what to train, which space to search, how to sample and prune, and "
                     "the budget.", keys={
    "name": Text(help="the study's name in the store (workers with the same name join it) and its artifacts "
                 "directory: at most 255 bytes in UTF-8, no '/', '\\' or '..'", required=True),
    "description": Text(help="what the study is for, in a line"),
    "dataset": Parsed(help="a built-in dataset, or your image folder, arrays or Python entry point",
                      form=dataset_schema(), required=True),
    "model": Parsed(help="a built-in model, or your entry point {entry: 'module:callable', ...keyword arguments}",
                    form=model_schema(), required=True),
    "task": Parsed(help="what the model predicts (default: the targets decide)", form={"enum": list(LOSSES)}),
    "epochs": Whole(help="epochs each trial trains at most", low=1, high=int(LIMITS["epochs"]), default=10),
    "seed": Whole(help="trial n trains with seed + n; its settings are drawn from a sampler seeded from (seed, n)",
                  low=0, high=MAX_SEED, default=0),
    "n_trials": Whole(help="study-wide budget of COMPLETE + PRUNED trials", low=1, high=MAX_TRIALS, default=20),
    "timeout": Seconds(help="seconds per worker; a trial still training then stops after its epoch and is "
                       "retried later", positive=True, nullable=True),
    "objective": Parsed(help="the value trials are compared on: val_ and a metric's name (val_loss, val_accuracy, "
                        "val_rmse, ...), or your function {entry: 'module:function', direction: minimize|maximize}",
                        default="val_loss", form={"anyOf": [
                            {"type": "string"},  # which names are metrics, and for which task, only check says
                            {"type": "object", "required": ["entry"], "additionalProperties": False,
                             "properties": dict(zip(OBJECTIVE_KEYS, (
                                 {"type": "string", "pattern": ENTRY_PATTERN,
                                  "description": "called as function(predictions, targets)"},
                                 {"enum": list(DIRECTIONS), "description": "your metric's better side "
                                  "(default: the study's direction)"})))}]}),
    "direction": Parsed(help="minimize or maximize; must agree with a metric's own (default: the objective's)",
                        form={"enum": list(DIRECTIONS)}),
    "search_space": Names(help="search-space fragments, in order: built-in names or YAML files relative to the "
                          "study file", expects="a list of fragment names or paths", default=[]),
    "params": Table(help="per-study changes of the fragments' parameters (only the keys that change), or new "
                    "parameters", values=param_schema(), nullable=True,
                    expects="a mapping of parameter names to (partial) parameter specs"),
    "exclude": Names(help="parameters of the fragments left out of the search", nullable=True,
                     expects="a list of parameter names"),
    "sampler": _component("sampler", SAMPLERS, "tpe"),
    "pruner": _component("pruner", PRUNERS, "median", note="; `patience: N` wraps it in PatientPruner"),
    "baseline": Flag(help="enqueue the defaults as the first trial", default=True),
    "heartbeat": Mapping(help="how a dead worker's trial is noticed and retried (PostgreSQL and SQLite stores)",
                         keys={
        "interval": Whole(help="seconds between a live worker's beats", low=1, high=MAX_SECONDS, unit="seconds",
                          default=_HEARTBEAT.interval),
        "grace_period": Whole(help="seconds of silence after which a running trial is failed and retried; at "
                              "least twice the interval", low=1, high=MAX_SECONDS, unit="seconds",
                              default=_HEARTBEAT.grace_period),
        "max_retry": Whole(help="retries of a failed trial", low=0, high=MAX_SECONDS, unit="retries",
                           default=_HEARTBEAT.max_retry)}),
    "artifacts": Mapping(help="where trials keep checkpoints and the best weights", keys={
        "path": Text(help="the artifacts root (a shared volume for workers on many machines)",
                     default="adamtune-artifacts"),
        "keep_checkpoints": Flag(help="keep finished trials' checkpoints", default=False),
        "checkpoint_every": Seconds(help="seconds between a trial's checkpoints (0: every epoch)",
                                    what=" between a trial's checkpoints (0: every epoch)", default=60)}),
    "warm_start": Parsed(help="begin, after the baseline, with an earlier study's best trials and exported ones",
                         form={"type": "object", "additionalProperties": False, "properties": {
                             key: {"description": _WARM_START_HELP[key]} for key in WARM_START_KEYS}}),
    "reconnect_timeout": Seconds(help="how long a worker waits out a lost database before giving up", default=300),
    "pack": Whole(help="trials a worker trains at once: auto (GPU: chosen from the budget and memory; CPU: 1) or "
                  f"1 to {MAX_PACK}", low=1, high=MAX_PACK, word=AUTO, what="trials trained at once", default=AUTO),
})


def study_schema() -> dict[str, Any]:
    """The study file as JSON Schema (draft 2020-12), for editors: what `check` checks of each value."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "adamtune study file",
            "description": f"{STUDY_FILE.help} Generated by `adamtune schema --out {SCHEMA_FILE}`; "
            "`adamtune check` also checks what needs more than one value, files or imports.",
            **STUDY_FILE.shape()}
