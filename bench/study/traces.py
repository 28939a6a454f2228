"""Synthetic request traces for the study: per model, on/off bursts with Poisson arrivals inside them (or plain
Poisson when the pattern is always on), the models' popularity Zipf-distributed, every request a prediction or,
now and then, a training run (as the seed study's Locust workload: one training per 100 predictions).

A trace is a pair of numpy arrays sorted by time: `times` (seconds from 0) and `functions` (an index into the
trace's function names, `predict-<i>` and `train-<i>`). Seeded: the same arguments give the same trace."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRAIN_EVERY = 100  # one training per this many predictions, as bench/locust/locustfile.py


@dataclass(frozen=True)
class Pattern:
    """The traffic of the average model: `rate_on` requests/s while a burst lasts, bursts `burst_s` long on
    average, on `duty` of the time (duty 1: always on, plain Poisson). Its mean rate is rate_on × duty."""

    name: str
    rate_on: float
    duty: float
    burst_s: float = 60.0

    @property
    def mean_rate(self) -> float:
        return self.rate_on * self.duty


@dataclass
class Trace:
    times: np.ndarray
    functions: np.ndarray
    names: list[str]
    duration: float

    def of(self, index: int) -> np.ndarray:
        return self.times[self.functions == index]


def zipf_weights(models: int, exponent: float = 1.0) -> np.ndarray:
    weights = 1.0 / np.arange(1, models + 1) ** exponent
    return weights / weights.sum()


def function_names(models: int, trainings: bool = True) -> list[str]:
    """The deployed functions: a predict function per model and, if there are trainings, a train function."""
    return [f"predict-{i}" for i in range(models)] + ([f"train-{i}" for i in range(models)] if trainings else [])


def model_arrivals(rng: np.random.Generator, pattern: Pattern, share: float, duration: float) -> np.ndarray:
    """Arrival times of one model whose mean rate is `share` × the pattern's mean rate. A popular model has
    more bursts (up to always on, then a higher rate), a rare one fewer; a burst itself looks the same."""
    mean_rate = pattern.mean_rate * share
    duty = pattern.duty * share
    if duty >= 1.0 or pattern.duty >= 1.0:
        return _poisson(rng, mean_rate, 0.0, duration)
    off_s = pattern.burst_s * (1.0 - duty) / duty  # mean gap between bursts, for this model's duty cycle
    times, now = [], rng.exponential(off_s)
    while now < duration:
        length = rng.exponential(pattern.burst_s)
        burst = _poisson(rng, pattern.rate_on, now, min(duration, now + length))
        if burst.size == 0:  # a burst shorter than one gap is still a visit: one request
            burst = np.array([now])
        times.append(burst)
        now += length + rng.exponential(off_s)
    return np.concatenate(times) if times else np.empty(0)


def _poisson(rng: np.random.Generator, rate: float, start: float, end: float) -> np.ndarray:
    if rate <= 0 or end <= start:
        return np.empty(0)
    count = rng.poisson(rate * (end - start))
    return np.sort(rng.uniform(start, end, count))


def generate(pattern: Pattern, models: int, duration: float, seed: int = 0, zipf: float = 1.0,
             train_every: int = TRAIN_EVERY) -> Trace:
    """A trace of `models` models over `duration` seconds; model i gets models × zipf_weights[i] of the pattern's
    mean rate (so the average model follows the pattern), and each request is a training with p = 1/train_every."""
    rng = np.random.default_rng(seed)
    shares = zipf_weights(models, zipf) * models
    all_times, all_functions = [], []
    for model, share in enumerate(shares):
        times = model_arrivals(rng, pattern, share, duration)
        train = rng.random(times.size) < 1.0 / train_every if train_every else np.zeros(times.size, bool)
        all_times.append(times)
        all_functions.append(np.where(train, models + model, model))
    times = np.concatenate(all_times)
    functions = np.concatenate(all_functions).astype(np.int32)
    order = np.argsort(times, kind="stable")
    return Trace(times[order], functions[order], function_names(models, bool(train_every)), duration)


def constant(rate: float, duration: float, names: list[str] | None = None) -> Trace:
    """One function called every 1/rate seconds from 0: the tests' trace with no idle gap."""
    times = np.arange(0.0, duration, 1.0 / rate)
    return Trace(times, np.zeros(times.size, np.int32), names or ["predict-0"], duration)
