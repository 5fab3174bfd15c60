"""Summarise a profile of the proxy by package: where does the time go per relayed delta?

Reads either py-spy's raw output (``py-spy record --format raw``: one line per distinct stack,
``frame;frame;...;frame COUNT``, root first; the same "collapsed stack" text speedscope and
flamegraph.pl open) or a cProfile/pstats file, and prints:

* per package (hypercorn, h11, trio, quart, trioproxy, orjson/others by name, stdlib, other):
  **self** (the sampled frame itself was in that package), **self + stdlib** (the innermost frame
  *not* in the standard library or a builtin: ``socket.send`` called from Trio counts for Trio,
  which is who chose to call it), and **in stack** (the package appears anywhere in the task's
  stack below Trio's run loop, py-spy only; samples in the run loop itself count for Trio);
* the top functions by self time and by cumulative time (again below the run loop, so the
  entries are what tasks spend their time in, not ``main`` and ``trio.run`` at 100 %).

Run on its own: ``python bench/profile_summary.py bench/results/streams-profile.txt --top 20``.
``bench/streams.py --profile K`` calls it after profiling the proxy at K streams.
"""

from __future__ import annotations

import argparse
import pstats
import re
import sys
import sysconfig
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

_FRAME_RE = re.compile(r"^(?P<func>.*) \((?P<path>.*?)(?::(?P<line>\d+))?\)$")
_STDLIB = str(Path(sysconfig.get_paths()["stdlib"]).resolve())
_GROUPS = ("hypercorn", "h11", "trio", "quart", "quart_trio", "trioproxy", "orjson", "httpx")
_ALIASES = {"quart_trio": "quart"}  # one adapter layer: count Quart-Trio with Quart
_NOT_OWNERS = ("stdlib", "builtin")
_IDLE_WAITS = frozenset({"<method 'poll' of 'select.epoll' objects>",
                         "<method 'control' of 'select.kqueue' objects>",
                         "<built-in method select.select>"})
_RUN_LOOP = "unrolled_run ("  # trio._core._run.unrolled_run, the scheduler loop
_RUN_LOOP_FUNCS = frozenset({"run", "unrolled_run", "get_events"})


def package_of(path: str) -> str:
    """The package a frame's file belongs to: an installed package's name, stdlib, builtin, other."""
    if path.startswith("<frozen"):
        return "stdlib"
    if path == "~" or path.startswith("<built-in"):
        return "builtin"
    if path.startswith("<attrs generated"):  # e.g. "<attrs generated init trio._core._run.X>"
        name = path.rstrip(">").split()[-1].split(".", 1)[0]
        return _ALIASES.get(name, name)
    parts = Path(path).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts and parts.index(marker) + 1 < len(parts):
            name = parts[parts.index(marker) + 1].removesuffix(".py").split(".", 1)[0]
            return _ALIASES.get(name, name)
    if "trioproxy" in parts:
        return "trioproxy"
    if path.startswith(_STDLIB):
        return "stdlib"
    if parts and not Path(path).is_absolute() and parts[0] in _GROUPS:
        return _ALIASES.get(parts[0], parts[0])  # py-spy without --full-filenames
    return "other"


def short_path(path: str) -> str:
    parts = Path(path).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            return "/".join(parts[parts.index(marker) + 1 :])
    if path.startswith(_STDLIB):
        return str(Path(path).relative_to(_STDLIB))
    if "trioproxy" in parts:
        return "/".join(parts[parts.index("trioproxy") :])
    return path


@dataclass
class Profile:
    source: str  # "py-spy" or "cProfile"
    unit: str  # "samples" or "s"
    total: float = 0.0
    self_by_func: Counter[str] = field(default_factory=Counter)
    cum_by_func: Counter[str] = field(default_factory=Counter)
    pkg_of_func: dict[str, str] = field(default_factory=dict)
    self_by_pkg: Counter[str] = field(default_factory=Counter)
    owner_by_pkg: Counter[str] = field(default_factory=Counter)
    stack_by_pkg: Counter[str] | None = None
    idle: float = 0.0  # cProfile: time in the I/O wait, left out of ``total``

    def as_dict(self, top: int) -> dict[str, object]:
        def pct(value: float) -> float:
            return round(100 * value / self.total, 1) if self.total else 0.0

        return {
            "source": self.source,
            "total": round(self.total, 3),
            "idle_s": round(self.idle, 3),
            "unit": self.unit,
            "by_package": {
                pkg: {
                    "self_pct": pct(self.self_by_pkg[pkg]),
                    "self_plus_stdlib_pct": pct(self.owner_by_pkg[pkg]),
                    "in_stack_pct": pct(self.stack_by_pkg[pkg]) if self.stack_by_pkg else None,
                }
                for pkg in self.packages()
            },
            "top_self": [[f, pct(v)] for f, v in self.self_by_func.most_common(top)],
            "top_cumulative": [[f, pct(v)] for f, v in self.cum_by_func.most_common(top)],
        }

    def packages(self) -> list[str]:
        seen = Counter(self.self_by_pkg) + Counter(self.owner_by_pkg)
        return [pkg for pkg, _ in seen.most_common()]


def _frame(text: str) -> tuple[str, str]:
    """(display name, package) of one py-spy frame ``func (path:line)``."""
    match = _FRAME_RE.match(text)
    if not match:
        return text, "other"
    path = match["path"]
    return f"{match['func']} ({short_path(path)})", package_of(path)


def from_pyspy_raw(path: Path) -> Profile:
    prof = Profile("py-spy", "samples", stack_by_pkg=Counter())
    assert prof.stack_by_pkg is not None
    cache: dict[str, tuple[str, str]] = {}
    for line in path.read_text(errors="replace").splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = []
        for raw in stack_text.split(";"):
            if raw not in cache:
                cache[raw] = _frame(raw)
            frames.append(cache[raw])
        # Every Trio task's stack starts main -> trio.run -> unrolled_run; those roots are in
        # every sample and say nothing, so "in stack" and "cumulative" start below the run loop.
        loop = max((i for i, (name, _) in enumerate(frames) if name.startswith(_RUN_LOOP)),
                   default=-1)
        task_frames = frames[loop + 1 :] or frames[-1:]
        prof.total += count
        leaf_name, leaf_pkg = frames[-1]
        prof.self_by_func[leaf_name] += count
        prof.self_by_pkg[leaf_pkg] += count
        owner = next((pkg for _, pkg in reversed(frames) if pkg not in _NOT_OWNERS), leaf_pkg)
        prof.owner_by_pkg[owner] += count
        for name, pkg in frames:
            prof.pkg_of_func[name] = pkg
        for name in {name for name, _ in task_frames}:
            prof.cum_by_func[name] += count
        for pkg in {pkg for _, pkg in task_frames}:
            prof.stack_by_pkg[pkg] += count
    return prof


def from_pstats(path: Path) -> Profile:
    """cProfile has no stacks: "self + stdlib" charges a stdlib/builtin function's own time to
    its direct callers' packages, in proportion to the time it spent under each."""
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    prof = Profile("cProfile", "s")

    def name_pkg(key: tuple[str, int, str]) -> tuple[str, str]:
        filename, line, func = key
        if filename == "~":
            return func, "builtin"
        return f"{func} ({short_path(filename)}:{line})", package_of(filename)

    idle_keys = {key for key in stats if key[0] == "~" and key[2] in _IDLE_WAITS}
    prof.idle = sum(stats[key][2] for key in idle_keys)  # Trio waiting for I/O: not CPU
    for key, (_cc, _nc, tt, ct, callers) in stats.items():
        name, pkg = name_pkg(key)
        if key in idle_keys:
            continue
        prof.total += tt
        prof.self_by_func[name] += tt
        if pkg != "builtin" and not (pkg == "trio" and key[2] in _RUN_LOOP_FUNCS):
            # as for py-spy, "cumulative" lists what tasks spend time in: not the run loop
            # (its cumulative time holds the I/O wait) nor the builtins resuming every coroutine
            prof.cum_by_func[name] = max(prof.cum_by_func[name], ct)
        prof.pkg_of_func[name] = pkg
        prof.self_by_pkg[pkg] += tt
        if pkg not in _NOT_OWNERS:
            prof.owner_by_pkg[pkg] += tt
            continue
        shares = {caller: value[2] for caller, value in callers.items()}
        spread = sum(shares.values())
        if not spread:
            prof.owner_by_pkg[pkg] += tt
            continue
        for caller, share in shares.items():
            prof.owner_by_pkg[name_pkg(caller)[1]] += tt * share / spread
    return prof


def load(path: Path) -> Profile:
    """A ``.prof``/``.pstats`` file is cProfile's; anything else is py-spy's raw text."""
    return from_pstats(path) if path.suffix in (".prof", ".pstats") else from_pyspy_raw(path)


def render(prof: Profile, top: int = 15) -> str:
    total = prof.total or 1.0

    def pct(value: float) -> str:
        return f"{100 * value / total:5.1f}%"

    out = [f"{prof.source}: {prof.total:.0f} {prof.unit}" if prof.unit == "samples"
           else f"{prof.source}: {prof.total:.2f} s of own time (profiler overhead inflates it;"
                f" {prof.idle:.2f} s waiting for I/O left out)"]
    out.append("")
    out.append("| package | self | self + stdlib it called | in stack |")
    out.append("|---|---:|---:|---:|")
    for pkg in prof.packages():
        stack = pct(prof.stack_by_pkg[pkg]) if prof.stack_by_pkg is not None else "n/a"
        out.append(f"| {pkg} | {pct(prof.self_by_pkg[pkg])} | {pct(prof.owner_by_pkg[pkg])} "
                   f"| {stack} |")
    for title, counter in (("self", prof.self_by_func), ("cumulative", prof.cum_by_func)):
        out.append("")
        out.append(f"Top {top} functions by {title} time:")
        out.append("")
        for name, value in counter.most_common(top):
            out.append(f"  {pct(value)}  [{prof.pkg_of_func.get(name, '?')}] {name}")
    return "\n".join(out)


#: issue #14's budget of a non-streaming request, attributed top-down: a py-spy sample goes to the
#: first part whose marker frame (function name, without the file) its stack holds
BUDGET_PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("the answer's way out: ASGI send → Hypercorn HTTPStream → h11 → os.write",
     ("UnreadBodyGuard.send", "HTTPStream.app_send")),
    ("the upstream exchange (upstream/http11: encode, write, wait, read, parse)",
     ("Http11Provider.send", "Http11Pool.request", "Http11Response.aread", "Http11Response.read_some")),
    ("routing (plan, strategy, request facts, router)",
     ("Router.send", "Router.resolve", "call_with_plan", "request_facts", "Routing.plan", "Pipeline._call_upstream")),
    ("the answer: JSON parse, usage, cost, headers, outcome, metrics",
     ("Pipeline._complete", "RequestRun.succeed", "RequestRun.settle_cost", "RequestRun.settle_attempt")),
    ("parsing and checking the request, identity, key rules",
     ("parse_body", "Identity.user_api_key_auth", "apply_model_guardrails", "AccessGate.authorize")),
    ("the pipeline's entry and exit (context, run, observers, shutdown tracking)",
     ("Pipeline.handle",)),
    ("the fast path's own glue (route gate, reading the body, header dicts, cancel scope)",
     ("ProxyASGI.__call__",)),
    ("Hypercorn's request side: read loop, h11 parsing, HTTPStream, the task per request",
     ("TCPServer.run", "_handle", "HeadDeadlineTCPServer._watch_idle")),
)


def budget(path: Path) -> str:
    """The share of a py-spy raw profile in each of :data:`BUDGET_PARTS` (the rest: Trio's loop)."""
    counts = {label: 0.0 for label, _ in BUDGET_PARTS}
    rest = total = 0.0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = float(count)
        total += n
        names = {frame.split(" (", 1)[0] for frame in stack.split(";")}
        for label, markers in BUDGET_PARTS:
            if any(marker in names for marker in markers):
                counts[label] += n
                break
        else:
            rest += n
    total = total or 1.0
    out = [f"{path}: {total:.0f} samples", "", "| part | share of the proxy's CPU |", "|---|---:|"]
    out += [f"| {label} | {100 * value / total:.1f} % |" for label, value in counts.items()]
    out.append(f"| Trio's run loop outside any of these (wake-ups, epoll) | {100 * rest / total:.1f} % |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path, help="py-spy raw output or a cProfile .prof file")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--budget", action="store_true",
                        help="py-spy raw profile of non-streaming requests: issue #14's budget table")
    args = parser.parse_args(argv)
    print(budget(args.profile) if args.budget else render(load(args.profile), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
