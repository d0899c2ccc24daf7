def test_login_and_profile(client, api):
    token = api.login("alice")
    response = client.get("/auth/profile", headers={"token": token})
    assert response.status_code == 200
    assert response.get_json()["payload"]["username"] == "alice"


def test_live_server(live_server):
    import httpx

    assert httpx.get(f"{live_server.url}/healthz").json() == {"status": "ok"}
