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


class Ring:
    def __init__(self, members, vnodes=256):
        members = sorted(set(members))
        points = sorted((ring_hash(f"{m}#{v}"), m) for m in members for v in range(vnodes))
        self.tokens = [t for t, _ in points]
        self.owners = [m for _, m in points]

    def owner(self, key: str) -> str:
        i = bisect.bisect_left(self.tokens, ring_hash(key))
        return self.owners[0 if i == len(self.tokens) else i]

    def owner_of_username(self, name: str) -> str:
        return self.owner("name:" + name)
