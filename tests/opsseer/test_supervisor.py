"""The process supervisor: readiness, failure reports with reasons, ordered shutdown."""

import sys

import psutil
import pytest

from opsseer.supervisor import Component, ComponentFailed, Supervisor


@pytest.fixture
def supervisor(tmp_path):
    supervisor = Supervisor(tmp_path / "logs", echo=False)
    yield supervisor
    supervisor.stop_all()


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_ready_log_line_marks_ready(supervisor, tmp_path):
    process = supervisor.start(
        Component(name="echoer", argv=python("import time; print('booting'); print('ready now', flush=True); time.sleep(60)"), ready_log="ready now")
    )

    assert process.popen.poll() is None
    assert "booting" in (tmp_path / "logs" / "echoer.log").read_text()


def test_exit_before_ready_reports_code_and_output(supervisor):
    with pytest.raises(ComponentFailed) as failure:
        supervisor.start(Component(name="crasher", argv=python("print('cannot bind port 1'); raise SystemExit(3)"), ready_log="never"))

    assert failure.value.name == "crasher"
    assert "exited with code 3" in str(failure.value)
    assert "cannot bind port 1" in str(failure.value)


def test_missing_binary_reports_cannot_execute(supervisor):
    with pytest.raises(ComponentFailed, match="cannot execute /nonexistent/server"):
        supervisor.start(Component(name="ghost", argv=["/nonexistent/server"]))


def test_not_ready_in_time_reports_timeout(supervisor):
    with pytest.raises(ComponentFailed, match="not ready after 1 s"):
        supervisor.start(Component(name="slow", argv=python("import time; time.sleep(60)"), ready=lambda: False, ready_timeout=1))


def test_stop_all_stops_in_reverse_order(supervisor, tmp_path):
    marker = tmp_path / "order.txt"
    code = (
        "import signal, sys, time\n"
        "def stop(*_):\n"
        f"    open({str(marker)!r}, 'a').write(sys.argv[1] + '\\n'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('up', flush=True)\n"
        "while True: time.sleep(0.1)\n"
    )
    for name in ("first", "second", "third"):
        supervisor.start(Component(name=name, argv=[sys.executable, "-c", code, name], ready_log="up"))

    supervisor.stop_all()

    assert marker.read_text().split() == ["third", "second", "first"]


def test_process_ignoring_sigterm_is_killed(supervisor):
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    process = supervisor.start(Component(name="stubborn", argv=python(code), ready_log="up", stop_grace=1))

    supervisor.stop_all()

    assert process.popen.returncode == -9


def test_child_in_own_session_does_not_outlive_component(supervisor, tmp_path):
    # The parent starts a child in a new session that ignores SIGTERM, as BentoML's service workers do.
    child_code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
    parent_code = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', {child_code!r}], start_new_session=True)\n"
        f"open({str(tmp_path / 'child.pid')!r}, 'w').write(str(child.pid))\n"
        "print('up', flush=True)\n"
        "time.sleep(120)\n"
    )
    supervisor.start(Component(name="parent", argv=python(parent_code), ready_log="up"))
    child = psutil.Process(int((tmp_path / "child.pid").read_text()))

    supervisor.stop_all()

    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_failed_returns_exited_component(supervisor):
    supervisor.start(Component(name="brief", argv=python("import time; print('up', flush=True); time.sleep(0.5)"), ready_log="up"))

    process = None
    for _ in range(50):
        process = supervisor.failed()
        if process:
            break
        __import__("time").sleep(0.1)

    assert process is not None
    assert process.name == "brief"
