"""docs/openapi.yaml against the real binary. The document is valid OpenAPI 3.1 and its examples fit
their own schemas; a walk through the API sends every example request to a running server, and
every answer is checked against what the document says of its status (the status is documented,
the body fits its schema, the content type is the documented one). Every operation is exercised,
and every operation that needs a user's token refuses a request without one (401)."""
import asyncio
import http.client
import json
import pathlib

import jsonschema
import websockets
import yaml
from openapi_spec_validator import validate

from conftest import ROOT

SPEC = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
OPERATIONS = {op["operationId"]: (method.upper(), path, op)
              for path, item in SPEC["paths"].items() for method, op in item.items()}


def deref(obj):
    while isinstance(obj, dict) and "$ref" in obj:
        node = SPEC
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part]
        obj = node
    return obj


def schema_validator(schema):
    # References (#/components/...) resolve against a root that carries the components.
    return jsonschema.Draft202012Validator({**schema, "components": SPEC["components"]})


class Walk:
    def __init__(self, server):
        self.server = server
        self.seen = set()

    def call(self, op_id, token=None, params=(), query="", body=None, raw_body=None):
        method, template, op = OPERATIONS[op_id]
        path = template
        for value in params:
            path = path.replace(path[path.index("{"):path.index("}") + 1], value, 1)
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path + (f"?{query}" if query else ""), body=data, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        status = response.status
        documented = op["responses"]
        assert str(status) in documented, f"{op_id} answered {status}, not documented ({sorted(documented)}): {payload[:200]!r}"
        spec = deref(documented[str(status)])
        content = spec.get("content")
        if content:
            ctype = response.getheader("Content-Type", "").split(";")[0]
            assert ctype in content, f"{op_id} {status}: content type {ctype}, documented {sorted(content)}"
            if ctype == "application/json":
                document = json.loads(payload)
                errors = list(schema_validator(content[ctype]["schema"]).iter_errors(document))
                assert not errors, f"{op_id} {status}: {errors[0].message} in {document}"
        else:
            assert payload == b"", f"{op_id} {status}: a body where none is documented"
        self.seen.add(op_id)
        return status, (json.loads(payload) if payload and response.getheader("Content-Type", "").startswith("application/json") else payload)

    def example(self, op_id):
        return OPERATIONS[op_id][2]["requestBody"]["content"]["application/json"]["example"]


def test_the_document_is_valid_openapi_and_its_examples_fit_their_schemas():
    validate(SPEC)
    checked = 0
    for op_id, (_, _, op) in OPERATIONS.items():
        bodies = [op.get("requestBody", {}).get("content", {})] + [deref(r).get("content", {}) for r in op["responses"].values()]
        for content in bodies:
            for media in content.values():
                if "example" in media:
                    errors = list(schema_validator(media["schema"]).iter_errors(media["example"]))
                    assert not errors, f"{op_id}: example does not fit: {errors[0].message}"
                    checked += 1
    assert checked >= 6


def test_every_operation_answers_as_documented(server):
    w = Walk(server)
    assert w.call("healthz")[0] == 200
    assert w.call("readyz")[0] == 200
    assert w.call("metrics")[0] == 200
    assert w.call("cluster")[0] == 200
    assert w.call("webClient")[0] == 200
    assert w.call("webAsset", params=["app.js"])[0] == 200
    assert w.call("webAsset", params=["nope.js"])[0] == 404

    # Accounts: the documented examples, then the documented refusals.
    ann = w.example("register")
    status, account = w.call("register", body=ann)
    assert status == 201 and account["username"] == ann["username"]
    assert w.call("register", body=ann)[1]["error"]["code"] == "username_taken"
    assert w.call("register", body={"username": "x", "password": "password1", "email": "x@example.com"})[0] == 400
    status, session = w.call("login", body=w.example("login"))
    assert status == 201
    token = session["token"]
    assert w.call("login", body={"username": ann["username"], "password": "wrong-password"})[1]["error"]["code"] == "invalid_credentials"
    assert w.call("login", raw_body=b"{not json")[0] == 400
    bob, carol = server.user("bob"), server.user("carol")
    assert w.call("me", token=token)[1]["userId"] == account["userId"]
    assert w.call("findUser", token=token, query="username=bob")[1]["userId"] == bob["id"]
    assert w.call("findUser", token=token, query="username=nobody")[1]["error"]["code"] == "unknown_user"
    assert w.call("findUser", token=token)[0] == 400
    assert w.call("presence", token=token, query=f"userIds={bob['id']},{carol['id']}")[0] == 200

    # Conversations and messages.
    status, direct = w.call("createConversation", token=token, body={"members": [bob["id"]]})
    assert status == 201 and direct["kind"] == "direct"
    assert w.call("createConversation", token=token, body={"members": [bob["id"]]})[0] == 200
    status, group = w.call("createConversation", token=token, body={"members": [bob["id"], carol["id"]], "title": "bikes"})
    assert status == 201 and group["kind"] == "group"
    assert w.call("createConversation", token=token, body={"members": ["u_nobody"]})[0] == 404
    assert w.call("createConversation", token=token, body={"members": []})[0] == 400
    assert w.call("listConversations", token=token)[0] == 200
    assert w.call("getConversation", token=token, params=[group["conversationId"]])[0] == 200
    assert w.call("getConversation", token=carol["token"], params=[direct["conversationId"]])[1]["error"]["code"] == "not_member"
    assert w.call("getConversation", token=token, params=["c_nothinghere1"])[0] == 404
    assert w.call("removeMember", token=token, params=[group["conversationId"], carol["id"]])[0] == 200
    assert w.call("addMember", token=token, params=[group["conversationId"]], body={"userId": carol["id"]})[0] == 200
    assert w.call("addMember", token=token, params=[direct["conversationId"]], body={"userId": carol["id"]})[0] == 400
    message = w.example("postMessage")
    status, sent = w.call("postMessage", token=token, params=[direct["conversationId"]], body=message)
    assert status == 201 and sent["seq"] == 1 and sent["body"] == message["body"]
    assert w.call("postMessage", token=token, params=[direct["conversationId"]], body=message)[1]["seq"] == 1
    assert w.call("postMessage", token=token, params=[direct["conversationId"]], body={"clientMsgId": "m-2", "body": ""})[1]["error"]["code"] == "empty_body"
    assert w.call("postMessage", token=carol["token"], params=[direct["conversationId"]], body={"clientMsgId": "m-3", "body": "hi"})[0] == 403
    status, page = w.call("history", token=token, params=[direct["conversationId"]], query="limit=10")
    assert status == 200 and [m["seq"] for m in page["messages"]] == [1]
    assert w.call("history", token=token, params=[direct["conversationId"]], query="limit=0")[0] == 400

    # The WebSocket: upgraded with a token, refused without, 400 without the upgrade headers.
    async def upgrade():
        async with websockets.connect(server.ws_url(token)) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), 10))["type"]
    assert asyncio.run(upgrade()) == "hello"
    w.seen.add("webSocket")
    assert w.call("webSocket", query=f"token={token}")[0] == 400
    assert w.call("webSocket")[0] == 401

    # Operations that this single node does not offer, and links that are not valid.
    assert w.call("changeMembership", body=w.example("changeMembership"))[0] == 404
    assert w.call("unsubscribePage", query="token=forged")[1]["error"]["code"] == "bad_token"
    assert w.call("unsubscribe", query="token=forged")[1]["error"]["code"] == "bad_token"

    # Every operation that needs a user's token refuses a request without one.
    for op_id, (_, path, op) in OPERATIONS.items():
        if "security" in op:
            continue
        params = ["x"] * path.count("{")
        status, body = w.call(op_id, params=params, body={} if "requestBody" in op else None)
        assert status == 401 and body["error"]["code"] == "unauthorized", op_id

    assert w.call("logout", token=token)[0] == 204
    assert w.call("me", token=token)[0] == 401
    assert w.seen == set(OPERATIONS), f"not exercised: {sorted(set(OPERATIONS) - w.seen)}"
