"""The `adamtune` command line, thin over `adamtune.api`: each command parses its arguments, calls one
library function and prints what it returns. An adamtune error becomes one line on stderr and the exit
code its class carries (2 bad input, 1 store or data trouble); `--debug` shows the traceback.

Nothing heavy is imported at start-up, so `adamtune --help` answers at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Iterable
from itertools import islice
from pathlib import Path
from typing import TextIO

from adamtune import api
from adamtune.errors import AdamtuneError, InputError


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.command(args) or 0
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"adamtune: stopped by {signal.Signals(signum).name}{_stopped_what(exc)}", file=sys.stderr)
        return 128 + signum
    except AdamtuneError as exc:
        if args.debug:
            raise
        print(f"adamtune: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # The reader went away (`adamtune trials x | head`): stop quietly, as cat and grep do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _stopped_what(exc: KeyboardInterrupt) -> str:
    """What the interruption stopped, only as far as it is known: the trials a worker failed and queued
    for retry (`trials_retried`, set by the worker), or what was being waited on (`stopped_while`)."""
    retried = getattr(exc, "trials_retried", None)
    if retried:
        which = ", ".join(map(str, retried))
        return (f"; trial {which} was marked FAIL and queued for a retry that resumes from its last checkpoint"
                if len(retried) == 1 else f"; trials {which} were marked FAIL and queued for retries that resume "
                "from their last checkpoints")
    if retried is not None:
        return "; no trial was running"
    stopped_while = getattr(exc, "stopped_while", "")
    return f" {stopped_while}" if stopped_while else ""


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

    def trust_flag(p: argparse.ArgumentParser, what: str) -> None:
        p.add_argument("--trust-entries", action="store_true", help=f"let the {what}'s entry points (model: "
                       "{entry: ...}, dataset: {type: python, entry: ...}) import any module, not only Python files "
                       f"beside the {what} file; only for a {what} file you trust (an entry runs code)")

    def storage_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--storage", metavar="URL", help="study store (default: $ADAMTUNE_STORAGE, "
                       "else sqlite:///adamtune.db); e.g. postgresql+psycopg://user:pw@host/db")

    p = command("check", _check, "validate a study file and its search spaces; runs nothing (on your own data "
                "or model: loads the data and runs the model once)", "adamtune check studies/digits_mlp.yaml")
    p.add_argument("study_file")
    p.add_argument("--data-root", help="data cache and torchvision datasets (default: $ADAMTUNE_DATA)")
    trust_flag(p, "study")

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
    p.add_argument("--pack", metavar="K", help="train K trials at once in one batched program (default: the "
                   "study's pack, else 1); trials in a pack share model, width, activation and batch size")
    trust_flag(p, "study")

    p = command("studies", _studies, "list the studies in the store", "adamtune studies")
    storage_flag(p)

    p = command("trials", _trials, "list a study's trials: by default the baseline, the 10 best and the 20 latest",
                "adamtune trials digits_mlp --state pruned")
    p.add_argument("name")
    p.add_argument("--all", action="store_true", help="every trial, printed as it is read")
    p.add_argument("--state", choices=("complete", "pruned", "fail", "running", "waiting"),
                   help="every trial in this state, printed as it is read")
    p.add_argument("--limit", type=int, metavar="N", help="at most N trials (without --all/--state: the N latest)")
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
    p.add_argument("--allow-changed-data", action="store_true", help="train even when your data's fingerprint "
                   "differs from the one the export records")
    trust_flag(p, "export")

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


def _trust(args) -> None:
    """--trust-entries: entries may name any module, here and in the workers this process starts."""
    if args.trust_entries:
        from adamtune.data import trust_entries

        trust_entries()


def _check(args) -> int:
    _trust(args)
    spec = api.check(args.study_file, data_root=args.data_root)
    what = f"{spec.dataset}/{spec.model}" if not spec.facts else f"{spec.data_source.describe()}, model {spec.model}"
    print(f"{args.study_file}: ok: study {spec.name!r}, {what}, "
          f"{spec.epochs} epochs, {len(spec.space.params)} parameters, sampler {spec.sampler['type']}, "
          f"pruner {spec.pruner['type']}, {spec.n_trials} trials")
    if spec.facts is not None:
        facts = spec.facts
        skipped = f", {len(facts.skipped)} unreadable images skipped" if facts.skipped else ""
        print(f"  data: {'/'.join(map(str, facts.counts))} train/validation/test samples of shape {facts.shape} "
              f"({facts.kind}), {len(facts.classes)} classes ({', '.join(facts.classes[:10])}"
              f"{', ...' if len(facts.classes) > 10 else ''}), fingerprint {facts.fingerprint or '-'}{skipped}")
    for p in spec.space.params:
        print(f"  {p.name:18} {p.describe()}")
    return 0


def _run(args) -> int:
    from adamtune.results import StudyView, best_table
    from adamtune.storage import mask_url, resolve_url

    _trust(args)
    for flag, value in (("--n-trials", args.n_trials), ("--workers", args.workers)):
        if value is not None and value < 1:
            raise InputError(args.study_file, flag, f"must be >= 1, got {value}")
    if args.pack is not None:
        from adamtune.studies import check_pack

        try:
            size: int | str = int(args.pack)
        except ValueError:
            size = args.pack
        args.pack = check_pack(size, args.study_file, "--pack")
    if args.workers > 1:
        return _run_workers(args)
    quiet = args.quiet or not sys.stderr.isatty()
    if quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    summary = api.run(args.study_file, storage=args.storage, n_trials=args.n_trials, timeout=args.timeout,
                      device=args.device, data_root=args.data_root, artifacts=args.artifacts, progress=not quiet,
                      pack=args.pack,
                      on_ready=lambda spec: print(f"study {spec.name!r} in {mask_url(resolve_url(args.storage))}",
                                                  file=sys.stderr))
    view = StudyView.of(summary.study)
    verb = "created" if summary.created else "joined"
    name = summary.study.study_name
    print(f"{verb} study {name!r}: this worker finished {summary.ran} trials in {summary.seconds:.1f}s "
          f"wall time; the study holds {view.counts_text()}")
    print(best_table(view) if view.counts["complete"] else "no complete trial yet")
    return 0


def _run_workers(args) -> int:
    from adamtune.storage import open_storage, resolve_url
    from adamtune.studies import check_artifacts_dir, run_local_workers

    # Bad input fails here, once, not in K children; the user's image folder is cached for them.
    spec = api.check(args.study_file, data_root=args.data_root)
    check_artifacts_dir(args.artifacts or spec.artifacts)
    url = resolve_url(args.storage)
    # One process creates a new store's tables, and an unreachable store is one line here, not K.
    open_storage(url)
    options = {"--n-trials": args.n_trials, "--timeout": args.timeout, "--device": args.device,
               "--data-root": args.data_root, "--artifacts": args.artifacts, "--pack": args.pack}
    codes = run_local_workers(args.study_file, url, args.workers, options=options,
                              log=lambda msg: print(f"{msg} (study {spec.name!r})", file=sys.stderr))
    print(f"{args.workers} workers finished; exit codes {codes}", file=sys.stderr)
    return next((code for code in codes if code != 0), 0)


def _studies(args) -> int:
    from adamtune.results import studies_table
    from adamtune.storage import mask_url, resolve_url

    views = api.list_studies(args.storage)
    print(f"{len(views)} studies in {mask_url(resolve_url(args.storage))}")
    if views:
        print(studies_table(views))
    return 0


def _trials(args) -> int:
    from adamtune.results import default_selection, trials_lines, trials_table

    view = api.study(args.name, args.storage)
    states = [args.state] if args.state else None
    if args.all or args.state:
        _write_lines(sys.stdout, (line + "\n" for line in trials_lines(islice(view.stream(states), args.limit))))
        return 0
    chosen = default_selection(view) if args.limit is None else view.latest(args.limit)
    print(trials_table(chosen))
    if len(chosen) < view.total:
        print(f"\n{len(chosen)} of {view.total} trials ({view.counts_text()}): the baseline, the 10 best and the 20 "
              "latest; --all for every trial, --state STATE for one state, --limit N for the N latest")
    return 0


def _status(args) -> int:
    from adamtune.results import status_text

    print(status_text(*api.status(args.name, args.storage)))
    return 0


def _best(args) -> int:
    from adamtune.results import best_table

    print(best_table(api.study(args.name, args.storage)))
    return 0


def _export(args) -> int:
    from adamtune.results import output_file, writing

    if args.output != "-":
        output_file(args.output, "export -o")  # before the store is read
    if args.format == "csv":
        lines = api.export_csv(args.name, args.storage, top=args.top)
        if args.output == "-":
            _write_lines(sys.stdout, lines)
        else:
            with writing(args.output, "export -o", partial=Path(args.output)), \
                    open(args.output, "w", encoding="utf-8", newline="") as out:
                rows = _write_lines(out, lines) - 1
            print(f"wrote {rows} trials of {args.name!r} to {args.output}", file=sys.stderr)
        return 0
    else:
        exported = api.export(args.name, args.storage, top=args.top)
        text = json.dumps(exported, indent=2) + "\n"
        if isinstance(exported, dict):
            what = f"trial #{exported['trial']}"
        else:
            what = f"the {len(exported)} best trials"
            if len(exported) < args.top:
                print(f"note: study {args.name!r} has only {len(exported)} complete trials", file=sys.stderr)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with writing(args.output, "export -o", partial=Path(args.output)):
            Path(args.output).write_text(text)
        print(f"wrote {what} of {args.name!r} to {args.output}", file=sys.stderr)
    return 0


def _write_lines(out: TextIO, lines: Iterable[str]) -> int:
    """Write each line as it comes (flushed, so a reader sees the first ones at once); returns how many."""
    count = 0
    for count, line in enumerate(lines, 1):
        out.write(line)
        if count <= 3 or count % 1000 == 0:
            out.flush()
    return count


def _report(args) -> int:
    paths = api.report(args.name, args.output, args.storage)
    print("\n".join(map(str, paths)))
    print(f"wrote the report of {args.name!r} to {args.output}; open {paths[0]}", file=sys.stderr)
    return 0


def _train(args) -> int:
    _trust(args)
    metrics = api.train(args.config_json, args.out, validate=args.validate, device=args.device,
                        data_root=args.data_root, allow_changed_data=args.allow_changed_data,
                        log=lambda msg: print(msg, file=sys.stderr))
    if args.validate:
        print(f"validation loss {metrics['val_loss']:.6f}  validation accuracy {metrics['val_accuracy']:.4f}")
    else:
        print(f"test loss {metrics['test_loss']:.4f}  test accuracy {metrics['test_accuracy']:.4f} "
              f"({metrics['test_samples']} test samples)")
    print(f"saved model.pt, config.json, metrics.json to {args.out}", file=sys.stderr)
    return 0


def _dashboard(args) -> int:
    from adamtune.results import is_loopback, serve_dashboard
    from adamtune.storage import mask_url, open_storage, resolve_url

    url = resolve_url(args.storage)
    storage = open_storage(url)
    read_only = not is_loopback(args.host) if args.read_only is None else args.read_only
    mode = "read-only" if read_only else "read-write"
    print(f"optuna-dashboard ({mode}) for {mask_url(url)} on http://{args.host}:{args.port}/", file=sys.stderr)
    if not is_loopback(args.host):
        print(f"warning: bound to {args.host}, reachable from other hosts; optuna-dashboard has no "
              "authentication", file=sys.stderr)
    serve_dashboard(storage, args.host, args.port, read_only=read_only, artifacts=args.artifacts)
    return 0


def _storage_proxy(args) -> int:
    import optuna

    from adamtune.storage import mask_url, open_storage, resolve_url

    url = resolve_url(args.storage)
    storage = open_storage(url)
    print(f"gRPC storage proxy for {mask_url(url)} on grpc://{args.host}:{args.port}", file=sys.stderr)
    optuna.storages.run_grpc_proxy_server(storage, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
