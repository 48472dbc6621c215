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
from adamtune._arguments import build_parser
from adamtune.errors import AdamtuneError, InputError, StudyNotFound


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
    return build_parser({"check": _check, "schema": _schema, "run": _run, "studies": _studies, "trials": _trials,
                         "status": _status, "best": _best, "export": _export, "report": _report, "train": _train,
                         "predict": _predict,
                         "dashboard": _dashboard, "storage-proxy": _storage_proxy})


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
              f"({facts.kind}), {len(facts.classes)} {facts.outputs} ({', '.join(facts.classes[:10])}"
              f"{', ...' if len(facts.classes) > 10 else ''}), fingerprint {facts.fingerprint or '-'}{skipped}")
        print(f"  task: {facts.task}" + (f" ({facts.task_reason})" if facts.task_reason else ""))
    for p in spec.space.params:
        print(f"  {p.name:18} {p.describe()}")
    return 0


def _schema(args) -> int:
    text = json.dumps(api.study_schema(), indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(text)
        return 0
    from adamtune.results import output_file, writing

    output_file(args.out, "--out")
    with writing(args.out, "--out", partial=Path(args.out)):
        Path(args.out).write_text(text)
    print(f"wrote the study file's JSON Schema to {args.out}", file=sys.stderr)
    return 0


def _run(args) -> int:
    from adamtune.results import StudyView, best_table

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
    devices = None
    if args.devices is not None:
        from adamtune.studies import parse_devices

        if args.workers < 2:
            raise InputError(args.study_file, "--devices", "places two or more --workers; one worker takes a GPU "
                             "with --device cuda:N")
        devices = parse_devices(args.devices, args.study_file)
    store = api.resolve_store(args.storage)
    if args.workers > 1:
        return _run_workers(args, store, devices)
    quiet = args.quiet or not sys.stderr.isatty()
    if quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    summary = api.run(args.study_file, storage=store, n_trials=args.n_trials, timeout=args.timeout,
                      device=args.device, data_root=args.data_root, artifacts=args.artifacts, progress=not quiet,
                      pack=args.pack, on_ready=lambda spec: _stderr(f"study {spec.name!r} in {store.masked}"))
    view = StudyView.of(summary.study)
    verb = "created" if summary.created else "joined"
    name = summary.study.study_name
    print(f"{verb} study {name!r}: this worker finished {summary.ran} trials in {summary.seconds:.1f}s "
          f"wall time; the study holds {view.counts_text()}")
    if summary.ran == 0 and view.counts["complete"] + view.counts["pruned"] >= summary.budget:
        print(f"its budget of {summary.budget} finished trials was already spent: --n-trials N with N above "
              f"{summary.budget} runs more")
    print(best_table(view) if view.counts["complete"] else "no complete trial yet")
    return 0


def _run_workers(args, store, devices: list[str] | None) -> int:
    """K worker processes, then one summary of the study they worked on (theirs are not printed)."""
    import time

    from adamtune.results import best_table

    start = time.perf_counter()
    codes = api.run_workers(args.study_file, args.workers, storage=store, n_trials=args.n_trials,
                            timeout=args.timeout, device=args.device, data_root=args.data_root,
                            artifacts=args.artifacts, pack=args.pack, devices=devices, log=_stderr)
    print(f"{args.workers} workers finished; exit codes {codes}", file=sys.stderr)
    name = api.check(args.study_file, load_data=False).name
    try:
        view = api.study(name, store)
    except StudyNotFound:  # every worker failed before creating it; their errors are above
        return next((code for code in codes if code != 0), 1)
    print(f"{args.workers} workers on study {name!r} finished in {time.perf_counter() - start:.1f}s wall time; "
          f"the study holds {view.counts_text() or 'no trials'}")
    print(best_table(view) if view.counts["complete"] else "no complete trial yet")
    return next((code for code in codes if code != 0), 0)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _studies(args) -> int:
    from adamtune.results import studies_table

    store = api.resolve_store(args.storage)
    views = api.list_studies(store)
    print(f"{len(views)} studies in {store.masked}")
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
        shown = "the baseline, the 10 best and the 20 latest" if args.limit is None else f"the {len(chosen)} latest"
        print(f"\n{len(chosen)} of {view.total} trials ({view.counts_text()}): {shown}; --all for every trial, "
              "--state STATE for one state, --limit N for the N latest")
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

    out = None if args.output == "-" else args.output
    if args.format == "csv":
        if args.trial is not None:
            raise InputError("export", "--trial", "exports one trial as JSON; --format csv writes every trial "
                             "(or the --top K best)")
        if out is not None:
            output_file(out, "export -o")  # before the store is read
        lines = api.export_csv(args.name, args.storage, top=args.top)
        if out is None:
            _write_lines(sys.stdout, lines)
        else:
            with writing(out, "export -o", partial=Path(out)), open(out, "w", encoding="utf-8", newline="") as file:
                rows = _write_lines(file, lines) - 1
            print(f"wrote {rows} trials of {args.name!r} to {out}", file=sys.stderr)
        return 0
    exported = api.export(args.name, args.storage, top=args.top, trial=args.trial, out=out)
    if isinstance(exported, dict):
        what = f"trial #{exported['trial']}"
    else:
        what = f"the {len(exported)} best trials"
        if len(exported) < args.top:
            print(f"note: study {args.name!r} has only {len(exported)} complete trials", file=sys.stderr)
    if out is None:
        sys.stdout.write(json.dumps(exported, indent=2) + "\n")
    else:
        print(f"wrote {what} of {args.name!r} to {out}", file=sys.stderr)
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
                        data_root=args.data_root, allow_changed_data=args.allow_changed_data, trial=args.trial,
                        log=lambda msg: print(msg, file=sys.stderr))
    prefix, split = ("val_", "validation") if args.validate else ("test_", "test")
    values = "  ".join(f"{split} {key.removeprefix(prefix).replace('_', ' ')} {value:.6g}"
                       for key, value in metrics.items() if key.startswith(prefix) and isinstance(value, float))
    print(values + ("" if args.validate else f" ({metrics['test_samples']} test samples)"))
    print(f"saved model.pt, model.json, config.json, metrics.json to {args.out}; use it with "
          f"`adamtune predict {args.out} INPUTS` or adamtune.load_model({str(args.out)!r})", file=sys.stderr)
    return 0


def _predict(args) -> int:
    from adamtune.results import output_file, writing

    _trust(args)
    if args.out is not None:
        output_file(args.out, "predict --out")  # before anything is read
    predictions = api.predict(args.model_dir, args.inputs, device=args.device)
    if not predictions:
        return 0
    # classification: input, label, probability; multilabel: input, labels, one probability per label;
    # regression: input, one value per target
    label = {"classification": ["label"], "multilabel": ["labels"]}.get(predictions[0].task, [])
    columns = [*label, *predictions[0].values]

    def cells(p) -> list[str]:
        return [*([p.label] if label else []), *(f"{v:.6g}" for v in p.values.values())]

    if args.out is None:
        _write_lines(sys.stdout, ("\t".join([p.input, *cells(p)]) + "\n" for p in predictions))
        return 0
    import csv

    with writing(args.out, "predict --out", partial=Path(args.out)), \
            open(args.out, "w", encoding="utf-8", newline="") as file:
        rows = csv.writer(file)
        rows.writerow(["input", *columns])
        rows.writerows([p.input, *cells(p)] for p in predictions)
    print(f"wrote {len(predictions)} predictions to {args.out}", file=sys.stderr)
    return 0


def _dashboard(args) -> int:
    api.dashboard(args.storage, host=args.host, port=args.port, read_only=args.read_only, artifacts=args.artifacts,
                  log=_stderr)
    return 0


def _storage_proxy(args) -> int:
    api.storage_proxy(args.storage, host=args.host, port=args.port, log=_stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
