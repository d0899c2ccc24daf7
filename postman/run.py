"""`make postman`: run the Postman collection with newman against a server of its own.

Serves the demo data from a throwaway embedded PostgreSQL (devtools.local_gunicorn.demo_server),
runs newman against it, then stops both and removes the data. Exits with newman's status.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools import local_gunicorn  # noqa: E402 (after the path is set)

HERE = ROOT / "postman"
NEWMAN = HERE / "node_modules" / ".bin" / "newman"
COLLECTION = HERE / "eqeqo-auth.postman_collection.json"
ENVIRONMENT = HERE / "local.postman_environment.json"


def main():
    """Serve, run newman, clean up; newman's exit status."""
    try:
        with local_gunicorn.demo_server() as server:
            newman = [str(NEWMAN), "run", str(COLLECTION), "-e", str(ENVIRONMENT), "--env-var", f"baseUrl={server.url}"]
            status = subprocess.run([*newman, "--no-insecure-file-read"], check=False).returncode
            if status:
                print("the server's last log lines:", *server.log().splitlines()[-40:], sep="\n", file=sys.stderr)
            return status
    except RuntimeError as error:
        print(f"the demo server did not start: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
