"""Run local processes as a stack: start each in order, wait until it is ready, prefix its logs, stop all.

Each component runs in its own session so that Ctrl-C reaches only the supervisor, which then stops the
components in reverse start order: SIGTERM first, SIGKILL for any still running after the grace period.
"""

import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from rich.console import Console
from rich.text import Text

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 20
COLORS = ["cyan", "magenta", "green", "yellow", "blue", "bright_red", "bright_cyan", "bright_magenta", "bright_green"]


class ComponentFailed(RuntimeError):
    """A component exited or did not become ready in time; the message carries the reason and its last log lines."""

    def __init__(self, name: str, reason: str, tail: list[str]) -> None:
        lines = "\n".join(f"    {line}" for line in tail) or "    (no output)"
        super().__init__(f"{name} failed to start: {reason}\n  last log lines:\n{lines}")
        self.name = name
        self.reason = reason


@dataclass
class Component:
    """A process to run. Readiness is a probe function, a log line pattern, or both."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    url: str | None = None
    ready: Callable[[], bool] | None = None
    ready_log: str | None = None
    ready_timeout: float = 60.0
    user: str | None = None
    cwd: Path | None = None
    stop_signal: int = signal.SIGTERM
    stop_grace: float = 15.0


class Process:
    def __init__(self, component: Component, popen: subprocess.Popen, log_path: Path) -> None:
        self.component = component
        self.popen = popen
        self.log_path = log_path
        self.tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self.ready_seen = threading.Event()
        self.reader: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.component.name


class Supervisor:
    def __init__(self, log_dir: Path, *, echo: bool = True, console: Console | None = None) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.echo = echo
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.processes: list[Process] = []
        self._width = 12

    def start(self, component: Component) -> Process:
        """Start a component and block until it is ready, raising ComponentFailed otherwise."""
        log_path = self.log_dir / f"{component.name}.log"
        env = {**os.environ, **component.env}
        logger.info("starting %s: %s", component.name, " ".join(component.argv))
        try:
            popen = subprocess.Popen(
                component.argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=component.cwd,
                user=component.user,
                group=component.user,
                extra_groups=[] if component.user else None,
                start_new_session=True,
            )
        except OSError as exc:
            raise ComponentFailed(component.name, f"cannot execute {component.argv[0]}: {exc}", []) from None

        process = Process(component, popen, log_path)
        color = COLORS[len(self.processes) % len(COLORS)]
        process.reader = threading.Thread(target=self._pump, args=(process, color), name=f"log-{component.name}", daemon=True)
        process.reader.start()
        self.processes.append(process)
        self._wait_ready(process)
        return process

    def _pump(self, process: Process, color: str) -> None:
        pattern = re.compile(process.component.ready_log) if process.component.ready_log else None
        prefix = f"{process.name:<{self._width}}|"
        with open(process.log_path, "a", encoding="utf-8", errors="replace") as log_file:
            for raw in process.popen.stdout:
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                log_file.write(line + "\n")
                log_file.flush()
                process.tail.append(line)
                if pattern is not None and pattern.search(line):
                    process.ready_seen.set()
                if self.echo:
                    # One print call per line, so lines from concurrent components never interleave.
                    self.console.print(Text.assemble((prefix + " ", color), line))

    def _wait_ready(self, process: Process) -> None:
        component = process.component
        deadline = time.monotonic() + component.ready_timeout
        while time.monotonic() < deadline:
            code = process.popen.poll()
            if code is not None:
                process.reader.join(timeout=2)
                raise ComponentFailed(component.name, f"exited with code {code}", list(process.tail))
            log_ok = component.ready_log is None or process.ready_seen.is_set()
            probe_ok = component.ready is None or _probe(component.ready)
            if log_ok and probe_ok:
                logger.info("%s is ready%s", component.name, f" at {component.url}" if component.url else "")
                return
            time.sleep(0.2)
        raise ComponentFailed(
            component.name, f"not ready after {component.ready_timeout:.0f} s (see {process.log_path})", list(process.tail)
        )

    def failed(self) -> Process | None:
        """Return the first component that has exited, if any."""
        return next((process for process in self.processes if process.popen.poll() is not None), None)

    def stop_all(self) -> None:
        """Stop every component in reverse start order; SIGKILL what is still running after its grace period.

        Descendants are collected before the stop signal, because some (BentoML's service workers) run in
        sessions of their own: they survive a kill of the component's process group and would outlive it.
        """
        for process in reversed(self.processes):
            if process.popen.poll() is None:
                descendants = _descendants(process.popen.pid)
                _signal(process.popen, process.component.stop_signal)
                try:
                    process.popen.wait(timeout=process.component.stop_grace)
                except subprocess.TimeoutExpired:
                    logger.warning("%s did not stop within %.0f s, killing it", process.name, process.component.stop_grace)
                    _signal(process.popen, signal.SIGKILL)
                    process.popen.wait(timeout=5)
                _kill_survivors(process.name, descendants)
            if process.reader is not None:
                process.reader.join(timeout=2)
            logger.info("%s stopped (exit code %s)", process.name, process.popen.returncode)
        self.processes.clear()


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _kill_survivors(name: str, descendants: list[psutil.Process]) -> None:
    """SIGKILL the descendants that outlived their component, after a short grace."""
    _, alive = psutil.wait_procs(descendants, timeout=2)
    for child in alive:
        logger.warning("%s left process %d running after it stopped, killing it", name, child.pid)
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


def _probe(check: Callable[[], bool]) -> bool:
    try:
        return bool(check())
    except Exception:  # noqa: BLE001 - a probe that raises only means "not ready yet"
        return False


def _signal(popen: subprocess.Popen, signum: int) -> None:
    # SIGTERM goes to the component's main process, which shuts its own children down (Celery's pool,
    # PostgreSQL's backends). SIGKILL goes to the whole process group, which the component leads.
    try:
        if signum == signal.SIGKILL:
            os.killpg(popen.pid, signum)
        else:
            popen.send_signal(signum)
    except ProcessLookupError:
        pass
