"""Operations: liveness, readiness and the OpenAPI description."""

from functools import lru_cache

from flask import Blueprint

import config
import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process answers; the database is not touched."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """The database answers too."""
    with db.connection() as conn:
        conn.execute("select 1")
    return {"status": "ready"}


@lru_cache(maxsize=1)
def spec():
    """openapi.yaml, read once."""
    import yaml  # here: a worker that never serves the spec does not hold the parser

    with open(config.BASE_DIR / "openapi.yaml", encoding="utf-8") as file:
        return yaml.safe_load(file)


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 description of this service."""
    return spec()
