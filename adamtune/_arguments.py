"""The command line's arguments: every command with its flags, help text and example. Parsing only; what
each command does is `adamtune.cli`'s, which hands its handlers in."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping


def build_parser(handlers: Mapping[str, Callable[[argparse.Namespace], int]]) -> argparse.ArgumentParser:
    """The parser of every command; `handlers` maps each command's name to the function that runs it."""
    parser = argparse.ArgumentParser(prog="adamtune", description="Optuna studies over Adam, regularization "
                                     "and augmentation for PyTorch image classifiers.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, help: str, example: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, epilog=f"example: {example}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(command=handlers[name])
        return p

    def trust_flag(p: argparse.ArgumentParser, what: str) -> None:
        p.add_argument("--trust-entries", action="store_true", help=f"let the {what}'s entry points (model: "
                       "{entry: ...}, dataset: {type: python, entry: ...}) import any module, not only Python files "
                       f"beside the {what} file; only for a {what} file you trust (an entry runs code)")

    def storage_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--storage", metavar="URL", help="study store (default: $ADAMTUNE_STORAGE, "
                       "else sqlite:///adamtune.db); e.g. postgresql+psycopg://user:pw@host/db")

    p = command("check", "validate a study file and its search spaces; runs nothing (on your own data "
                "or model: loads the data and runs the model once)", "adamtune check studies/digits_mlp.yaml")
    p.add_argument("study_file")
    p.add_argument("--data-root", help="data cache and torchvision datasets (default: $ADAMTUNE_DATA)")
    trust_flag(p, "study")

    p = command("schema", "print the study file's JSON Schema (draft 2020-12), for editors that check a study "
                "as you type", "adamtune schema --out studies/study.schema.json")
    p.add_argument("--out", metavar="FILE", help="write it to FILE (default: stdout)")

    p = command("run", "create or join a study and run trials until its budget is spent",
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
    p.add_argument("--devices", metavar="0,1,...", help="with --workers: the GPUs the workers take in turn, each "
                   "seeing only its own (default: every visible GPU; none with --device cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (automatic when stderr is not a "
                   "terminal: then one log line per trial)")
    p.add_argument("--pack", metavar="K", help="train K trials at once in one batched program: auto (the default, "
                   "unless the study's pack says otherwise) chooses K from the budget, model and device; 1 trains "
                   "one trial at a time")
    trust_flag(p, "study")

    p = command("studies", "list the studies in the store", "adamtune studies")
    storage_flag(p)

    p = command("trials", "list a study's trials: by default the baseline, the 10 best and the 20 latest",
                "adamtune trials digits_mlp --state pruned")
    p.add_argument("name")
    p.add_argument("--all", action="store_true", help="every trial, printed as it is read")
    p.add_argument("--state", choices=("complete", "pruned", "fail", "running", "waiting"),
                   help="every trial in this state, printed as it is read")
    p.add_argument("--limit", type=int, metavar="N", help="at most N trials (without --all/--state: the N latest)")
    storage_flag(p)

    p = command("status", "state counts, best so far, running trials with their worker, epoch "
                "and last heartbeat", "adamtune status digits_mlp")
    p.add_argument("name")
    storage_flag(p)

    p = command("best", "show the best trial next to the baseline trial", "adamtune best digits_mlp")
    p.add_argument("name")
    storage_flag(p)

    p = command("export", "write the best configuration as JSON (--trial N: trial N's; --top K: the K best, "
                "best first; --format csv: one row per trial)", "adamtune export digits_mlp -o best.json")
    p.add_argument("name")
    p.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    p.add_argument("--trial", type=int, metavar="N", help="export trial N instead of the best (the baseline is "
                   "trial 0); it must be complete")
    p.add_argument("--top", type=int, metavar="K", help="a JSON list of the K best complete trials, best first, "
                   "each as the single export writes it")
    p.add_argument("--format", choices=("json", "csv"), default="json", help="csv: number, state, value, "
                   "params_NAME..., val_accuracy, epochs, duration (seconds) for every trial, or the K best with --top")
    storage_flag(p)

    p = command("report", "write index.html (interactive charts and the trial table; works offline) "
                "and PNG charts of a study", "adamtune report digits_mlp -o report")
    p.add_argument("name")
    p.add_argument("-o", "--output", default="report", metavar="DIR",
                   help="directory for index.html and the PNGs (default: report)")
    storage_flag(p)

    p = command("train", "retrain an exported configuration and evaluate it on the test split",
                "adamtune train best.json --out model/")
    p.add_argument("config_json")
    p.add_argument("--out", default="model", help="directory for model.pt, model.json, config.json, metrics.json")
    p.add_argument("--validate", action="store_true", help="train on the training split alone and report "
                   "validation metrics, as the trial did")
    p.add_argument("--device", help="cpu, cuda (default: cuda when available)")
    p.add_argument("--data-root", help="where torchvision datasets live (default: $ADAMTUNE_DATA)")
    p.add_argument("--allow-changed-data", action="store_true", help="train even when your data's fingerprint "
                   "differs from the one the export records")
    p.add_argument("--trial", type=int, metavar="N", help="of a list `export --top K` wrote, train trial N")
    trust_flag(p, "export")

    p = command("predict", "predict the class of each input with a model `adamtune train` saved: one line per "
                "input (input, class, probability), or a CSV with --out", "adamtune predict model digit.png "
                "more_digits/ samples.npz")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="the folder `adamtune train --out` wrote")
    p.add_argument("inputs", nargs="+", metavar="INPUTS", help="image files, folders of images (every image "
                   "below, sorted), or .npz files holding x as in training")
    p.add_argument("--out", metavar="CSV", help="write input,label,probability rows to this file instead")
    p.add_argument("--device", default="cpu", help="cpu, cuda (default: cpu)")
    p.add_argument("--trust-entries", action="store_true", help="let a model of your own be imported from a "
                   "module of any name (as train --trust-entries does); only for a model folder you trust")

    p = command("dashboard", "serve optuna-dashboard on the study store",
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

    p = command("storage-proxy", "serve the store over gRPC so hundreds of workers share "
                "a few database connections", "adamtune storage-proxy --storage postgresql+psycopg://... "
                "--port 13000   # workers: --storage grpc://proxy-host:13000")
    storage_flag(p)
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=13000)
    return parser
