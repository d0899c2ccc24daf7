"""`make postman` without npm says what to install and fails. The collection itself runs in
CI (.ci/run calls make postman), so make test needs nothing but Python."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAKE = shutil.which("make") or "make"


def test_without_npm_the_target_says_what_to_install(tmp_path):
    # An empty PATH: make itself is called by its full path, the recipe finds no npm.
    result = subprocess.run(
        [MAKE, "postman"],
        cwd=ROOT,
        env={"PATH": str(tmp_path), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "needs Node.js" in result.stderr and "npm" in result.stderr
