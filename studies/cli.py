"""The `adamtune` command line. Each command opens the store, calls one library function and turns
errors into one readable line: exit 2 for bad input, 1 for a store or data problem."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

EXIT_INPUT, EXIT_RUNTIME = 2, 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.command(args) or 0
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"adamtune: stopped by {signal.Signals(signum).name}; the running trial was marked FAIL and "
              "queued for a retry that resumes from its last checkpoint", file=sys.stderr)
        return 128 + signum
    except Exception as exc:  # noqa: BLE001 - classified below; anything else is a bug and re-raised
        code = _exit_code(exc)
        if code is None or getattr(args, "debug", False):
            raise
        print(f"adamtune: error: {exc}", file=sys.stderr)
        return code


def _exit_code(exc: Exception) -> int | None:
    from search_spaces import SpaceError
    from storage import StorageError
    from training import ConfigError, DataError

    from ._artifacts_dir import ArtifactsDirError, TrialFileError
    from ._spec import StudyError

    if isinstance(exc, (SpaceError, StudyError, ConfigError, LookupError, ArtifactsDirError)):
        return EXIT_INPUT
    if isinstance(exc, (StorageError, DataError, TrialFileError)):
        return EXIT_RUNTIME
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adamtune", description="Optuna studies over Adam, regularization "
                                     "and augmentation for PyTorch image classifiers.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, func, help: str, example: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, epilog=f"example: {example}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(command=func)
        return p

    def storage_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--storage", metavar="URL", help="study store (default: $ADAMTUNE_STORAGE, "
                       "else sqlite:///adamtune.db); e.g. postgresql+psycopg://user:pw@host/db")

    p = command("check", _check, "validate a study file and its search spaces; runs nothing",
                "adamtune check studies/digits_mlp.yaml")
    p.add_argument("study_file")

    p = command("run", _run, "create or join a study and run trials until its budget is spent",
                "adamtune run studies/digits_mlp.yaml --n-trials 20")
    p.add_argument("study_file")
    storage_flag(p)
    p.add_argument("--n-trials", type=int, metavar="N", help="study-wide budget of COMPLETE+PRUNED trials")
    p.add_argument("--timeout", type=float, metavar="S", help="stop this worker after S seconds")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--data-root", help="where torchvision datasets live (default: $ADAMTUNE_DATA)")
    p.add_argument("--artifacts", metavar="DIR", default=os.environ.get("ADAMTUNE_ARTIFACTS"),
                   help="checkpoints and best weights (default: $ADAMTUNE_ARTIFACTS, else the study's "
                   "artifacts.path, else ./adamtune-artifacts); a shared volume when workers are on many machines")
    p.add_argument("--workers", type=int, default=1, metavar="K", help="start K local worker processes on "
                   "this study (e.g. one per core); use a journal:/// or PostgreSQL store for many")
    p.add_argument("--quiet", action="store_true", help="no progress bar (automatic when stderr is not a "
                   "terminal: then one log line per trial)")

    p = command("studies", _studies, "list the studies in the store", "adamtune studies")
    storage_flag(p)

    p = command("trials", _trials, "list a study's trials", "adamtune trials digits_mlp")
    p.add_argument("name")
    storage_flag(p)

    p = command("status", _status, "state counts, best so far, running trials with their worker, epoch "
                "and last heartbeat", "adamtune status digits_mlp")
    p.add_argument("name")
    storage_flag(p)

    p = command("best", _best, "show the best trial next to the baseline trial", "adamtune best digits_mlp")
    p.add_argument("name")
    storage_flag(p)

    p = command("export", _export, "write the best configuration as JSON (--top K: the K best, best first; "
                "--format csv: one row per trial)", "adamtune export digits_mlp -o best.json")
    p.add_argument("name")
    p.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    p.add_argument("--top", type=int, metavar="K", help="a JSON list of the K best complete trials, best first, "
                   "each as the single export writes it")
    p.add_argument("--format", choices=("json", "csv"), default="json", help="csv: number, state, value, "
                   "params_NAME..., val_accuracy, epochs, duration (seconds) for every trial, or the K best with --top")
    storage_flag(p)

    p = command("report", _report, "write index.html (interactive charts and the trial table; works offline) "
                "and PNG charts of a study", "adamtune report digits_mlp -o report")
    p.add_argument("name")
    p.add_argument("-o", "--output", default="report", metavar="DIR",
                   help="directory for index.html and the PNGs (default: report)")
    storage_flag(p)

    p = command("train", _train, "retrain an exported configuration and evaluate it on the test split",
                "adamtune train best.json --out model/")
    p.add_argument("config_json")
    p.add_argument("--out", default="model", help="directory for model.pt, config.json, metrics.json")
    p.add_argument("--validate", action="store_true", help="train on the training split alone and report "
                   "validation metrics, as the trial did")
    p.add_argument("--device", help="cpu, cuda (default: cuda when available)")
    p.add_argument("--data-root", help="where torchvision datasets live (default: $ADAMTUNE_DATA)")

    p = command("dashboard", _dashboard, "serve optuna-dashboard on the study store",
                "adamtune dashboard --port 8080")
    storage_flag(p)
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--artifacts", metavar="DIR", default=os.environ.get("ADAMTUNE_ARTIFACTS", "adamtune-artifacts"),
                   help="artifacts root the workers write to, so trials show their learning curves "
                   "(default: $ADAMTUNE_ARTIFACTS, else ./adamtune-artifacts)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--read-only", action="store_true", default=None, help="refuse every request that would "
                      "change the store with 403 (the default when --host is not a loopback address)")
    mode.add_argument("--writable", dest="read_only", action="store_false", help="allow the dashboard's "
                      "write endpoints even on a non-loopback address (it has no authentication)")

    p = command("storage-proxy", _storage_proxy, "serve the store over gRPC so hundreds of workers share "
                "a few database connections", "adamtune storage-proxy --storage postgresql+psycopg://... "
                "--port 13000   # workers: --storage grpc://proxy-host:13000")
    storage_flag(p)
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=13000)
    return parser


def _check(args) -> int:
    from ._spec import load_study_file

    spec = load_study_file(args.study_file)
    print(f"{args.study_file}: ok: study {spec.name!r}, {spec.dataset}/{spec.model}, {spec.epochs} epochs, "
          f"{len(spec.space.params)} parameters, sampler {spec.sampler['type']}, pruner {spec.pruner['type']}, "
          f"{spec.n_trials} trials")
    for p in spec.space.params:
        print(f"  {p.name:18} {_describe_param(p)}")
    return 0


def _describe_param(p) -> str:
    if p.kind == "fixed":
        text = f"fixed {p.value!r}"
    elif p.kind == "categorical":
        text = "one of " + ", ".join(map(str, p.choices))
    else:
        scale = " log(1-x)" if p.log_complement else " log" if p.log else ""
        text = f"{p.kind} [{p.low}, {p.high}]{scale}" + (f" step {p.step}" if p.step else "")
    if p.when:
        text += "  when " + ", ".join(f"{k} in {list(v)}" for k, v in p.when.items())
    return text


def _run(args) -> int:
    from storage import mask_url, resolve_url

    from ._artifacts_dir import check_artifacts_dir
    from ._run import run_study
    from ._spec import load_study_file
    from ._tables import best_table

    spec = load_study_file(args.study_file)  # all validation happens before the store is touched
    for flag, value in (("--n-trials", args.n_trials), ("--workers", args.workers)):
        if value is not None and value < 1:
            raise _input_error(args.study_file, flag, f"must be >= 1, got {value}")
    check_artifacts_dir(args.artifacts or spec.artifacts)
    url = resolve_url(args.storage)
    if args.workers > 1:
        return _run_workers(args, spec, url)
    quiet = args.quiet or not sys.stderr.isatty()
    if quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    print(f"study {spec.name!r} in {mask_url(url)}", file=sys.stderr)
    summary = run_study(spec, url, n_trials=args.n_trials, timeout=args.timeout, device=args.device,
                        data_root=args.data_root, progress=not quiet, artifacts=args.artifacts)
    study = summary.study
    verb = "created" if summary.created else "joined"
    states = [t.state.name.lower() for t in study.get_trials(deepcopy=False)]
    counts = ", ".join(f"{states.count(s)} {s}" for s in ("complete", "pruned", "fail", "running", "waiting")
                       if states.count(s))
    print(f"{verb} study {spec.name!r}: this worker finished {summary.ran} trials in {summary.seconds:.1f}s "
          f"wall time; the study holds {counts}")
    try:
        from ._export import best_trial

        print(best_table(study, best_trial(study)))
    except LookupError:
        print("no complete trial yet")
    return 0


def _run_workers(args, spec, url: str) -> int:
    """K copies of this command as child processes on one study; the URL travels in the environment,
    never on a command line that `ps` shows. SIGTERM to the parent is passed on to every child."""
    from storage import mask_url

    if url.startswith("sqlite"):
        print("note: several processes on SQLite wait for each other's writes (busy timeout 60 s); "
              "journal:///path/study.log is the store Optuna recommends on one machine", file=sys.stderr)
    argv = [sys.executable, "-m", "studies.cli", "run", args.study_file, "--quiet"]
    for flag, value in (("--n-trials", args.n_trials), ("--timeout", args.timeout), ("--device", args.device),
                        ("--data-root", args.data_root), ("--artifacts", args.artifacts)):
        if value is not None:
            argv += [flag, str(value)]
    # K processes x all cores each would oversubscribe the CPU (OpenMP threads spin-wait on each other).
    threads = str(max(1, (os.cpu_count() or 1) // args.workers))
    env = {**os.environ, "ADAMTUNE_STORAGE": url, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", threads)}
    print(f"starting {args.workers} workers on study {spec.name!r} in {mask_url(url)}", file=sys.stderr)
    children = [subprocess.Popen(argv, env=env) for _ in range(args.workers)]
    forward = lambda signum, _frame: [c.send_signal(signum) for c in children if c.poll() is None]  # noqa: E731
    previous = signal.signal(signal.SIGTERM, forward)
    try:
        codes = [c.wait() for c in children]
    finally:
        signal.signal(signal.SIGTERM, previous)
    failed = [code for code in codes if code != 0]
    print(f"{args.workers} workers finished; exit codes {codes}", file=sys.stderr)
    return failed[0] if failed else 0


def _input_error(source: str, key: str, reason: str) -> Exception:
    from ._spec import StudyError

    return StudyError(source, key, reason)


def _open(args):
    from storage import open_storage, resolve_url

    url = resolve_url(args.storage)
    return url, open_storage(url)


def _load(args):
    url, storage = _open(args)
    return _find(args.name, url, storage)


def _find(name: str, url: str, storage):
    import optuna

    from storage import mask_url, storage_errors

    with storage_errors(url):
        if name not in optuna.study.get_all_study_names(storage):
            raise LookupError(f"study {name!r} not found in {mask_url(url)}; run `adamtune studies` to list studies")
        study = optuna.load_study(study_name=name, storage=storage)
    return _fail_stale(study, url)


def _fail_stale(study, url: str):
    """Heartbeats only fail dead workers' trials when a worker starts a trial; listing does it too."""
    import warnings

    import optuna

    from storage import Heartbeat, storage_errors

    beat = study.user_attrs.get("heartbeat")
    if beat is None or url.startswith(("journal:", "grpc:")):  # heartbeats live in RDB stores only
        return study
    with storage_errors(url), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        watched = optuna.load_study(study_name=study.study_name, storage=_beating_storage(url, Heartbeat(**beat)))
        optuna.storages.fail_stale_trials(watched)
    return watched


@functools.lru_cache(maxsize=None)
def _beating_storage(url: str, heartbeat):
    """One storage (one connection pool) per heartbeat setting, however many studies are listed."""
    from storage import open_storage

    return open_storage(url, heartbeat)


def _studies(args) -> int:
    import optuna

    from storage import mask_url, storage_errors

    from ._tables import studies_table

    url, storage = _open(args)
    with storage_errors(url):
        names = optuna.study.get_all_study_names(storage)
        studies = [_fail_stale(optuna.load_study(study_name=n, storage=storage), url) for n in names]
        print(f"{len(studies)} studies in {mask_url(url)}")
        if studies:
            print(studies_table(studies))
    return 0


def _trials(args) -> int:
    from ._tables import trials_table

    print(trials_table(_load(args)))
    return 0


def _status(args) -> int:
    from ._status import status_text

    url, storage = _open(args)
    print(status_text(_find(args.name, url, storage), storage))
    return 0


def _best(args) -> int:
    from ._export import best_trial
    from ._tables import best_table

    study = _load(args)
    print(best_table(study, best_trial(study)))
    return 0


def _export(args) -> int:
    from ._export import best_trial, export_trial, top_trials, trials_csv

    if args.top is not None and args.top < 1:
        raise _input_error("export", "--top", f"must be >= 1, got {args.top}")
    study = _load(args)
    if args.top is None:
        trials = study.get_trials(deepcopy=False) if args.format == "csv" else [best_trial(study)]
    else:
        trials = top_trials(study, args.top)
        if len(trials) < args.top:
            print(f"note: study {study.study_name!r} has only {len(trials)} complete trials", file=sys.stderr)
    if args.format == "csv":
        text = trials_csv(trials, param_order=list(study.user_attrs.get("spec", {}).get("space", {})))
        what = f"{len(trials)} trials"
    elif args.top is None:
        text = json.dumps(export_trial(study, trials[0]), indent=2) + "\n"
        what = f"trial #{trials[0].number}"
    else:
        text = json.dumps([export_trial(study, t) for t in trials], indent=2) + "\n"
        what = f"the {len(trials)} best trials"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
        print(f"wrote {what} of {study.study_name!r} to {args.output}", file=sys.stderr)
    return 0


def _report(args) -> int:
    from ._report import write_report

    study = _load(args)
    paths = write_report(study, args.output)
    print("\n".join(map(str, paths)))
    print(f"wrote the report of {study.study_name!r} to {args.output}; open {paths[0]}", file=sys.stderr)
    return 0


def _train(args) -> int:
    from ._export import train_from_export

    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    metrics = train_from_export(args.config_json, args.out, validate=args.validate, device=args.device,
                                data_root=args.data_root, log=log)
    if args.validate:
        print(f"validation loss {metrics['val_loss']:.6f}  validation accuracy {metrics['val_accuracy']:.4f}")
    else:
        print(f"test loss {metrics['test_loss']:.4f}  test accuracy {metrics['test_accuracy']:.4f} "
              f"({metrics['test_samples']} test images)")
    print(f"saved model.pt, config.json, metrics.json to {args.out}", file=sys.stderr)
    return 0


def _dashboard(args) -> int:
    from storage import mask_url

    from ._dashboard import is_loopback, serve

    url, storage = _open(args)
    read_only = not is_loopback(args.host) if args.read_only is None else args.read_only
    mode = "read-only" if read_only else "read-write"
    print(f"optuna-dashboard ({mode}) for {mask_url(url)} on http://{args.host}:{args.port}/", file=sys.stderr)
    if not is_loopback(args.host):
        print(f"warning: bound to {args.host}, reachable from other hosts; optuna-dashboard has no "
              "authentication", file=sys.stderr)
    serve(storage, args.host, args.port, read_only=read_only, artifacts=args.artifacts)
    return 0


def _storage_proxy(args) -> int:
    import optuna

    from storage import mask_url

    url, storage = _open(args)
    print(f"gRPC storage proxy for {mask_url(url)} on grpc://{args.host}:{args.port}", file=sys.stderr)
    optuna.storages.run_grpc_proxy_server(storage, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
