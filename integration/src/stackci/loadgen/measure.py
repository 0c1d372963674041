"""Measuring a load: workers keep the load running while windows are measured one after
another, until the last `stable_windows` agree (perf_analyzer's criterion: throughput and
average latency each within `stability_percentage` of their mean over those windows), or
`max_trials` windows have passed (then the result is marked unstable).

Concurrency mode keeps N requests outstanding (N workers, each sending its next request when
its last one is answered); request-rate mode sends on a schedule (constant intervals, or
exponential ones for Poisson arrivals) from a pool of workers, whatever the answers' speed.
"""

from __future__ import annotations

import itertools
import queue
import random
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from stackci.loadgen.inputs import input_sets


@dataclass(frozen=True)
class Settings:
    url: str
    model: str
    batch_size: int = 1
    window_s: float = 5.0
    stability_percentage: float = 10.0
    stable_windows: int = 3
    max_trials: int = 10
    max_threads: int = 64  # request-rate mode
    distribution: str = "constant"  # constant | poisson
    seed: int = 0
    shapes: tuple = ()  # ((input, (dims...)), ...): perf_analyzer's --shape
    input_data: str = "random"  # random | zero | a JSON file (perf_analyzer's --input-data)

    def requests(self, client) -> tuple[list[list], list]:
        """The input sets sent in turn, and the outputs asked for."""
        return input_sets(client, self.model, self.batch_size, self.seed, dict(self.shapes),
                          self.input_data)


@dataclass
class Measurement:
    """One point: perf_analyzer's figures (latencies in microseconds)."""

    mode: str  # concurrency | request_rate
    level: float
    batch_size: int
    throughput: float = 0.0  # inferences per second
    requests: int = 0
    errors: int = 0
    p50_us: float = 0.0
    p90_us: float = 0.0
    p95_us: float = 0.0
    p99_us: float = 0.0
    avg_us: float = 0.0
    server_queue_us: float = 0.0
    server_compute_input_us: float = 0.0
    server_compute_infer_us: float = 0.0
    server_compute_output_us: float = 0.0
    avg_batch: float = 0.0  # inferences per execution on the server
    windows: int = 0
    stable: bool = False
    error_messages: list[str] = field(default_factory=list)

    @property
    def network_us(self) -> float:
        server = self.server_queue_us + self.server_compute_input_us + \
            self.server_compute_infer_us + self.server_compute_output_us
        return max(0.0, self.avg_us - server)


class _Recorder:
    def __init__(self):
        self._lock = threading.Lock()
        self.done: list[tuple[float, float]] = []  # (end time, latency s)
        self.errors: list[tuple[float, str]] = []

    def ok(self, end: float, latency: float) -> None:
        with self._lock:
            self.done.append((end, latency))

    def failed(self, end: float, message: str) -> None:
        with self._lock:
            self.errors.append((end, message))

    def between(self, start: float, end: float):
        with self._lock:
            latencies = [lat for t, lat in self.done if start <= t < end]
            errors = [m for t, m in self.errors if start <= t < end]
        return latencies, errors


def _client(url: str):
    import tritonclient.http as httpclient

    return httpclient.InferenceServerClient(url, connection_timeout=60, network_timeout=300)


def _send(client, settings: Settings, inputs, outputs, recorder: _Recorder) -> None:
    started = time.perf_counter()
    try:
        client.infer(settings.model, inputs, outputs=outputs)
    except Exception as exc:  # an answer with an error: counted, the load goes on
        recorder.failed(time.perf_counter(), str(exc).splitlines()[0][:200])
        return
    end = time.perf_counter()
    recorder.ok(end, end - started)


def measure_concurrency(settings: Settings, concurrency: int, progress=None) -> Measurement:
    recorder, stop = _Recorder(), threading.Event()
    probe = _client(settings.url)
    sets, outputs = _requests(settings, probe)

    def worker(first: int):
        client = _client(settings.url)
        try:
            for sent in itertools.count(first):
                if stop.is_set():
                    break
                _send(client, settings, sets[sent % len(sets)], outputs, recorder)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(k,), daemon=True)
               for k in range(concurrency)]
    return _run(settings, "concurrency", concurrency, threads, stop, recorder, probe, progress)


def measure_rate(settings: Settings, rate: float, progress=None) -> Measurement:
    """Requests per second `rate`, scheduled from the start (a late request is sent at once:
    its latency counts from when it was sent, as perf_analyzer's does)."""
    recorder, stop = _Recorder(), threading.Event()
    probe = _client(settings.url)
    sets, outputs = _requests(settings, probe)
    due: queue.Queue = queue.Queue(maxsize=settings.max_threads * 4)
    rng, counter = random.Random(settings.seed), itertools.count()

    def schedule():
        moment = time.perf_counter()
        while not stop.is_set():
            moment += rng.expovariate(rate) if settings.distribution == "poisson" else 1 / rate
            sent = next(counter)
            while not stop.is_set():
                try:
                    due.put((moment, sets[sent % len(sets)]), timeout=0.1)
                    break
                except queue.Full:
                    continue

    def worker():
        client = _client(settings.url)
        try:
            while not stop.is_set():
                try:
                    moment, inputs = due.get(timeout=0.1)
                except queue.Empty:
                    continue
                delay = moment - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                _send(client, settings, inputs, outputs, recorder)
        finally:
            client.close()

    threads = [threading.Thread(target=schedule, daemon=True)] + [
        threading.Thread(target=worker, daemon=True) for _ in range(settings.max_threads)]
    return _run(settings, "request_rate", rate, threads, stop, recorder, probe, progress)


def _run(settings, mode, level, threads, stop, recorder, probe, progress) -> Measurement:
    for thread in threads:
        thread.start()
    windows: list[Measurement] = []
    try:
        while len(windows) < settings.max_trials:
            before, start = _server_stats(probe, settings.model), time.perf_counter()
            time.sleep(settings.window_s)
            end, after = time.perf_counter(), _server_stats(probe, settings.model)
            latencies, errors = recorder.between(start, end)
            window = _window(settings, mode, level, latencies, errors, end - start, before, after)
            windows.append(window)
            if progress is not None:
                progress(window, len(windows))
            if _stable(windows, settings) or _all_failed(window):
                break
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        probe.close()
    return _combine(windows[-settings.stable_windows:], len(windows), _stable(windows, settings))


def _requests(settings: Settings, probe) -> tuple[list[list], list]:
    try:
        return settings.requests(probe)
    except BaseException:
        probe.close()
        raise


def _all_failed(window: Measurement) -> bool:
    """Every request of the window answered an error: measuring on would repeat it (the
    command shows the errors; perf_analyzer stops at the first one)."""
    return window.errors > 0 and window.requests == 0


def _server_stats(client, model: str) -> dict:
    stats = client.get_inference_statistics(model)["model_stats"]
    total = {"count": 0, "executions": 0, "inferences": 0}
    for phase in ("queue", "compute_input", "compute_infer", "compute_output"):
        total[phase] = 0
    for entry in stats:
        total["executions"] += entry["execution_count"]
        total["inferences"] += entry["inference_count"]
        total["count"] += entry["inference_stats"]["success"]["count"]
        for phase in ("queue", "compute_input", "compute_infer", "compute_output"):
            total[phase] += entry["inference_stats"][phase]["ns"]
    return total


def _window(settings, mode, level, latencies, errors, seconds, before, after) -> Measurement:
    m = Measurement(mode, level, settings.batch_size, requests=len(latencies),
                    errors=len(errors), windows=1, error_messages=sorted(set(errors))[:3])
    m.throughput = len(latencies) * settings.batch_size / seconds
    if latencies:
        us = np.asarray(latencies) * 1e6
        m.p50_us, m.p90_us, m.p95_us, m.p99_us = (float(np.percentile(us, q))
                                                  for q in (50, 90, 95, 99))
        m.avg_us = float(us.mean())
    count = after["count"] - before["count"]
    if count > 0:
        m.server_queue_us = (after["queue"] - before["queue"]) / count / 1e3
        m.server_compute_input_us = (after["compute_input"] - before["compute_input"]) / count / 1e3
        m.server_compute_infer_us = (after["compute_infer"] - before["compute_infer"]) / count / 1e3
        m.server_compute_output_us = \
            (after["compute_output"] - before["compute_output"]) / count / 1e3
    executions = after["executions"] - before["executions"]
    if executions > 0:
        m.avg_batch = (after["inferences"] - before["inferences"]) / executions
    return m


def _stable(windows: list[Measurement], settings: Settings) -> bool:
    last = windows[-settings.stable_windows:]
    if len(last) < settings.stable_windows or any(w.requests == 0 for w in last):
        return False
    bound = settings.stability_percentage / 100
    for values in ([w.throughput for w in last], [w.avg_us for w in last]):
        mean = sum(values) / len(values)
        if any(abs(v - mean) > bound * mean for v in values):
            return False
    return True


def _combine(windows: list[Measurement], trials: int, stable: bool) -> Measurement:
    """The point: the stable windows' means (perf_analyzer reports the same)."""
    first = windows[0]
    m = Measurement(first.mode, first.level, first.batch_size, windows=trials, stable=stable)
    weights = [w.requests for w in windows]
    total = sum(weights) or 1
    m.requests = sum(weights)
    m.errors = sum(w.errors for w in windows)
    m.error_messages = sorted({e for w in windows for e in w.error_messages})[:3]
    m.throughput = sum(w.throughput for w in windows) / len(windows)
    for name in ("p50_us", "p90_us", "p95_us", "p99_us", "avg_us", "server_queue_us",
                 "server_compute_input_us", "server_compute_infer_us",
                 "server_compute_output_us", "avg_batch"):
        setattr(m, name, sum(getattr(w, name) * n for w, n in zip(windows, weights)) / total)
    return m
