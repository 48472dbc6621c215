"""The Python API, for notebooks and scripts; the command line is a thin layer over these functions.

Each opens what it needs (study file, store), calls the library, and returns plain objects. Errors are
raised, never printed: InputError (and its subclasses) for input a person can fix, StorageError and
DataError for a store or data problem, all from `adamtune.errors`. `storage` says where the study store
is: a `Store` that `resolve_store()` resolved (a command resolves it once and hands it to every call), else a
URL, else None for $ADAMTUNE_STORAGE, else ./adamtune.db.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import timedelta

    from adamtune.results import StudyView, TrialRecord
    from adamtune.storage import Store
    from adamtune.studies import RunSummary, StudySpec


def resolve_store(storage: str | None = None) -> Store:
    """The study store, resolved once: `storage` (a URL), else $ADAMTUNE_STORAGE, else the file named by
    $ADAMTUNE_STORAGE_FILE, else ./adamtune.db. Nothing is opened until a call needs it."""
    from adamtune.storage import Store

    return Store.resolve(storage)


def check(study_file: str | Path, *, load_data: bool = True, data_root: str | None = None,
          device: str | None = "cpu") -> StudySpec:
    """Read and fully validate a study file and its search spaces; runs nothing, touches no store. On the
    user's data or model (and `load_data`), also load and check the data (filling the image cache) and
    build the model for one forward pass; the returned spec then carries the data's facts. A built-in
    dataset with a built-in model needs neither, so checking it does not import torch."""
    from adamtune.studies import load_study_file, prepare

    spec = load_study_file(study_file)
    if load_data and (spec.data_source.user or spec.model_source.user):
        spec, _ = prepare(spec, device=device, data_root=data_root)
    return spec


def study_schema() -> dict[str, Any]:
    """The study file as JSON Schema (draft 2020-12), generated from the rules `check` applies to each value:
    what editors read (studies/study.schema.json is a copy)."""
    from adamtune.studies import study_schema

    return study_schema()


def run(study_file: str | Path, *, storage: Store | str | None = None, n_trials: int | None = None,
        timeout: float | None = None, device: str | None = None, data_root: str | None = None,
        artifacts: str | None = None, progress: bool = False,
        on_ready: Callable[[StudySpec], None] | None = None, pack: int | str | None = None) -> RunSummary:
    """Create or join the study and run trials in this process until the study-wide budget is spent;
    `on_ready` is called with the spec once the data are loaded and checked, before the store is touched."""
    from adamtune.storage import Store
    from adamtune.studies import StudyError, load_study_file, run_study

    spec = load_study_file(study_file)  # all validation happens before the store is touched
    if n_trials is not None and n_trials < 1:
        raise StudyError(str(study_file), "n_trials", f"must be >= 1, got {n_trials}")
    return run_study(spec, Store.of(storage), n_trials=n_trials, timeout=timeout, device=device,
                     data_root=data_root, progress=progress, artifacts=artifacts, on_ready=on_ready, pack=pack)


def list_studies(storage: Store | str | None = None) -> list[StudyView]:
    """Every study in the store, read once (dead workers' trials failed first)."""
    from adamtune.results import StudyView
    from adamtune.storage import Store, open_studies

    store = Store.of(storage)
    found = open_studies(store)
    with store.errors():
        return [StudyView.of(s) for s in found]


def study(name: str, storage: Store | str | None = None) -> StudyView:
    """One study with every trial as a TrialRecord: counts, best, baseline, top(k)."""
    from adamtune.results import StudyView
    from adamtune.storage import Store, open_study

    store = Store.of(storage)
    found = open_study(name, store)
    with store.errors():
        return StudyView.of(found)


def best(name: str, storage: Store | str | None = None) -> TrialRecord:
    """The best complete trial; NoCompleteTrial when there is none yet."""
    return study(name, storage).best


def status(name: str, storage: Store | str | None = None) -> tuple[StudyView, dict[int, timedelta]]:
    """The study and, for running trials, the time since their worker's last heartbeat."""
    from adamtune.results import StudyView
    from adamtune.storage import Store, heartbeat_ages, open_study

    store = Store.of(storage)
    found = open_study(name, store)
    with store.errors():
        view = StudyView.of(found)
    return view, heartbeat_ages(store.opened, name) if view.counts["running"] else {}


def export(name: str, storage: Store | str | None = None, *, top: int | None = None, trial: int | None = None,
           out: str | Path | None = None) -> dict[str, Any] | list[dict[str, Any]]:
    """The best trial as `adamtune train` reads it; with `trial`, that trial (the baseline is 0; it must be
    complete); with `top`, a list of the `top` best, best first. With `out`, also written there as JSON
    (checked before the store is read), as `adamtune export -o` writes it."""
    from adamtune.results import output_file, writing
    from adamtune.studies import StudyError, export_chosen, export_trial

    if top is not None and top < 1:
        raise StudyError("export", "--top", f"must be >= 1, got {top}")
    if top is not None and trial is not None:
        raise StudyError("export", "--trial", "exports one trial; --top K exports the K best: give one of them")
    if out is not None:
        output_file(out, "export -o")
    view = study(name, storage)
    exported: dict[str, Any] | list[dict[str, Any]]
    if trial is not None:
        exported = export_chosen(view, trial)
    elif top is None:
        exported = export_trial(view, view.best)
    else:
        exported = [export_trial(view, t) for t in view.top(top)]
    if out is not None:
        import json

        with writing(out, "export -o", partial=Path(out)):
            Path(out).write_text(json.dumps(exported, indent=2) + "\n")
    return exported


def export_csv(name: str, storage: Store | str | None = None, *, top: int | None = None) -> Iterator[str]:
    """Every trial (or the `top` best) as CSV lines, sampled values by their public names, yielded as they
    are read from the store (a chunk of trials at a time), so memory stays flat however large the study."""
    from adamtune.results import trials_csv
    from adamtune.studies import StudyError

    if top is not None and top < 1:
        raise StudyError("export", "--top", f"must be >= 1, got {top}")
    view = study(name, storage)
    trials = view.stream() if top is None else iter(view.top(top))
    return trials_csv(trials, view.param_names())


def report(name: str, out_dir: str | Path, storage: Store | str | None = None) -> list[Path]:
    """Write index.html (offline) and PNG charts of the study; returns the paths written, index first."""
    from adamtune.results import output_dir, write_report, writing
    from adamtune.storage import Store, open_study

    output_dir(out_dir, "report -o", create=False)  # checked before the study is read, made once there is a report
    store = Store.of(storage)
    found = open_study(name, store)
    with store.errors(), writing(out_dir, "report -o"):
        return write_report(found, out_dir)


def train(export: str | Path | Mapping[str, Any], out: str | Path | None = None, *, validate: bool = False,
          device: str | None = None, data_root: str | None = None, allow_changed_data: bool = False,
          trial: int | None = None, log=None) -> dict[str, Any]:
    """Retrain an exported configuration (an export file, or the mapping `export` returns; from a `--top`
    list, the one of `trial`) with the shared loop and return its metrics (test metrics, or with `validate` the
    validation metrics the trial had); saves model.pt, model.json, config.json, metrics.json to `out`.
    The user's data must still have the fingerprint the export records, unless `allow_changed_data`."""
    from adamtune.studies import train_from_export

    return train_from_export(export, out, validate=validate, device=device, data_root=data_root,
                             allow_changed_data=allow_changed_data, trial=trial, log=log or (lambda _msg: None))


def load_model(directory: str | Path, *, device: str | None = "cpu"):
    """The model `train` saved in `directory`, as a torch.nn.Module in eval mode that takes inputs in the units
    the training data had (uint8 images, or the arrays' numbers; one sample or a batch) and applies the
    training's normalisation itself: `model(x)` gives logits, `model.predict(x)` class names and probabilities,
    `model.classes` the class names. A model of your own is imported from its folder (`adamtune.data.
    trust_entries()` allows any module, as --trust-entries does)."""
    from adamtune.studies import load_model as load

    return load(directory, device=device)


def predict(directory: str | Path, inputs: list[str | Path], *, device: str | None = "cpu") -> list:
    """One Prediction (input, label, probability) per input: image files, folders of them, or .npz files holding
    x as the training arrays did, each read as training read its data."""
    from adamtune.studies import predict as predict_inputs

    return predict_inputs(directory, list(inputs), device=device)


def run_workers(study_file: str | Path, workers: int, *, storage: Store | str | None = None,
                n_trials: int | None = None, timeout: float | None = None, device: str | None = None,
                data_root: str | None = None, artifacts: str | None = None, pack: int | str | None = None,
                devices: list[str] | None = None, log: Callable[[str], None] = print) -> list[int]:
    """Start `workers` local processes of `adamtune run` on the study and wait for them; their exit codes.
    Each worker gets one GPU in turn: of `devices`, else of the visible ones (none with `device` "cpu")."""
    from adamtune.storage import Store
    from adamtune.studies import check_artifacts_dir, run_local_workers, visible_gpus

    # Bad input fails here, once, not in K children; the user's image folder is cached for them.
    spec = check(study_file, data_root=data_root)
    check_artifacts_dir(artifacts or spec.artifacts)
    store = Store.of(storage)
    store.open()  # one process creates a new store's tables, and an unreachable store is one line here, not K
    options = {"--n-trials": n_trials, "--timeout": timeout, "--device": device, "--data-root": data_root,
               "--artifacts": artifacts, "--pack": pack}
    gpus = [] if device == "cpu" else devices if devices is not None else visible_gpus()
    return run_local_workers(study_file, store, workers, options=options, gpus=gpus,
                             log=lambda msg: log(f"{msg} (study {spec.name!r})"))


def dashboard(storage: Store | str | None = None, *, host: str = "127.0.0.1", port: int = 8080,
              read_only: bool | None = None, artifacts: str | None = None, log: Callable[[str], None] = print) -> None:
    """Serve optuna-dashboard on the store until interrupted; read-only when `read_only` is True or, when it
    is None, when `host` is not a loopback address (the dashboard has no authentication)."""
    from adamtune.results import is_loopback, serve_dashboard
    from adamtune.storage import Store

    store = Store.of(storage)
    opened = store.opened
    read_only = not is_loopback(host) if read_only is None else read_only

    def listening() -> None:  # said once it accepts connections: the URL works when a person reads it
        log(f"optuna-dashboard ({'read-only' if read_only else 'read-write'}) for {store.masked} on "
            f"http://{host}:{port}/")
        if not is_loopback(host):
            log(f"warning: bound to {host}, reachable from other hosts; optuna-dashboard has no authentication")

    serve_dashboard(opened, host, port, read_only=read_only, artifacts=artifacts, on_listening=listening)


def storage_proxy(storage: Store | str | None = None, *, host: str = "127.0.0.1", port: int = 13000,
                  log: Callable[[str], None] = print) -> None:
    """Serve the store over gRPC until interrupted, so many workers share a few database connections."""
    import optuna

    from adamtune.storage import Store

    store = Store.of(storage)
    opened = store.opened
    log(f"gRPC storage proxy for {store.masked} on grpc://{host}:{port}")
    optuna.storages.run_grpc_proxy_server(opened, host=host, port=port)
