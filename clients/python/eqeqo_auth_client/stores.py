"""Where a script keeps its token between runs, so that it logs in once."""

import os
import tempfile
import threading
from pathlib import Path
from typing import Protocol


class TokenStore(Protocol):
    """Holds at most one token."""

    def load(self) -> str | None:
        """Return the stored token, or None."""
        ...

    def save(self, token: str) -> None:
        """Store a token, replacing any other."""
        ...

    def clear(self) -> None:
        """Forget the stored token."""
        ...


class MemoryTokenStore:
    """Keeps the token for the life of the process."""

    def __init__(self) -> None:
        self._token: str | None = None
        self._lock = threading.Lock()

    def load(self) -> str | None:
        """Return the stored token, or None."""
        with self._lock:
            return self._token

    def save(self, token: str) -> None:
        """Store a token, replacing any other."""
        with self._lock:
            self._token = token

    def clear(self) -> None:
        """Forget the stored token."""
        with self._lock:
            self._token = None


class FileTokenStore:
    """Keeps the token in a file only its owner can read."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()

    def load(self) -> str | None:
        """Return the stored token, or None when there is no file or it is empty."""
        try:
            token = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return token or None

    def save(self, token: str) -> None:
        """Write the token; a reader sees the old file or the new one, never half."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkstemp creates the file 0600 whatever the umask: no one else ever reads it.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(token + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise

    def clear(self) -> None:
        """Delete the file."""
        self.path.unlink(missing_ok=True)
