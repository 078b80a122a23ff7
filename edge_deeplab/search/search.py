"""Evolutionary search under a latency budget: tournament selection and one-field mutations.

Each trial proposes one candidate: for the first ``population`` trials the warm-start configs (the zoo's
hand-picked models that lie in the space), then random ones; after that a mutation of the best of
``tournament`` candidates drawn from the parent pool. The pool is the ``population`` best-scoring
feasible candidates (``selection="best"``, as OFA's and SPOS's evolutionary searches keep their top
ones), or the ``population`` most recent (``"aging"``, regularized evolution, Real et al. 2019: robust
to a lucky score, but over a few dozen trials it retires the best candidates before they have
children). A proposal must be predicted under the budget; it is then measured whole and scored by the
proxy. A measured latency over the budget keeps the trial on the record (and on the Pareto front) but
out of the parents and out of "best".

``<out>/state.json`` is rewritten after every step of a trial (proposal, latency, score), so a killed
search resumes where it stopped: a measured latency is never measured again (it is in the table and
the state), and an interrupted proxy training continues from its last checkpoint.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_deeplab.atomic import atomic_write_text
from edge_deeplab.configs import Config, check_choice, check_range
from edge_deeplab.errors import ConfigError
from edge_deeplab.models.config import ModelConfig
from edge_deeplab.search.space import SearchSpace, candidate_key, describe

STATE_FILE = "state.json"
SELECTIONS = ("best", "aging")


@dataclass(frozen=True)
class SearchSettings(Config):
    budget_ms: float
    runtime: str
    precision: str = "int8"
    threads: int | None = None
    trials: int = 30
    population: int = 8
    tournament: int = 3
    proposals: int = 60  # candidates priced per trial before giving up on finding one under budget
    seed: int = 0
    # Start the population from the zoo's configs that lie in the space and fit the budget, so the
    # search refines the hand-picked models instead of rediscovering them by chance.
    warm_start: bool = True
    selection: str = "best"

    def validate(self) -> None:
        check_range("budget_ms", self.budget_ms, 1e-6, 1e9)
        check_range("trials", self.trials, 1, 100_000)
        check_range("population", self.population, 1, 100_000)
        check_range("tournament", self.tournament, 1, 100_000)
        check_range("proposals", self.proposals, 1, 100_000)
        check_choice("selection", self.selection, SELECTIONS)


@dataclass
class Trial:
    config: ModelConfig
    latency_ms_predicted: float
    latency_ms: float | None = None
    score: float | None = None
    weights: str | None = None

    @property
    def key(self) -> str:
        return candidate_key(self.config)

    @property
    def done(self) -> bool:
        return self.latency_ms is not None and self.score is not None

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "latency_ms": self.latency_ms,
                "latency_ms_predicted": self.latency_ms_predicted, "score": self.score, "weights": self.weights}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trial:
        return cls(ModelConfig.from_dict(data["config"]), data["latency_ms_predicted"], data.get("latency_ms"),
                   data.get("score"), data.get("weights"))


@dataclass
class SearchState:
    settings: SearchSettings
    space: SearchSpace
    trials: list[Trial] = field(default_factory=list)

    def save(self, out: Path) -> None:
        data = {"settings": self.settings.to_dict(), "space": self.space.to_dict(),
                "trials": [t.to_dict() for t in self.trials]}
        atomic_write_text(out / STATE_FILE, json.dumps(data, indent=1))

    @classmethod
    def load(cls, out: Path) -> SearchState:
        try:
            data = json.loads((out / STATE_FILE).read_text())
            return cls(SearchSettings.from_dict(data["settings"]), SearchSpace.from_dict(data["space"]),
                       [Trial.from_dict(t) for t in data["trials"]])
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(f"{out / STATE_FILE} is not a readable search state ({exc}); "
                              "start a new search with another --out") from None

    @classmethod
    def start(cls, out: Path, settings: SearchSettings, space: SearchSpace, resume: bool) -> SearchState:
        """A new state, or with ``resume`` the saved one (whose settings must match, trials aside)."""
        cls.check_out(out, resume)
        if not resume:
            return cls(settings, space)
        state = cls.load(out)
        saved = state.settings.to_dict()
        for key, value in settings.to_dict().items():
            if key != "trials" and saved[key] != value:
                raise ConfigError(f"--resume: this search was started with {key}={saved[key]!r}, not "
                                  f"{value!r}; resume with the same options or use another --out")
        if state.space != space:
            raise ConfigError("--resume: the search space differs from the one this search started with")
        state.settings = settings  # more (or fewer) trials than first asked
        return state

    @staticmethod
    def check_out(out: Path, resume: bool) -> None:
        """Fail early (before any work) if ``out`` holds a search and ``resume`` is off, or the reverse."""
        exists = (out / STATE_FILE).is_file()
        if exists and not resume:
            raise ConfigError(f"{out} already holds a search; pass --resume to continue it or choose "
                              "another --out")
        if resume and not exists:
            raise ConfigError(f"nothing to resume: {out / STATE_FILE} does not exist")

    def feasible(self) -> list[Trial]:
        return [t for t in self.trials if t.done and t.latency_ms <= self.settings.budget_ms]


class Search:
    """Runs the trials; ``latency`` is a LatencyModel, ``score(config, trial_dir) -> (score, weights)``.

    With ``progress``, ``log`` gets one line per finished trial (candidate, latency, proxy score, elapsed,
    ETA); ``clock`` (seconds) is injectable so the timing is testable.
    """

    def __init__(self, state: SearchState, out: Path, latency, score: Callable[[ModelConfig, Path], tuple],
                 progress: bool = True, warm_start: Sequence[ModelConfig] = (),
                 log: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.state, self.out, self.latency, self.score = state, out, latency, score
        self.progress, self.warm_start = progress, tuple(warm_start)
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.clock = clock

    def run(self, on_trial: Callable[[SearchState], None] = lambda _: None) -> SearchState:
        settings = self.state.settings
        started, finished = self.clock(), 0  # this session's trials: a resumed search's ETA ignores the old
        while sum(t.done for t in self.state.trials) < settings.trials:
            try:
                trial = self._current()
            except SpaceExhausted as exc:  # a small space: the best of what it holds is the answer
                self.log(f"search: stopping after {sum(t.done for t in self.state.trials)} trials: {exc}")
                break
            if trial.latency_ms is None:
                trial.latency_ms = self.latency.measure(trial.config)
                self.state.save(self.out)
            if trial.score is None:
                trial.score, weights = self.score(trial.config, self.out / "trials" / trial.key)
                trial.weights = str(weights)
                self.state.save(self.out)
            self.latency.table.save()  # structures priced this trial, for the next search
            finished += 1
            if self.progress:
                self.log(trial_line(trial, sum(t.done for t in self.state.trials), settings,
                                    self.clock() - started, finished))
            on_trial(self.state)
        return self.state

    def _current(self) -> Trial:
        """The unfinished trial a kill left behind, else a new proposal (saved before any measuring)."""
        pending = [t for t in self.state.trials if not t.done]
        if pending:
            return pending[0]
        index = len(self.state.trials)
        config, predicted = self._propose(np.random.default_rng([self.state.settings.seed, index]), index)
        trial = Trial(config, round(predicted, 4))
        self.state.trials.append(trial)
        self.state.save(self.out)
        return trial

    def _propose(self, rng: np.random.Generator, index: int) -> tuple[ModelConfig, float]:
        settings, space = self.state.settings, self.state.space
        seen = {t.key for t in self.state.trials}
        if index < settings.population:
            for config in self.warm_start:
                if candidate_key(config) not in seen:
                    predicted = self.latency.predict(config)
                    if predicted <= settings.budget_ms:
                        return config, predicted
                    seen.add(candidate_key(config))  # over budget: not proposed again this trial
        feasible, size = self.state.feasible(), settings.population
        # (sorted is stable: among equal scores the earlier trial stays)
        parents = sorted(feasible, key=lambda t: -t.score)[:size] if settings.selection == "best" else feasible[-size:]
        fastest = None
        for _ in range(settings.proposals):
            if index < settings.population or not parents:
                config = space.sample(rng)
            else:
                picks = rng.choice(len(parents), min(settings.tournament, len(parents)), replace=False)
                config = space.mutate(max((parents[i] for i in picks), key=lambda t: t.score).config, rng)
            if candidate_key(config) in seen:
                continue
            predicted = self.latency.predict(config)
            if predicted <= settings.budget_ms:
                return config, predicted
            fastest = predicted if fastest is None else min(fastest, predicted)
        if fastest is None and self.state.trials:  # every proposal was a candidate already tried
            raise SpaceExhausted(f"{settings.proposals} proposals found no candidate not tried yet: the search "
                                 "space holds no more (widen --space for more trials)")
        shown = f"; the fastest of them is predicted at {fastest:.2f} ms" if fastest is not None else ""
        raise ConfigError(f"no new candidate predicted under {settings.budget_ms} ms on {settings.runtime} in "
                          f"{settings.proposals} proposals{shown}: raise --budget-ms, or search smaller "
                          "widths and input sizes")


class SpaceExhausted(Exception):
    """Every candidate the proposals reach has been tried: the search stops with what it has."""


def pareto_front(trials: list[Trial]) -> list[Trial]:
    """Trials no other trial beats (lower measured latency, higher score, or both), by latency; equal
    points are all kept."""
    done = sorted((t for t in trials if t.done), key=lambda t: (t.latency_ms, -t.score))
    front: list[Trial] = []
    for trial in done:
        tie = front and (trial.latency_ms, trial.score) == (front[-1].latency_ms, front[-1].score)
        if not front or trial.score > front[-1].score or tie:
            front.append(trial)
    return front


def trial_line(trial: Trial, done: int, settings: SearchSettings, elapsed: float, finished: int) -> str:
    """``trial 3/30  <candidate>  4.21 ms (predicted 4.05)  proxy mIoU 0.7123  elapsed 2m31s  ETA 22m40s``;
    the ETA assumes the remaining trials take as long as this session's have on average."""
    over = "  over budget" if trial.latency_ms > settings.budget_ms else ""
    remaining = max(settings.trials - done, 0) * elapsed / max(finished, 1)
    return (f"trial {done}/{settings.trials}  {describe(trial.config)}  {trial.latency_ms:.2f} ms "
            f"(predicted {trial.latency_ms_predicted:.2f}){over}  proxy mIoU {trial.score:.4f}  "
            f"elapsed {_duration(elapsed)}  ETA {_duration(remaining)}")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
