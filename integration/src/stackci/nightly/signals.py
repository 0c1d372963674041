"""SIGTERM and SIGHUP end a night the way SIGINT (Ctrl-C) does: the main thread gets a
KeyboardInterrupt (errors.Stopped, naming the signal), the running jobs are recorded
`not_run` (interrupted) and their process groups killed, the run is marked interrupted and
stays resumable. A second signal during that cleanup is ignored, so the cleanup finishes."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

from stackci.errors import Stopped

STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def stop_on_signals():
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread (tests run nights elsewhere)
        return
    previous = {signum: signal.getsignal(signum) for signum in STOPPING}

    def stop(signum, _frame):
        for other in STOPPING:  # one stop at a time: the cleanup must not be cut short
            signal.signal(other, signal.SIG_IGN)
        raise Stopped(signum)

    for signum in STOPPING:
        signal.signal(signum, stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
