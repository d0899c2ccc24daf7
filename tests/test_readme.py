"""The README's walkthroughs ("Try it", "Two-step login") run as written, against a server with
the demo data, and run again right after with the same answers: they make, and remove, what
they change."""

import re
import shutil
import subprocess

import pytest

from devtools import local_gunicorn
from tests.fixtures import ROOT

BASH = shutil.which("bash") or "/bin/bash"

# What each curl of the walkthrough answers, in order: logins, profile and checks (one a 403),
# dave's life, recovery, services, roles, permissions and links, clean-up, operations.
EXPECTED = [200] * 6 + [403] + [201] + [200] * 9 + [202, 200]
EXPECTED += [200, 201, 200, 200, 201, 201, 200, 201, 200, 201, 201, 200, 204, 200]
EXPECTED += [204] * 6 + [200] * 4


def walkthrough(heading="Try it"):
    """The first bash block after the heading."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(f"## {heading}") :]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def run(script, server):
    """Run the walkthrough against `server`; every status curl answered, in order."""
    script = script.replace("A=http://127.0.0.1:7878", f"A={server.url}")
    script = script.replace("LOG=var/run.log", f"LOG={server.log_path}")
    script = script.replace("http://127.0.0.1:7879/metrics", server.metrics_url)
    # Every status goes to stderr, so the answers on stdout stay as the reader sees them.
    prelude = "set -eu\ncurl() { command curl -w '%{stderr}status %{http_code}\\n' \"$@\"; }\n"
    result = subprocess.run(
        [BASH, "-c", prelude + script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return [int(code) for code in re.findall(r"^status (\d+)$", result.stderr, re.M)]


@pytest.fixture(scope="module")
def demo_server():
    with local_gunicorn.demo_server() as server:
        yield server


def test_the_walkthrough_runs_as_written_twice_in_a_row(demo_server):
    script = walkthrough()

    first = run(script, demo_server)
    second = run(script, demo_server)

    assert first == EXPECTED
    assert second == EXPECTED


# Login, enrolment, confirmation, the two steps, removal.
TWO_STEP_EXPECTED = [200, 201, 200, 200, 200, 200]


def test_the_two_step_walkthrough_runs_as_written_twice_in_a_row(demo_server):
    script = walkthrough("Two-step login")

    assert run(script, demo_server) == TWO_STEP_EXPECTED
    assert run(script, demo_server) == TWO_STEP_EXPECTED
