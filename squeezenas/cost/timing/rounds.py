"""One figure from several round-robin rounds of the same measurement (a table's part, a check's network, a
benchmark): the fastest round for the min, the median round otherwise."""

from __future__ import annotations


def combine_rounds(rounds: list[dict], key: str = "median_ms") -> dict:
    """One entry from the statistics of several rounds, with every round's median and ``key`` value, the worst
    other-process share and the attempts of all rounds.

    For the min (``key`` "min_ms") it is the round with the fastest call: the min over all of them. Otherwise
    it is the round whose ``key`` value is the median of the rounds' (the lower one of the middle two for an
    even count), so one round spoilt by a slow spell of the machine does not move the entry."""
    if len(rounds) == 1:
        return dict(rounds[0])
    ordered = sorted(rounds, key=lambda d: d[key])
    kept = ordered[0] if key == "min_ms" else ordered[(len(rounds) - 1) // 2]
    shares = [d["other_cpu"] for d in rounds if d.get("other_cpu") is not None]
    return {**kept, "rounds": len(rounds), "round_medians": [d["median_ms"] for d in rounds],
            "round_values": [d[key] for d in rounds], "other_cpu": max(shares) if shares else None,
            "attempts": sum(d.get("attempts", 1) for d in rounds)}
