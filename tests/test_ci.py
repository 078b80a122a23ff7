"""CI's contract with the test suite: a missing ../shared fails CI and skips locally, with the reason shown."""
import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project_without_shared(tmp_path) -> Path:
    """Our conftest.py in a tests/ folder with no ../shared beside the project."""
    tests = tmp_path / "project" / "tests"
    tests.mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "conftest.py", tests / "conftest.py")
    (tests / "test_data.py").write_text("def test_needs_data(shared):\n    shared('data/portrait/val')\n")
    return tests


def run_pytest(tests: Path, ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", str(tests)],
                          capture_output=True, text=True, cwd=tests, env=env)


@pytest.mark.parametrize("ci", [None, "false"])
def test_missing_shared_data_skips_locally_with_the_reason(project_without_shared, ci):
    result = run_pytest(project_without_shared, ci)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    missing = project_without_shared.parents[1] / "shared" / "data" / "portrait" / "val"
    assert "SKIPPED [1]" in result.stdout and f"{missing} not found" in result.stdout


def test_missing_shared_data_fails_in_ci(project_without_shared):
    result = run_pytest(project_without_shared, "true")
    assert result.returncode == 1, result.stdout
    assert "1 failed" in result.stdout and "CI=true:" in result.stdout and "skipped" not in result.stdout


def test_ci_sets_ci_and_pytest_prints_skip_reasons():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "export CI=true" in ci
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    addopts = config["tool:pytest"]["addopts"].split()
    assert "-rs" in addopts and 'not slow"' in config["tool:pytest"]["addopts"]
