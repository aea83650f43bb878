"""One figure from several round-robin rounds of the same measurement (a table's part, a check's network, a
benchmark).

On a CPU the default is the *speed-normalised median*: this VM's speed changes every few seconds (whole stretches
of consecutive measurements run 1.2-1.6x slower or faster, docs/LATENCY.md), so each round's value is divided by
the machine's speed at that moment — the median, over the measurements taken just before and after it, of their
values over their own items' typical values — and the item's figure is the median of its normalised rounds
(``speed_factors``, ``combine_rounds``). This is Tukey's median polish of log time = item + moment, with the moment
taken as a sliding window in time. Without timestamps (or with ``normalise=False``): the fastest round for the
min, the median round otherwise.
"""

from __future__ import annotations

import statistics
from typing import Iterable, Mapping, Sequence

# Measurements on each side of a round's in the time-ordered sequence whose relative values give the machine's
# speed at that moment (~12 x 0.1-0.3 s: the few seconds a speed lasts on the project's VM).
SPEED_WINDOW = 12
# Passes of the median polish (item levels, then speeds, again): the second settles it, more change nothing.
POLISH_PASSES = 2


def speed_factors(measured: Mapping[str, Sequence[dict]], key: str, window: int = SPEED_WINDOW,
                  passes: int = POLISH_PASSES) -> dict[str, list[float]]:
    """The machine's relative speed at each round of each item (1.0: the item's typical time; 1.3: everything
    measured around that moment ran 30% slower), from rounds that record when they were taken (``at``, seconds).

    Items are sorted into one time-ordered sequence; each measurement's factor is the median of value / item level
    over the ``window`` measurements on each side and itself; an item's level is the median of its rounds divided
    by their factors. Rounds without ``at`` or without a positive value get the factor 1.0."""
    seq = sorted((d["at"], k, i) for k, rounds in measured.items() for i, d in enumerate(rounds)
                 if d.get("at") is not None and d.get(key, 0) > 0)
    factors = {k: [1.0] * len(rounds) for k, rounds in measured.items()}
    for _ in range(passes):
        level = {k: statistics.median([d[key] / f for d, f in zip(rounds, factors[k])])
                 for k, rounds in measured.items() if rounds}
        rel = [measured[k][i][key] / level[k] for _, k, i in seq]
        for t, (_, k, i) in enumerate(seq):
            factors[k][i] = statistics.median(rel[max(0, t - window):t + window + 1])
    return factors


def combine_rounds(rounds: Sequence[dict], key: str = "median_ms", factors: Sequence[float] | None = None) -> dict:
    """One entry from the statistics of several rounds, with every round's median and ``key`` value, the worst
    other-process share and the attempts of all rounds.

    With ``factors`` (``speed_factors``), ``key`` holds the median of the rounds' values divided by their factors
    (``round_speeds`` lists the factors), the other statistics are the round's whose normalised value is that
    median (the lower middle one for an even count). Without: for the min (``key`` "min_ms") it is the round with
    the fastest call; otherwise the round whose ``key`` value is the median of the rounds' (the lower one of the
    middle two for an even count), so one round spoilt by a slow spell of the machine does not move the entry."""
    if len(rounds) == 1 and factors is None:
        return dict(rounds[0])
    if factors is not None:
        normalised = [d[key] / f for d, f in zip(rounds, factors)]
        order = sorted(range(len(rounds)), key=lambda i: normalised[i])
        kept = {**rounds[order[(len(rounds) - 1) // 2]], key: statistics.median(normalised)}
        extra = {"round_speeds": [round(f, 4) for f in factors]}
    else:
        ordered = sorted(rounds, key=lambda d: d[key])
        kept = ordered[0] if key == "min_ms" else ordered[(len(rounds) - 1) // 2]
        extra = {}
    shares = [d["other_cpu"] for d in rounds if d.get("other_cpu") is not None]
    return {**kept, "rounds": len(rounds), "round_medians": [d["median_ms"] for d in rounds],
            "round_values": [d[key] for d in rounds], **extra, "other_cpu": max(shares) if shares else None,
            "attempts": sum(d.get("attempts", 1) for d in rounds)}


def normalised_rounds(entry: dict) -> list[float]:
    """An entry's round values each divided by its round's speed factor (as is, for an entry without them)."""
    values = entry.get("round_values", [])
    return [v / f for v, f in zip(values, entry.get("round_speeds") or [1.0] * len(values))]


def combine_all(measured: Mapping[str, Sequence[dict]], key: str, normalise: bool = True) -> dict[str, dict]:
    """``combine_rounds`` of every item, speed-normalised (``speed_factors``) when ``normalise`` and the rounds
    record when they were taken."""
    timed = normalise and any(d.get("at") is not None for rounds in measured.values() for d in rounds)
    factors = speed_factors(measured, key) if timed else {}
    return {k: combine_rounds(rounds, key, factors.get(k)) for k, rounds in measured.items()}


def rounds_combined(entries: Iterable[dict], statistic: str) -> str:
    """How ``combine_all`` made the figures of ``entries`` from their rounds, in words a table records."""
    if any("round_speeds" in e for e in entries):
        return "speed-normalised median of"
    return "fastest of" if statistic == "min" else "median round of"
