"""PROTOCOL.md section 6, "Groups have an owner", against the real binary: the creator owns a
group; any member adds members and removes itself; only the owner removes others (403 not_owner);
when the owner leaves, the longest-standing member becomes owner."""
from conftest import Server


def test_only_the_owner_removes_others_and_ownership_passes_on(server):
    ann, bob, cid, dan = (server.user(n) for n in ("ann", "bob", "cid", "dan"))
    status, group = server.http("POST", "/v1/conversations", {"members": [bob["id"], cid["id"]], "title": "g"}, token=ann["token"])
    assert status == 201 and group["owner"] == ann["id"] and group["members"][0] == ann["id"], group
    gid = group["conversationId"]

    # A member adds; a non-owner cannot remove another member.
    status, after = server.http("POST", f"/v1/conversations/{gid}/members", {"userId": dan["id"]}, token=bob["token"])
    assert status == 200 and dan["id"] in after["members"]
    status, refused = server.http("DELETE", f"/v1/conversations/{gid}/members/{cid['id']}", token=bob["token"])
    assert status == 403 and refused["error"]["code"] == "not_owner", refused
    status, still = server.http("GET", f"/v1/conversations/{gid}", token=cid["token"])
    assert status == 200 and cid["id"] in still["members"]

    # Anyone removes itself; the owner removes others.
    assert server.http("DELETE", f"/v1/conversations/{gid}/members/{bob['id']}", token=bob["token"])[0] == 200
    status, after = server.http("DELETE", f"/v1/conversations/{gid}/members/{dan['id']}", token=ann["token"])
    assert status == 200 and after["members"] == [ann["id"], cid["id"]], after

    # The owner leaves: the longest-standing member (cid) owns the group now, and may remove others.
    assert server.http("DELETE", f"/v1/conversations/{gid}/members/{ann['id']}", token=ann["token"])[0] == 200
    status, now = server.http("GET", f"/v1/conversations/{gid}", token=cid["token"])
    assert status == 200 and now["owner"] == cid["id"], now

    # A direct conversation has no owner.
    status, direct = server.http("POST", "/v1/conversations", {"members": [bob["id"]]}, token=ann["token"])
    assert status == 201 and direct["owner"] is None, direct
