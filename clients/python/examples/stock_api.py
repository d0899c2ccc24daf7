"""A tiny stock backend protected by the Eqeqo Auth API.

Run it against a running auth service:

    AUTH_BASE_URL=http://127.0.0.1:7878 python clients/python/examples/stock_api.py

then, with a token from POST /auth/login (alice holds stock.read, not stock.write):

    curl -H "token: $TOKEN" http://127.0.0.1:7880/stock/items

A web page may call it from the browser when its origin is listed in CORS_ALLOWED_ORIGINS
(comma-separated, e.g. http://127.0.0.1:8000; none by default).
"""

import os
import threading

from eqeqo_auth_client.flask import EqeqoAuth
from flask import Flask, g, request

app = Flask(__name__)
auth = EqeqoAuth(
    app,
    base_url=os.environ.get("AUTH_BASE_URL", "http://127.0.0.1:7878"),
    service="stock",
)

# Exact origins of the web pages allowed to call this backend from a browser.
cors_origins = {origin.strip() for origin in os.environ.get("CORS_ALLOWED_ORIGINS", "").split(",") if origin.strip()}

items = [{"sku": "BOLT-M6", "name": "M6 bolt", "quantity": 1200}]
items_lock = threading.Lock()


def allow_listed_pages(response):
    """Let the listed pages send a token and read the answer, refusals included."""
    response.vary.add("Origin")
    origin = request.headers.get("Origin")
    if origin in cors_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "GET, POST"
        response.headers["Access-Control-Allow-Headers"] = "token, Authorization, Content-Type"
    return response


if cors_origins:
    app.after_request(allow_listed_pages)


@app.get("/stock/items")
@auth.require(permission="stock.read")
def list_items():
    """List the stock items; any token with stock.read may look."""
    with items_lock:
        return {"items": list(items), "seen_by": g.auth.username}


@app.post("/stock/items")
@auth.require(permission="stock.write")
def add_item():
    """Add a stock item; the auth service is asked again on every write."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("sku"), str):
        return {"error": "validation_error", "message": "sku (string) is required"}, 400
    item = {
        "sku": body["sku"],
        "name": body.get("name"),
        "quantity": body.get("quantity", 0),
    }
    with items_lock:
        items.append(item)
    return {"item": item, "added_by": g.auth.username}, 201


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "7880")))
