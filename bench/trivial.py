"""The anchor of `make bench`: the least a Flask JSON POST costs, served by gunicorn with the same
settings as the service. No middleware, no database: parse the body, answer a small object."""

from flask import Flask, request

app = Flask(__name__)


@app.post("/check-token")
def answer():
    """Read the JSON body a backend sends, and answer as small an object."""
    return {"valid": isinstance(request.get_json(), dict)}
