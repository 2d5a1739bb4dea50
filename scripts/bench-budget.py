#!/usr/bin/env python3
"""The measured budget of `draft bench efficiency`: the sum of its runs' training times, with the time the
process was stopped taken out.

The benchmark appends one line per run to <out>/progress.jsonl with the run's training wall time and the
Unix times at which its work began and ended (`started_at`, `finished_at`). When the process is paused
(SIGSTOP / SIGCONT, e.g. while the machine builds), the pauses go to a log of lines "stop <unix time> ..."
/ "cont <unix time> ...". A run's time is finished_at - started_at minus the paused seconds in between.

    scripts/bench-budget.py docs/data/bench-efficiency/progress.jsonl docs/data/bench-efficiency/pauses.log
"""
import json
import sys


def pauses(path):
    intervals, stopped = [], None
    try:
        lines = open(path).read().split("\n")
    except FileNotFoundError:
        return intervals
    for line in lines:
        parts = line.split()
        if len(parts) < 2:
            continue
        kind, when = parts[0], float(parts[1])
        if kind == "stop" and stopped is None:
            stopped = when
        elif kind == "cont" and stopped is not None:
            intervals.append((stopped, when))
            stopped = None
    return intervals


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    stops = pauses(sys.argv[2])
    runs, total, unplaced = [], 0.0, 0
    for line in open(sys.argv[1]):
        if not line.strip():
            continue
        rec = json.loads(line)
        if "wall_time" not in rec:  # skipped or failed: no training in this line
            continue
        wall = rec["wall_time"]
        paused = 0.0
        if "finished_at" in rec:
            # started_at..finished_at also holds the second-η evaluation; older lines have only finished_at.
            end = rec["finished_at"]
            start = rec.get("started_at", end - wall)
            wall = end - start
            paused = sum(max(0.0, min(end, b) - max(start, a)) for a, b in stops)
        else:
            unplaced += 1
        active = wall - paused
        total += active
        runs.append((rec["dir"], wall, paused, active))
    width = max((len(r[0]) for r in runs), default=3)
    print(f"{'run':<{width}}  {'wall s':>8}  {'paused s':>8}  {'active s':>8}")
    for d, wall, paused, active in runs:
        print(f"{d:<{width}}  {wall:8.1f}  {paused:8.1f}  {active:8.1f}")
    print(f"{len(runs)} runs, {total:.0f} s active = {total / 3600:.2f} h"
          + (f" ({unplaced} runs without finished_at: wall time counted whole)" if unplaced else ""))


if __name__ == "__main__":
    main()
