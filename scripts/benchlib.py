"""Shared helpers for the benchmark scripts: run a command, measure wall time and peak RSS."""
import statistics, subprocess, sys, time


def run(cmd, env, ok_codes=(0,)):
    """Wall seconds and peak RSS (KiB) of one command; exits loudly on an unexpected code."""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if p.returncode not in ok_codes:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd[:4])}…\n{p.stderr[-2000:]}")
    return wall, int(p.stderr.strip().splitlines()[-1])


def median(samples, i):
    return statistics.median(s[i] for s in samples)
