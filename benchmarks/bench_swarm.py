"""A million-particle swarm through the command line, as a user would run it: wall time, peak resident
memory and the size of the files written, for

    descent run --starts random:1000000 --steps 1000 --save summary

and the time it takes the same request saving every step to be refused (with its estimate).
Targets (issue 8): under 3 minutes, under 1.5 GB resident, files under 50 MB; the refusal at once.

    .venv/bin/python benchmarks/bench_swarm.py [--particles 1000000] [--steps 1000]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DESCENT = Path(sys.executable).with_name("descent")


def run(args: list[str]) -> tuple[float, int, subprocess.CompletedProcess]:
    """Wall seconds, peak resident kB of the child and the finished process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run([str(DESCENT), *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before), done


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--particles", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "swarm"
        common = [
            "run",
            "--starts",
            f"random:{args.particles}",
            "--steps",
            str(args.steps),
            "--out",
            str(out),
        ]
        refused_s, _, refused = run(common)
        seconds, peak_kb, done = run([*common, "--save", "summary"])
        if done.returncode != 0:
            raise SystemExit(done.stdout + done.stderr)
        files = {p.name: p.stat().st_size for p in out.iterdir()}
    result = {
        "command": "descent " + " ".join([*common[:-2], "--save", "summary"]),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "seconds": round(seconds, 1),
        "peak_resident_MB": round(peak_kb / 1024, 1),
        "files_bytes": files,
        "refused_every_step_in_s": round(refused_s, 2),
        "refusal": " ".join(refused.stdout.split())[:400],
        "summary": " ".join(done.stdout.split())[:600],
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
