"""The interop tests' Directory peer, whatever the Python Thrift library behind it.

A library's scripts (thriftpy2_*.py, apache_*.py) set up sockets, transports and protocols and hand
this module a `Types` made of the classes that library built from tests/idl/interop.thrift. Servers
serve `DirectoryHandler`; clients run `exercise` and print its results as one JSON line.

tests/tests/interop_python.rs holds the Rust twin of the handler and of the sample data below (and
checks the JSON these clients print); change both sides together.
"""

import json
import os
import sys
import threading
import time

# TApplicationException.INTERNAL_ERROR, the same number in every Thrift library.
INTERNAL_ERROR = 6

PROTOCOLS = ("binary", "compact")
# "header" is Apache's THeaderTransport/THeaderProtocol (apache_*.py only).
TRANSPORTS = ("buffered", "framed", "header")


class Types:
    """The generated classes of one library, and its TApplicationException."""

    def __init__(self, interop, shared, application_exception):
        self.User = interop.User
        self.Point = interop.Point
        self.Contact = interop.Contact
        self.NotFound = interop.NotFound
        self.Invalid = interop.Invalid
        self.Address = shared.Address
        self.Level = shared.Level
        self.TApplicationException = application_exception


# --- sample data -------------------------------------------------------------------------------------


def blank_user(t, uid):
    """`User { id, ..User::default() }`: every non-optional field set to its IDL default."""
    return t.User(
        id=uid,
        name="",
        tags=[],
        lucky={7, 13},
        scores={},
        level=t.Level.MID,
        active=True,
        nested=[],
        points={},
    )


def sample_user(t, uid, name=None):
    """What `get(uid)` answers for an id nobody put (`sample_user` in the Rust test)."""
    user = blank_user(t, uid)
    user.name = name if name is not None else "user%d" % uid
    user.address = t.Address(city="Paris", street="Rue 1", zip=75001)
    user.tags = ["a", "b"]
    user.scores = {"math": 9.5}
    user.level = t.Level.HIGH
    user.avatar = b"\x00\x01png"
    user.nested = [{"k": {1, 2}}]
    user.parent = blank_user(t, 1)
    return user


def put_user(t, with_points):
    """What clients put (`python_put_user` in the Rust test): values unlike the sample's, extremes,
    an absent optional field. Apache's generated structs are unhashable, so only libraries whose
    structs can be dict keys send a non-empty `map<Point, string>`."""
    user = blank_user(t, 3)
    user.name = "py3 \u00fc\u00df \u2603"
    user.address = t.Address(city="Berlin", zip=10117)
    user.tags = ["x", "", "z"]
    user.lucky = {-1, 0, 2**31 - 1}
    user.scores = {"a": -0.5, "b": 1e100}
    user.level = t.Level.LOW
    user.avatar = b"\xff\x00\x80"
    user.active = False
    user.nested = [{}, {"big": {-(2**63), 2**63 - 1}, "none": set()}]
    user.parent = sample_user(t, 8)
    if with_points:
        user.points = {t.Point(x=0.25, y=-3.0): "p", t.Point(x=1.0, y=2.0): "q"}
    return user


def user_json(u):
    """A user as plain JSON, sets and maps sorted, so two libraries' users compare as values."""
    if u is None:
        return None

    def opt(f, v):
        return None if v is None else f(v)

    return {
        "id": u.id,
        "name": u.name,
        "address": opt(lambda a: {"city": a.city, "street": a.street, "zip": a.zip}, u.address),
        "tags": opt(list, u.tags),
        "lucky": opt(sorted, u.lucky),
        "scores": opt(dict, u.scores),
        "level": opt(int, u.level),
        "avatar": opt(lambda b: bytes(b).hex(), u.avatar),
        "active": u.active,
        "nested": opt(lambda ms: [{k: sorted(v) for k, v in m.items()} for m in ms], u.nested),
        "parent": user_json(u.parent),
        "points": opt(lambda ps: sorted([p.x, p.y, s] for p, s in ps.items()), u.points),
    }


# --- server side -------------------------------------------------------------------------------------


class DirectoryHandler:
    """Directory as the Rust test's `Handler`: get answers stored users, then samples; count is the
    number of distinct ids put or touched, so a oneway touch shows in the next count."""

    def __init__(self, t):
        self.t = t
        self.lock = threading.Lock()
        self.users = {}
        self.touched = set()

    def ping(self, msg):
        return "pong: " + msg

    def get(self, id):
        if id == 0:
            raise self.t.Invalid(reason="id 0")
        if id == 404:
            raise self.t.NotFound(message="no such user", id=id)
        if id == 500:
            raise self.t.TApplicationException(INTERNAL_ERROR, "database down")
        with self.lock:
            stored = self.users.get(id)
        return stored if stored is not None else sample_user(self.t, id)

    def put(self, user):
        if not user.name:
            raise self.t.TApplicationException(INTERNAL_ERROR, "empty name")
        with self.lock:
            self.users[user.id] = user

    def find(self, prefix, limit, contact):
        if contact.phone is not None:
            n = contact.phone
        elif contact.email is not None:
            n = len(contact.email)
        else:
            n = 1
        return [sample_user(self.t, i, "%s%d" % (prefix, i)) for i in range(min(limit or 0, n))]

    def touch(self, id):
        with self.lock:
            self.touched.add(id)

    def count(self):
        with self.lock:
            return len(set(self.users) | self.touched)


def serve(port, start_serving, watch_stdin):
    """Prints the bound port (the first stdout line), then serves until killed, or with
    `watch_stdin` until stdin closes (the test process that started this one is gone)."""
    print(port, flush=True)
    if watch_stdin:

        def watch():
            sys.stdin.buffer.read()
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()
    start_serving()


def add_server_args(parser):
    parser.add_argument("port", type=int, help="port to listen on; 0 picks a free one")
    parser.add_argument("protocol", choices=PROTOCOLS)
    parser.add_argument("transport", choices=TRANSPORTS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes")


# --- client side -------------------------------------------------------------------------------------


class Mismatch(Exception):
    pass


def expect(what, got, want):
    if got != want:
        raise Mismatch("%s: got %r, want %r" % (what, got, want))
    return got


def expect_raises(what, call, exc_type):
    try:
        got = call()
    except exc_type as e:
        return e
    raise Mismatch("%s: got %r, want %s" % (what, got, exc_type.__name__))


def app_error_json(e):
    return {"type": e.type, "message": e.message}


def exercise(client, t, with_points, out):
    """Every Directory method and outcome against a fresh server; results go into `out`."""
    out["ping"] = expect("ping", client.ping("hi"), "pong: hi")

    got = client.get(7)
    out["get7"] = expect("get(7)", user_json(got), user_json(sample_user(t, 7)))

    e = expect_raises("get(404)", lambda: client.get(404), t.NotFound)
    out["not_found"] = {"message": e.message, "id": e.id}
    expect("get(404) NotFound", out["not_found"], {"message": "no such user", "id": 404})
    e = expect_raises("get(0)", lambda: client.get(0), t.Invalid)
    out["invalid"] = {"reason": expect("get(0) Invalid.reason", e.reason, "id 0")}
    e = expect_raises("get(500)", lambda: client.get(500), t.TApplicationException)
    out["internal"] = app_error_json(e)
    expect("get(500) type", e.type, INTERNAL_ERROR)
    if "database down" not in (e.message or ""):
        raise Mismatch("get(500): message %r lacks 'database down'" % e.message)

    user = put_user(t, with_points)
    out["put"] = expect("put", client.put(user), None)
    out["count_after_put"] = expect("count after put", client.count(), 1)
    out["put_get"] = expect("get(3) after put", user_json(client.get(3)), user_json(user))
    e = expect_raises("put(empty name)", lambda: client.put(blank_user(t, 5)), t.TApplicationException)
    out["put_empty"] = app_error_json(e)
    expect("put(empty name) type", e.type, INTERNAL_ERROR)

    finds = {
        "phone": ("x", 10, t.Contact(phone=3)),
        "email": ("y", 10, t.Contact(email="ab")),
        "where": ("z", 10, t.Contact(where=t.Point(x=1.5, y=-2.0))),
        "limit": ("w", 1, t.Contact(phone=5)),
    }
    out["find"] = {}
    for key, (prefix, limit, contact) in finds.items():
        users = client.find(prefix, limit, contact)
        want = [sample_user(t, i, "%s%d" % (prefix, i)) for i in range(len(users))]
        expect("find %s" % key, [user_json(u) for u in users], [user_json(u) for u in want])
        out["find"][key] = [u.name for u in users]
    expect("find names", out["find"], {"phone": ["x0", "x1", "x2"], "email": ["y0", "y1"],
                                       "where": ["z0"], "limit": ["w0"]})

    out["touch"] = expect("touch", client.touch(99), None)
    # A oneway call has no reply to wait for: its effect may land a moment after the next call.
    deadline = time.monotonic() + 5
    polls = 0
    while True:
        polls += 1
        count = client.count()
        if count == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    out["count_after_touch"] = expect("count after touch(99)", count, 2)
    out["touch_polls"] = polls
    out["ping_after"] = expect("ping after oneway", client.ping("bye"), "pong: bye")


def add_client_args(parser):
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("protocol", choices=PROTOCOLS)
    parser.add_argument("transport", choices=TRANSPORTS)


def run_client(library, args, client, t, with_points, after=None):
    """Runs `exercise` (then `after(out)`, if given) and prints its results as one JSON line;
    returns the exit status."""
    out = {"library": library, "protocol": args.protocol, "transport": args.transport}
    try:
        exercise(client, t, with_points, out)
        if after is not None:
            after(out)
    except Mismatch as e:
        out["error"] = str(e)
        print(json.dumps(out, sort_keys=True), flush=True)
        print("mismatch: %s" % e, file=sys.stderr)
        return 1
    out["ok"] = True
    print(json.dumps(out, sort_keys=True), flush=True)
    return 0
