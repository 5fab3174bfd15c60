"""Run ``python -m trioproxy ...`` with cProfile switched on and off by signals.

``python bench/cprofile_run.py OUT.prof run CONFIG --port N ...``: SIGUSR1 starts profiling,
SIGUSR2 stops it and writes ``OUT.prof``. ``bench/streams.py --profiler cprofile`` (the fallback
when py-spy cannot attach) sends them at the edges of its measured window, so the profile holds
the steady state only: not the imports and start-up that ``python -m cProfile`` would include.

Why signals work here: Python runs signal handlers in the main thread between bytecodes, and the
main thread is the Trio thread (Trio only adds a wakeup fd, it leaves other handlers alone), so
``enable()`` profiles exactly the thread that serves requests. Writing the file blocks that thread
for a moment, once, at the end of the window. The module is run with ``runpy`` rather than by
importing its CLI function, so this keeps working when the package's modules move.
"""

from __future__ import annotations

import cProfile
import os
import runpy
import signal
import sys


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: cprofile_run.py OUT.prof TRIOPROXY-ARGS...")
    out = sys.argv[1]
    profiler = cProfile.Profile()

    def start(signum: int, frame: object) -> None:
        profiler.enable()

    def stop(signum: int, frame: object) -> None:
        profiler.disable()
        profiler.dump_stats(out + ".tmp")
        os.replace(out + ".tmp", out)  # whoever waits for OUT sees it whole

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    sys.argv = ["trioproxy", *sys.argv[2:]]
    runpy.run_module("trioproxy", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
