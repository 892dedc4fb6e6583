"""The cluster's placement rule, re-implemented from docs/CLUSTER.md so tests can choose users by
owner (and so the rule is pinned from outside the Swift code too)."""
import bisect

M = (1 << 64) - 1


def fnv1a64(s: str) -> int:
    h = 0xCBF29CE484222325
    for b in s.encode():
        h ^= b
        h = (h * 0x100000001B3) & M
    return h


def fmix64(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & M
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & M
    k ^= k >> 33
    return k


def ring_hash(s: str) -> int:
    return fmix64(fnv1a64(s))


MASK40 = 0xFFFFFFFFFF000000
B32 = "abcdefghijklmnopqrstuvwxyz234567"


def point(key: str) -> int:
    """The ring point of an id: the 40 bits a minted id (`u_` + 8 point chars + 5 random) carries,
    else the key's truncated hash (see Sources/ChorusCluster/KeyPoint.swift)."""
    b = key.encode()
    if len(b) == 15 and key[1] == "_" and all(c in B32 for c in key[2:10]):
        v = 0
        for c in key[2:10]:
            v = v << 5 | B32.index(c)
        return v << 24
    return ring_hash(key) & MASK40


class Ring:
    def __init__(self, members, vnodes=256):
        members = sorted(set(members))
        points = sorted((ring_hash(f"{m}#{v}"), m) for m in members for v in range(vnodes))
        self.tokens = [t for t, _ in points]
        self.owners = [m for _, m in points]

    def owner_of_point(self, p: int) -> str:
        i = bisect.bisect_left(self.tokens, p)
        return self.owners[0 if i == len(self.tokens) else i]

    def owner(self, key: str) -> str:
        """The owner of a user or conversation id."""
        return self.owner_of_point(point(key))

    def owner_of_username(self, name: str) -> str:
        return self.owner_of_point(ring_hash("name:" + name) & MASK40)
