// The login page: log in, show the services and roles, call the stock backend with the token, log out.
import {
  AuthClient,
  AuthError,
  InvalidCredentials,
  LocalStorageTokenStorage,
  ServiceUnavailable,
  TooManyAttempts,
  errorFromResponse,
} from "../dist/index.js";

// The services, from ?auth=...&stock=..., else where `make run` and clients/python/examples/stock_api.py listen.
const params = new URLSearchParams(location.search);
const stockUrl = params.get("stock") ?? "http://127.0.0.1:7880";
const auth = new AuthClient({
  baseUrl: params.get("auth") ?? "http://127.0.0.1:7878",
  storage: new LocalStorageTokenStorage(),
  tokenOrigins: [stockUrl],
  onUnauthorized: () => showLogin("Your session has ended: please log in again."),
});

const element = (id) => document.getElementById(id);

function say(text) {
  element("status").textContent = text;
}

function item(text) {
  const li = document.createElement("li");
  li.textContent = text;
  return li;
}

function describe(error) {
  if (error instanceof InvalidCredentials) {
    return "Wrong username or password.";
  }
  if (error instanceof TooManyAttempts) {
    return `Too many attempts: try again in ${error.retryAfter ?? "a few"} seconds.`;
  }
  if (error instanceof ServiceUnavailable) {
    return "Cannot reach the auth service. Check your connection and try again.";
  }
  if (error instanceof AuthError) {
    return error.message;
  }
  return `Cannot reach the stock service (${error.message}).`;
}

function showLogin(message) {
  element("session").hidden = true;
  element("login").hidden = false;
  say(message);
}

async function showSession() {
  const profile = await auth.profile();
  element("who").textContent = `Logged in as ${profile.username}${profile.name ? ` (${profile.name})` : ""}.`;
  element("services").replaceChildren(
    ...profile.services.map((access) => item(`${access.service}: ${access.roles.join(", ")}`)),
  );
  element("stock").replaceChildren();
  element("login").hidden = true;
  element("session").hidden = false;
}

// The token dies when unused for a few minutes; say how long it has, so nobody is surprised.
setInterval(() => {
  const left = auth.expiresAt === null ? null : Math.round(auth.expiresAt - Date.now() / 1000);
  element("expiry").textContent =
    left === null ? "" : left > 60 ? `Session valid for ${left} s unless used.` : `Session ends in ${left} s: use it or log in again.`;
}, 1000);

element("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  say("Logging in…");
  try {
    await auth.login(String(form.get("username")), String(form.get("password")));
    event.target.reset();
    await showSession();
    say("");
  } catch (error) {
    say(describe(error));
  }
});

element("load-stock").addEventListener("click", async () => {
  try {
    const response = await auth.authFetch(`${stockUrl}/stock/items`);
    if (!response.ok) {
      throw await errorFromResponse(response);
    }
    const { items, seen_by: seenBy } = await response.json();
    element("stock").replaceChildren(...items.map((stock) => item(`${stock.sku}: ${stock.name}, ${stock.quantity}`)));
    say(`Stock items as seen by ${seenBy}.`);
  } catch (error) {
    say(describe(error));
  }
});

element("logout").addEventListener("click", async () => {
  try {
    await auth.logout();
    showLogin("Logged out.");
  } catch (error) {
    showLogin(`Logged out here; the service did not confirm it: ${describe(error)}`);
  }
});

if (await auth.storage.get()) {
  showSession().catch((error) => showLogin(describe(error)));
} else {
  showLogin("");
}
