"""The facts every view of a study starts from, each derived in one place: state counts, the best
trial, the k best, the baseline trial, and every trial as a TrialRecord."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import optuna

from adamtune.errors import NoCompleteTrial

from ._record import StudyContext, TrialRecord, read_trial

STATES = ("complete", "pruned", "fail", "running", "waiting")


@dataclass(frozen=True)
class StudyView:
    """One study read once: its context and its trials as records, in trial-number order."""

    name: str
    direction: str  # minimize or maximize
    context: StudyContext
    trials: list[TrialRecord]

    @classmethod
    def of(cls, study: optuna.Study) -> "StudyView":
        context = StudyContext.of(study.study_name, study.user_attrs)
        trials = [read_trial(t, context) for t in study.get_trials(deepcopy=False)]
        return cls(study.study_name, study.direction.name.lower(), context, trials)

    @property
    def counts(self) -> Counter[str]:
        """Trials per state; 'running' and 'waiting' apart (a queued retry is not running)."""
        return Counter(t.state for t in self.trials)

    def counts_text(self) -> str:
        counts = self.counts
        return ", ".join(f"{counts[s]} {s}" for s in STATES if counts[s])

    @property
    def complete(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.state == "complete"]

    @property
    def baseline(self) -> TrialRecord | None:
        return next((t for t in self.trials if t.baseline), None)

    def top(self, k: int) -> list[TrialRecord]:
        """The `k` best complete trials, best first (ties: lower trial number first)."""
        sign = 1 if self.direction == "minimize" else -1
        ranked = sorted(self.complete, key=lambda t: (sign * t.value, t.number))[:k]  # type: ignore[operator]
        if not ranked:
            raise NoCompleteTrial(self.name)
        return ranked

    @property
    def best(self) -> TrialRecord:
        """The best complete trial; NoCompleteTrial when there is none yet."""
        return self.top(1)[0]

    @property
    def best_value(self) -> float | None:
        return self.best.value if self.complete else None

    def gain_over_baseline(self) -> float | None:
        """How much the best trial beats the baseline trial on the objective (positive is better)."""
        baseline, best = self.baseline, self.best
        if baseline is None or baseline.state != "complete" or baseline.number == best.number:
            return None
        assert baseline.value is not None and best.value is not None
        return baseline.value - best.value if self.direction == "minimize" else best.value - baseline.value
