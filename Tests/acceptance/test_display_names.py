"""PROTOCOL.md section 6: display names may not hide or reorder what they show. Format characters
(a bidi override, a zero-width space) are refused with 400; the joiners U+200C and U+200D are kept."""


def register(server, name, display):
    return server.http("POST", "/v1/users", {"username": name, "password": "password1", "email": f"{name}@example.com", "displayName": display})


def test_format_characters_are_refused_and_joiners_kept(server):
    status, body = register(server, "mallory", "invoice\u202Efdp.exe")
    assert status == 400 and body["error"]["code"] == "bad_request" and "displayName" in body["error"]["message"]
    assert register(server, "mallory2", "ad\u200bmin")[0] == 400
    status, body = register(server, "coder", "\U0001F469\u200D\U0001F4BB")
    assert status == 201 and body["displayName"] == "\U0001F469\u200D\U0001F4BB"
