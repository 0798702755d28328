"""`opsseer up` as a user runs it: every component starts, URLs print, Ctrl-C stops everything."""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from opsseer.postgres import purge_state


@pytest.fixture
def state_dir(tmp_path):
    """A state directory that is purged afterwards, with any PostgreSQL data kept outside it."""
    path = tmp_path / "state"
    yield path
    if path.exists():
        purge_state(path)


def _wait_for_line(process: subprocess.Popen, pattern: str, timeout: float) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"{pattern!r} not printed within {timeout} s; output:\n" + "\n".join(lines[-40:]))


def _port_open(url: str) -> bool:
    host, port = re.match(r"\w+://([\d.]+):(\d+)", url).groups()
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, int(port))) == 0


def _eventually_up(prometheus_url: str, job: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": f'up{{job="{job}"}}'}, timeout=5).json()
        if any(sample["value"][1] == "1" for sample in result["data"]["result"]):
            return True
        time.sleep(1)
    return False


@pytest.mark.timeout(300)
def test_up_starts_everything_and_ctrl_c_stops_it(state_dir):
    env = {key: value for key, value in os.environ.items() if not key.startswith("OPSSEER_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "opsseer", "up", "--free-ports", "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**env, "COLUMNS": "200"},
    )
    try:
        lines = _wait_for_line(process, "Press Ctrl-C to stop", timeout=240)
        output = "\n".join(lines)
        urls = dict(re.findall(r"│ (\w+)\s+│ (\S+://127\.0\.0\.1:\d+\S*)", output))

        assert set(urls) == {"portal", "trigger", "toyprod", "prometheus", "alertmanager", "flower", "postgres", "redis", "models"}
        assert re.search(r"^worker\s+\| .*ready", output, re.MULTILINE)
        assert httpx.get(urls["portal"], timeout=5).status_code == 200
        assert httpx.get(f"{urls['toyprod']}/healthz", timeout=5).status_code == 200
        assert httpx.get(f"{urls['prometheus']}/-/ready", timeout=5).status_code == 200
        assert httpx.get(f"{urls['models']}/readyz", timeout=5).status_code == 200
        assert (state_dir / "logs" / "api.log").exists()
        # The local Prometheus scrapes the model gateway (every 15 s in the production profile).
        assert _eventually_up(urls["prometheus"], "opsseer-models", timeout=45)

        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0
    for name, url in urls.items():
        assert not _port_open(url), f"{name} still listening at {url}"


def test_up_reports_component_that_fails_to_start(state_dir):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    env = {key: value for key, value in os.environ.items() if not key.startswith("OPSSEER_")}
    # Redis cannot bind a port that is already taken; up must name it and stop what it started.
    script = (
        "import sys\n"
        "from opsseer import stack\n"
        "from opsseer.cli import main\n"
        f"stack.Ports.free = classmethod(lambda cls: stack.Ports(**{{**{{f.name: stack.free_port() for f in stack.fields(cls)}}, 'redis': {busy.getsockname()[1]}}}))\n"
        "sys.argv = ['opsseer', 'up', '--free-ports', '--state-dir', sys.argv[1]]\n"
        "main()\n"
    )
    try:
        result = subprocess.run([sys.executable, "-c", script, str(state_dir)], capture_output=True, text=True, env=env, timeout=120)
    finally:
        busy.close()

    assert result.returncode == 1
    assert "redis failed to start" in result.stderr
    assert "Address already in use" in result.stderr


def test_purge_deletes_state_and_outside_data(tmp_path):
    outside = tmp_path / "outside" / "postgres"
    outside.mkdir(parents=True)
    state = tmp_path / "state"
    (state / "logs").mkdir(parents=True)
    (state / "postgres").symlink_to(outside)

    result = subprocess.run(
        [sys.executable, "-m", "opsseer", "purge", "--yes", "--state-dir", str(state)], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert not state.exists()
    # Data outside /var/lib/opsseer is never deleted through a symlink.
    assert outside.exists()
