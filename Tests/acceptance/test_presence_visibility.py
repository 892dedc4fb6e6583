"""PROTOCOL.md section 6, "Visibility", against the real binary: presence (HTTP and watch) is
shown only for the caller and users who share a conversation with the caller; anyone else is
{"userId","status":"unknown"} and no change of theirs is ever pushed."""
import asyncio
import json

import websockets

from test_websocket import recv


def test_presence_only_for_the_caller_and_those_who_share_a_conversation(server):
    ann, bob, cid = server.user("ann"), server.user("bob"), server.user("cid")
    assert server.http("POST", "/v1/conversations", {"members": [bob["id"]]}, token=ann["token"])[0] == 201

    status, body = server.http("GET", f"/v1/presence?userIds={ann['id']},{bob['id']},{cid['id']},nobody", token=ann["token"])
    assert status == 200
    by_id = {p["userId"]: p for p in body["presence"]}
    assert [p["userId"] for p in body["presence"]] == [ann["id"], bob["id"], cid["id"], "nobody"]
    assert by_id[ann["id"]]["status"] in ("online", "offline") and "lastSeen" in by_id[ann["id"]]
    assert by_id[bob["id"]]["status"] == "offline" and "lastSeen" in by_id[bob["id"]]
    assert by_id[cid["id"]] == {"userId": cid["id"], "status": "unknown"}
    assert by_id["nobody"] == {"userId": "nobody", "status": "unknown"}

    async def go():
        async with websockets.connect(server.ws_url(ann["token"])) as a:
            await recv(a)
            await a.send(json.dumps({"type": "watch", "userIds": [bob["id"], cid["id"]]}))
            first = [await recv(a), await recv(a)]
            assert {f["userId"]: f["status"] for f in first} == {bob["id"]: "offline", cid["id"]: "unknown"}, first
            # cid comes online: never pushed; bob comes online: pushed.
            async with websockets.connect(server.ws_url(cid["token"])) as c:
                await recv(c)
                async with websockets.connect(server.ws_url(bob["token"])) as b:
                    await recv(b)
                    pushed = await recv(a)
                    assert pushed["userId"] == bob["id"] and pushed["status"] == "online", pushed
    asyncio.run(go())
