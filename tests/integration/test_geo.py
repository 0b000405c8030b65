"""GEO commands against a real redis-server: thousands of random GEOADD, GEOSEARCH,
GEOSEARCHSTORE, GEORADIUS[BYMEMBER][_RO], GEODIST, GEOPOS and GEOHASH on the same data,
every reply compared byte for byte in RESP2 and RESP3 (result sets and their order,
ties included, COUNT with and without ANY, distances and coordinates to the last digit),
and the stored results compared with ZRANGE; members planted with ZADD scores that are
not geohashes; keyspace events; and geo values surviving a restart from the AOF (GEOADD
logged as Redis logs it, as ZADD). The edge cases one by one are in
tests/compat/scripts/geo.txt."""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RedisAndRespq, Respq, info_field, keyspace_events, run_tests, wait_until  # noqa: E402

UNITS = ["m", "km", "mi", "ft", "M", "KM", "Mi", "fT"]


def setup():
    return RedisAndRespq()


def coord(rng, lo, hi):
    """A coordinate as a client may write it: a few or many decimals, sometimes exactly
    on a limit."""
    v = rng.uniform(lo, hi)
    return rng.choice([f"{v:.{rng.randint(0, 9)}f}", repr(v), f"{v:.3e}"])


class World:
    """Random points: clusters around a few centres (so that searches find members, at
    equal distances too), anywhere on the map, and on its limits."""

    def __init__(self, rng):
        self.rng = rng
        self.centres = [(rng.uniform(-179, 179), rng.uniform(-84, 84)) for _ in range(4)]
        self.centres += [(179.9, 0.0), (-179.95, 10.0), (0.0, 85.0), (20.0, -84.9)]
        self.spots = []  # exact coordinates reused: members at the same point

    def point(self):
        rng = self.rng
        roll = rng.random()
        if roll < 0.1 and self.spots:
            return rng.choice(self.spots)
        if roll < 0.15:
            p = (rng.choice(["180", "-180", "0", "179.99999999"]), rng.choice(["85.05112878", "-85.05112878", "0"]))
        elif roll < 0.3:
            p = (coord(rng, -180, 180), coord(rng, -85.05112878, 85.05112878))
        else:
            lon, lat = rng.choice(self.centres)
            spread = rng.choice([0.001, 0.05, 0.5, 3])
            lon = min(180.0, max(-180.0, lon + rng.uniform(-spread, spread)))
            lat = min(85.05112878, max(-85.05112878, lat + rng.uniform(-spread, spread)))
            p = (f"{lon:.{rng.randint(2, 8)}f}", f"{lat:.{rng.randint(2, 8)}f}")
        if rng.random() < 0.2:
            self.spots.append(p)
        return p

    def centre(self):
        rng = self.rng
        if rng.random() < 0.8:
            lon, lat = rng.choice(self.centres)
            lon = min(180.0, max(-180.0, lon + rng.uniform(-1, 1)))
            lat = min(85.05112878, max(-85.05112878, lat + rng.uniform(-1, 1)))
            return f"{lon:.5f}", f"{lat:.5f}"
        return self.point()

    def distance(self):
        rng = self.rng
        unit = rng.choice(UNITS)
        metres = rng.choice([0, 10, 500, 5_000, 50_000, 200_000, 1_000_000, 5_000_000, 25_000_000])
        metres *= rng.uniform(0.5, 1.5)
        per = {"m": 1, "km": 1000, "mi": 1609.34, "ft": 0.3048}[unit.lower()]
        return f"{metres / per:.{rng.randint(0, 4)}f}", unit


def random_search(rng, world, keys, members):
    """One search command: GEOSEARCH[STORE] or GEORADIUS[BYMEMBER][_RO], with random
    options (now and then one Redis refuses, for the error)."""
    key = rng.choice(keys)
    kind = rng.choice(["geosearch", "geosearch", "geosearchstore", "georadius", "georadius_ro",
                       "georadiusbymember", "georadiusbymember_ro"])
    store = False
    if kind in ("geosearch", "geosearchstore"):
        cmd = [kind.upper()] + (["dst" + str(rng.randrange(2)), key] if kind == "geosearchstore" else [key])
        store = kind == "geosearchstore"
        if rng.random() < 0.5 and members:
            cmd += ["FROMMEMBER", rng.choice(members)]
        else:
            cmd += ["FROMLONLAT", *world.centre()]
        if rng.random() < 0.5:
            cmd += ["BYRADIUS", *world.distance()]
        else:
            w, unit = world.distance()
            h, _ = world.distance()
            cmd += ["BYBOX", w, h, unit]
    elif kind.startswith("georadiusbymember"):
        cmd = [kind.upper(), key, rng.choice(members) if members else "nobody", *world.distance()]
    else:
        cmd = [kind.upper(), key, *world.centre(), *world.distance()]
    opts = []
    if rng.random() < 0.6:
        opts.append(rng.choice(["ASC", "DESC"]))
    if rng.random() < 0.5:
        opts += ["COUNT", str(rng.choice([1, 2, 3, 5, 10, 50, 1000]))]
        if rng.random() < 0.4:
            opts.append("ANY")
    if not store and rng.random() < 0.7:
        opts += rng.sample(["WITHDIST", "WITHCOORD", "WITHHASH"], rng.randint(1, 3))
    if kind in ("georadius", "georadiusbymember") and rng.random() < 0.3:
        opts = [o for o in opts if not o.startswith("WITH")] + [rng.choice(["STORE", "STOREDIST"]), "dst" + str(rng.randrange(2))]
        store = True
    if kind == "geosearchstore" and rng.random() < 0.5:
        opts.append("STOREDIST")
    cmd += opts
    if rng.random() < 0.03:  # a refused option or value
        cmd.insert(rng.randrange(2, len(cmd) + 1), rng.choice(["ANY", "COUNT", "-1", "abc", "WITHDIST", "STORE"]))
    return cmd, store


def test_random_commands_match_redis_byte_for_byte(pair):
    rng = random.Random(2024)
    world = World(rng)
    keys = ["g1", "g2", "g3", "missing"]
    members = {k: [] for k in keys}
    steps = found = 0
    with pair.respq.raw() as r2, pair.redis.raw() as d2, pair.respq.raw() as r3, pair.redis.raw() as d3:
        assert r2.cmd("FLUSHALL") == d2.cmd("FLUSHALL")
        r3.cmd("HELLO", "3")
        d3.cmd("HELLO", "3")
        for step in range(4000):
            roll = rng.random()
            key = rng.choice(keys[:3])
            stored = False
            if roll < 0.25:
                cmd = ["GEOADD", key]
                if rng.random() < 0.3:
                    cmd += rng.sample(["NX", "XX", "CH"], rng.randint(1, 2))
                for _ in range(rng.choice([1, 2, 5, 20, 60])):
                    name = f"m{rng.randrange(400)}"
                    members[key].append(name)
                    cmd += [*world.point(), name]
                if rng.random() < 0.02:
                    cmd[-3] = rng.choice(["181", "-85.06", "nan", "x"])
            elif roll < 0.3:
                pool = members[key] or ["nobody"]
                cmd = ["ZREM", key, *rng.sample(pool, min(len(pool), rng.randint(1, 5)))]
            elif roll < 0.32:
                # A member whose score is no geohash: Redis decodes whatever the score is.
                name = f"odd{rng.randrange(20)}"
                members[key].append(name)
                cmd = ["ZADD", key, rng.choice(["-1", "0", "1", "1e20", "-1e20", "4503599627370496",
                                                str(rng.randrange(1 << 52)), str(rng.uniform(0, 1 << 53))]), name]
            elif roll < 0.75:
                cmd, stored = random_search(rng, world, keys, members[key] + ["nobody"])
            elif roll < 0.85:
                pool = members[key] + ["nobody"]
                cmd = ["GEODIST", rng.choice(keys), rng.choice(pool), rng.choice(pool)]
                if rng.random() < 0.7:
                    cmd.append(rng.choice(UNITS))
            elif roll < 0.93:
                pool = members[key] + ["nobody"]
                cmd = ["GEOPOS", rng.choice(keys), *rng.sample(pool, min(len(pool), rng.randint(1, 6)))]
            else:
                pool = members[key] + ["nobody"]
                cmd = ["GEOHASH", rng.choice(keys), *rng.sample(pool, min(len(pool), rng.randint(1, 6)))]
            r, d = (r3, d3) if rng.random() < 0.5 else (r2, d2)
            got, want = r.cmd(*cmd), d.cmd(*cmd)
            assert got == want, f"step {step}: {cmd}\nrespq: {got[:600]!r}\nredis: {want[:600]!r}"
            steps += 1
            if cmd[0].startswith("GEO") and cmd[0] not in ("GEOADD", "GEOPOS", "GEOHASH", "GEODIST"):
                found += want[:1] in b"*:" and want[1:2] not in b"0-"  # a search that found members
            if stored:
                for dst in ("dst0", "dst1"):
                    got, want = r2.cmd("ZRANGE", dst, "0", "-1", "WITHSCORES"), d2.cmd("ZRANGE", dst, "0", "-1", "WITHSCORES")
                    assert got == want, f"step {step}: {dst} after {cmd}\nrespq: {got[:300]!r}\nredis: {want[:300]!r}"
        # The values themselves are the same sorted sets, and the run went past the
        # compact encoding and found members.
        for k in keys:
            assert r2.cmd("ZRANGE", k, "0", "-1", "WITHSCORES") == d2.cmd("ZRANGE", k, "0", "-1", "WITHSCORES")
        assert any(r2.cmd("OBJECT", "ENCODING", k) == b"$8\r\nskiplist\r\n" for k in keys[:3])
        assert int(r2.cmd("ZCARD", "g1")[1:]) > 50
    assert steps == 4000 and found > 500, (steps, found)


def test_searches_with_many_ties_match_redis(pair):
    # Many members at a few points: with COUNT, Redis's partial quicksort decides which of
    # the equally distant members come first; without, the stable sort keeps zset order.
    rng = random.Random(5)
    with pair.respq.raw() as r, pair.redis.raw() as d:
        for c in (r, d):
            c.cmd("DEL", "ties")
        spots = [(rng.uniform(10, 10.2), rng.uniform(20, 20.2)) for _ in range(6)]
        cmd = ["GEOADD", "ties"]
        for i in range(300):
            lon, lat = rng.choice(spots)
            cmd += [f"{lon:.6f}", f"{lat:.6f}", f"t{i}"]
        assert r.cmd(*cmd) == d.cmd(*cmd) == b":300\r\n"
        for step in range(400):
            lon, lat = rng.choice(spots)
            cmd = ["GEOSEARCH", "ties", "FROMLONLAT", f"{lon:.6f}", f"{lat:.6f}", "BYRADIUS",
                   str(rng.choice([1, 5, 10, 30])), "km", rng.choice(["ASC", "DESC"]),
                   "COUNT", str(rng.randint(1, 320)), "WITHDIST"]
            if rng.random() < 0.3:
                cmd.append("ANY")
            got, want = r.cmd(*cmd), d.cmd(*cmd)
            assert got == want, f"step {step}: {cmd}\nrespq: {got[:300]!r}\nredis: {want[:300]!r}"


def test_hostile_arguments_get_redis_errors(pair):
    rng = random.Random(9)
    junk = ["", " 1", "1 ", "nan", "-nan", "inf", "-inf", "1e400", "-1e400", "0x1p3", "1e-400", "abc", "9" * 400,
            "9223372036854775808", "-9223372036854775809", "18446744073709551615", "\x00", "1\x001", "km\x00x",
            "ANY", "COUNT", "STORE", "STOREDIST", "WITHDIST", "BYBOX", "BYRADIUS", "FROMMEMBER", "FROMLONLAT"]
    with pair.respq.raw() as r, pair.redis.raw() as d:
        for c in (r, d):
            c.cmd("FLUSHALL")
            c.cmd("GEOADD", "h", "1", "1", "a", "1.001", "1.001", "b")
        base = [["GEORADIUS", "h", "1", "1", "10", "km", "COUNT", "1"],
                ["GEOSEARCH", "h", "FROMLONLAT", "1", "1", "BYBOX", "10", "10", "km", "COUNT", "2", "ANY"],
                ["GEOSEARCHSTORE", "d", "h", "FROMMEMBER", "a", "BYRADIUS", "10", "km", "STOREDIST"],
                ["GEORADIUSBYMEMBER", "h", "a", "10", "km", "STORE", "d"], ["GEODIST", "h", "a", "b", "km"],
                ["GEOADD", "h", "1", "1", "c"]]
        for step in range(1500):
            cmd = list(rng.choice(base))
            for _ in range(rng.randint(1, 3)):
                roll = rng.random()
                pos = rng.randrange(2, len(cmd) + 1)
                if roll < 0.6 and pos < len(cmd):
                    cmd[pos] = rng.choice(junk)
                elif roll < 0.8:
                    cmd.insert(pos, rng.choice(junk))
                elif len(cmd) > 3:
                    del cmd[rng.randrange(2, len(cmd))]
            got, want = r.cmd(*cmd), d.cmd(*cmd)
            assert got == want, f"step {step}: {cmd}\nrespq: {got[:300]!r}\nredis: {want[:300]!r}"
        assert r.cmd("PING") == b"+PONG\r\n"


def test_keyspace_events_match_redis(pair):
    script = [["GEOADD", "g", "1", "1", "a", "2", "2", "b"], ["GEOADD", "g", "NX", "1", "1", "a"],
              ["GEOADD", "g", "XX", "CH", "1.5", "1.5", "a"], ["GEOADD", "g", "500", "1", "bad"],
              ["GEOSEARCH", "nokey", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km"],
              ["GEOPOS", "nokey", "a"], ["GEODIST", "nokey", "a", "b"],
              ["GEOSEARCHSTORE", "s", "g", "FROMLONLAT", "1", "1", "BYRADIUS", "500", "km"],
              ["GEORADIUS", "g", "1", "1", "500", "km", "STORE", "r"],
              ["GEORADIUSBYMEMBER", "g", "a", "500", "km", "STOREDIST", "r"],
              ["GEORADIUS", "g", "-100", "-50", "1", "km", "STORE", "r"],
              ["GEOSEARCHSTORE", "s", "nokey", "FROMLONLAT", "1", "1", "BYRADIUS", "500", "km"],
              ["GEORADIUS_RO", "nokey", "1", "1", "1", "km"],
              # A destination past its deadline: "expired", then "new" (respq's active expiry
              # off; Redis's expiry cycle, if it runs first, tells the same).
              ["DEBUG", "SET-ACTIVE-EXPIRE", "0"], ["SET", "e1", "x", "PX", "1"], ["sleep", 0.02],
              ["GEORADIUS", "g", "1", "1", "500", "km", "STORE", "e1"], ["DEBUG", "SET-ACTIVE-EXPIRE", "1"]]
    # "n": the stores' new keys too.
    events = {name: keyspace_events(srv, script, classes="KEAnm") for name, srv in (("respq", pair.respq), ("redis", pair.redis))}
    assert events["respq"] == events["redis"], events
    assert ("__keyevent@0__:new", "s") in events["redis"]
    assert ("__keyevent@0__:expired", "e1") in events["redis"]
    assert ("__keyevent@0__:geosearchstore", "s") in events["redis"]
    assert ("__keyevent@0__:georadiusstore", "r") in events["redis"]
    assert ("__keyevent@0__:zadd", "g") in events["redis"]



def replies_survive_a_restart(r, queries):
    """The replies to `queries` before and after a restart from the AOF: the same; returned."""
    with r.raw() as raw:
        before = [raw.cmd(*q) for q in queries]
    r.restart()
    with r.raw() as raw:
        after = [raw.cmd(*q) for q in queries]
    assert after == before
    return before

def test_values_survive_a_restart_and_a_rewrite_of_the_aof():
    rng = random.Random(3)
    with Respq("--http-queue", "tasks", "off", "--appendonly", "yes") as r:
        c = r.client()
        args = []
        for i in range(300):
            args += [f"{rng.uniform(-10, 10):.6f}", f"{rng.uniform(40, 50):.6f}", f"p{i}"]
        assert c.execute_command("GEOADD", "places", *args) == 300
        c.execute_command("GEOADD", "small", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania")
        with r.raw() as raw:
            assert raw.cmd("GEOSEARCHSTORE", "near", "places", "FROMLONLAT", "0", "45", "BYRADIUS", "300", "km",
                           "STOREDIST") not in (b":0\r\n",)
            assert raw.cmd("GEORADIUS", "places", "5", "45", "200", "km", "COUNT", "20", "STORE", "top") == b":20\r\n"
        queries = [["GEOSEARCH", "places", "FROMLONLAT", "0", "45", "BYBOX", "400", "300", "km", "ASC", "WITHDIST",
                    "WITHCOORD", "WITHHASH"],
                   ["GEOPOS", "small", "Palermo", "Catania"], ["GEODIST", "small", "Palermo", "Catania", "mi"],
                   ["GEOHASH", "places", "p1", "p2", "p3"], ["ZRANGE", "near", "0", "-1", "WITHSCORES"],
                   ["ZRANGE", "top", "0", "-1", "WITHSCORES"], ["ZRANGE", "places", "0", "-1", "WITHSCORES"]]
        replies_survive_a_restart(r, queries)
        # GEOADD reached the AOF as the ZADD Redis logs for it; the stores as sent.
        logged = b""
        for root, _, files in os.walk(r.dir):
            for f in files:
                if "aof" in f:
                    with open(os.path.join(root, f), "rb") as fh:
                        logged += fh.read()
        assert b"ZADD" in logged and b"GEOADD" not in logged.upper()
        assert b"GEOSEARCHSTORE" in logged and b"GEORADIUS" in logged

        # A rewrite, with geo writes and stores going on while it runs: the file it leaves
        # gives the same values again.
        c = r.client()
        rewrites = int(info_field(r.port, "persistence", "aof_rewrites"))
        assert c.bgrewriteaof()
        with r.raw() as raw:
            for i in range(200):
                raw.cmd("GEOADD", "places", f"{rng.uniform(-10, 10):.6f}", f"{rng.uniform(40, 50):.6f}", f"n{i}")
                raw.cmd("GEOSEARCHSTORE", "near", "places", "FROMMEMBER", f"n{i}", "BYRADIUS", "100", "km", "STOREDIST")
                raw.cmd("GEORADIUSBYMEMBER", "places", f"p{i}", "50", "km", "COUNT", "5", "STORE", f"top{i % 7}")
        wait_until(lambda: int(info_field(r.port, "persistence", "aof_rewrites")) == rewrites + 1
                   and info_field(r.port, "persistence", "aof_rewrite_in_progress") == "0",
                   timeout=30, what="the rewrite to finish")
        assert info_field(r.port, "persistence", "aof_last_bgrewrite_status") == "ok"
        queries += [["ZRANGE", f"top{i}", "0", "-1", "WITHSCORES"] for i in range(7)]
        before = replies_survive_a_restart(r, queries)
        assert b"n199" in before[-8]  # the rewrite's file and the writes during it are all there


if __name__ == "__main__":
    run_tests(globals(), setup=setup)
