"""Provisioning build times for large fleets.

    python bench/provision_bench.py [--sizes 1000,10000]

For each size: a first build into an empty TFTP root (every file written and
flushed to disk), a rebuild with nothing changed (no file touched), and a
rebuild with one phone's display name changed, verifying through inode and
mtime that only that phone's file and the PJSIP include were rewritten.
Targets for 10,000 phones: first build under 3 s, one phone changed under 1 s.
With --baseline each size is first built with every SEP file checked and
serialized whole (the path before the two-part rendering), for comparison.
The machine's load average is printed with each run: on a shared machine the
same build takes longer when other work holds the cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from telefeatures.provisioning.build import apply_plan, plan_build
from telefeatures.provisioning.build_cache import BuildCache, default_cache_path
from telefeatures.provisioning.credentials import CredentialStore
from telefeatures.provisioning.inventory import parse_inventory
from telefeatures.provisioning.render import ConfigRenderer

SITE = """\
[site]
asterisk_address = "192.0.2.10"
time_zone = "America/Chicago"
ntp_server = "192.0.2.1"
[site.firmware]
"7961" = "SIP41.9-4-2SR3-1S"
"7941" = "SIP41.9-4-2SR3-1S"
[site.dial_rules]
extension_patterns = ["1...."]
outside_patterns = ["9.......", "91..........", "911", "9011*"]
"""


def fleet(count: int, changed: int | None = None) -> str:
    parts = [SITE]
    for n in range(count):
        name = f"User {n}" + (" (moved)" if n == changed else "")
        parts.append(
            f'[[phones]]\nmac = "0019E8{n:06X}"\nmodel = "{"7961" if n % 3 else "7941"}"\nlabel = "P{n}"\n'
            f'[[phones.lines]]\nextension = "{10000 + n}"\ndisplay_name = "{name}"\n'
        )
    return "\n".join(parts)


def state(directory: Path) -> dict[str, tuple[int, int]]:
    return {entry.name: (entry.inode(), entry.stat().st_mtime_ns) for entry in os.scandir(directory)}


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def build(text: str, root: Path, pjsip: Path, secrets: Path, whole: bool = False
          ) -> tuple[float, dict[str, float], object]:
    times: dict[str, float] = {}
    start, cpu = time.perf_counter(), cpu_seconds()
    inventory = parse_inventory(text)
    times["validate"] = time.perf_counter() - start
    mark = time.perf_counter()
    renderer = ConfigRenderer()
    renderer.split_sep = not whole
    plan = plan_build(inventory, root, renderer, CredentialStore.load(secrets), pjsip,
                      cache=BuildCache.load(default_cache_path(root)))
    times["render"] = time.perf_counter() - mark
    mark = time.perf_counter()
    report = apply_plan(plan)
    times["write"] = time.perf_counter() - mark
    times["cpu"] = cpu_seconds() - cpu  # this process and its render workers
    return time.perf_counter() - start, times, report


def run(count: int, workdir: Path, whole: bool = False) -> bool:
    name = f"{count}-whole" if whole else str(count)
    root = workdir / f"tftp-{name}"
    root.mkdir()
    pjsip, secrets = workdir / f"pjsip-{name}.conf", workdir / f"secrets-{name}.json"
    if whole:
        print(f"{count:>6} phones  baseline: every SEP file checked and serialized whole")

    def line(title: str, total: float, times: dict[str, float], report) -> None:
        parts = " ".join(f"{k} {v:.2f}s" for k, v in times.items())
        print(f"{count:>6} phones  {title + (' (whole)' if whole else ''):<30} {total:6.2f} s  ({parts}; {len(report.added)} added, "
              f"{len(report.changed)} changed, {len(report.unchanged)} unchanged)")

    total, times, report = build(fleet(count), root, pjsip, secrets, whole)
    line("first build", total, times, report)
    first = total
    before = state(root)
    total, times, report = build(fleet(count), root, pjsip, secrets, whole)
    line("rebuild, no change", total, times, report)
    ok = state(root) == before and not report.added and not report.changed
    target = count // 2
    before = state(root)
    total, times, report = build(fleet(count, changed=target), root, pjsip, secrets, whole)
    line("rebuild, one changed", total, times, report)
    if count == 10000:
        print(f"{'':>6}         targets: first build {first:.2f} s < 3 s {'met' if first < 3 else 'NOT met'}, "
              f"one changed {total:.2f} s < 1 s {'met' if total < 1 else 'NOT met'} "
              f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    after = state(root)
    rewritten = sorted(name for name in after if after[name] != before.get(name))
    expected = [f"SEP0019E8{target:06X}.cnf.xml"]
    ok = ok and rewritten == expected and [p.name for p in report.changed] == [expected[0], pjsip.name]
    print(f"{'':>6}         only {expected[0]} (and the PJSIP include) rewritten: {'yes' if ok else 'NO'}"
          + ("" if ok else f" -> {rewritten[:5]}"))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated fleet sizes")
    parser.add_argument("--baseline", action="store_true",
                        help="first build each size with every SEP file done whole, for comparison")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="provision-bench-", dir=os.environ.get("BENCH_DIR")) as tmp:
        results = [run(int(size), Path(tmp), whole)
                   for size in args.sizes.split(",") for whole in ([True, False] if args.baseline else [False])]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
