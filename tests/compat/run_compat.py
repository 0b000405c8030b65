#!/usr/bin/python3
"""respq/Redis compatibility suite.

Sends the command scripts in tests/compat/scripts/*.txt to a real redis-server and to
respq (both started here on free loopback ports) and compares the raw reply bytes.
Every difference is reported with script, line, command and both replies (escaped);
the exit status is 1 when there is any difference, 2 on a usage or start-up error.

    run_compat.py                 # redis-server vs respq (RESPQ_SERVER or build/broker/respq-server)
    run_compat.py --self          # redis-server vs redis-server: proves the scripts deterministic
    run_compat.py --show lists    # also print every reply of the scripts whose name matches 'lists'
    run_compat.py --protocol 3 blocking.txt

The script format is described in tests/compat/README.md.
"""
import argparse
import concurrent.futures
import glob
import os
import re
import select
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402

SCRIPTS_DIR = os.path.join(HERE, "scripts")
READ_TIMEOUT_MS = 3000        # default wait for a reply (@timeout changes it per script)
CLOSE_TIMEOUT_MS = 2000       # @closed: how long the server has to close the connection
SETTLE_MS = int(os.environ.get("COMPAT_SETTLE_MS", "50"))   # pause after @send
CONNECT_TIMEOUT = 5.0
DISPLAY_MAX = 3000            # replies longer than this are cut in reports
MAX_MISSED = 5                # a script stops after this many missing replies in a row

# The reference server: Redis's defaults, 16 databases as respq's.
REDIS_ARGS = []


class ScriptError(Exception):
    """A malformed script line."""


# --------------------------------------------------------------------------------------
# Script parsing
# --------------------------------------------------------------------------------------

_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "a": "\a", "\\": "\\", '"': '"'}


def split_args(line):
    """Splits a line like redis-cli (sdssplitargs) does. Returns a list of bytes."""
    out = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i].isspace():
            i += 1
        if i >= n:
            return out
        cur = bytearray()
        inq = insq = False
        while True:
            if inq:
                if i >= n:
                    raise ScriptError("unbalanced double quotes")
                c = line[i]
                if c == "\\" and i + 3 < n and line[i + 1] == "x" and \
                        all(ch in "0123456789abcdefABCDEF" for ch in line[i + 2:i + 4]):
                    cur.append(int(line[i + 2:i + 4], 16))
                    i += 3
                elif c == "\\" and i + 1 < n:
                    i += 1
                    cur += _SIMPLE_ESCAPES.get(line[i], line[i]).encode()
                elif c == '"':
                    if i + 1 < n and not line[i + 1].isspace():
                        raise ScriptError("closing quote must be followed by a space")
                    inq = False
                    i += 1
                    break
                else:
                    cur += c.encode()
            elif insq:
                if i >= n:
                    raise ScriptError("unbalanced single quotes")
                c = line[i]
                if c == "\\" and i + 1 < n and line[i + 1] == "'":
                    i += 1
                    cur += b"'"
                elif c == "'":
                    if i + 1 < n and not line[i + 1].isspace():
                        raise ScriptError("closing quote must be followed by a space")
                    insq = False
                    i += 1
                    break
                else:
                    cur += c.encode()
            else:
                if i >= n:
                    break
                c = line[i]
                if c.isspace():
                    break
                if c == '"':
                    inq = True
                elif c == "'":
                    insq = True
                else:
                    cur += c.encode()
            i += 1
        out.append(bytes(cur))


MODIFIERS = ("@shape", "@type", "@sorted", "@fields", "@match")
DIRECTIVES = ("@conn", "@disconnect", "@send", "@read", "@noreply", "@sleep", "@raw", "@raw-repeat",
              "@raw-replies", "@closed", "@resp3", "@scanall", "@timeout", "@protocol")


class Step:
    """One line of a script: a command or a directive, with its comparison mode."""

    def __init__(self, lineno, text, kind, args, mode="exact", regex=None):
        self.lineno = lineno
        self.text = text
        self.kind = kind          # "cmd" or a directive name such as "@send"
        self.args = args          # list of bytes
        self.mode = mode
        self.regex = regex


def _int_arg(args, i, what, default=None):
    if i >= len(args):
        if default is None:
            raise ScriptError(f"{what} expected")
        return default
    try:
        return int(args[i])
    except ValueError:
        raise ScriptError(f"{what} must be an integer, got {args[i]!r}")


def parse_script(path):
    """Returns (protocols, steps)."""
    protocols = [2, 3]
    steps = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for lineno, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        try:
            rest = text
            mode, regex = "exact", None
            while True:
                word = rest.split(None, 1)[0]
                if word not in MODIFIERS:
                    break
                if mode != "exact":
                    raise ScriptError("only one comparison modifier per line")
                mode = word[1:]
                rest = rest[len(word):].lstrip()
                if word == "@match":
                    toks = split_args(rest)
                    if not toks:
                        raise ScriptError("@match needs a regular expression")
                    try:
                        regex = re.compile(toks[0], re.S)
                    except re.error as e:
                        raise ScriptError(f"bad regular expression: {e}")
                    # drop the first token (the regex) from the text
                    rest = _drop_first_token(rest)
                if not rest:
                    raise ScriptError(f"{word} needs a command or directive after it")
            word = rest.split(None, 1)[0]
            if word.startswith("@"):
                if word not in DIRECTIVES:
                    raise ScriptError(f"unknown directive {word}")
                args = split_args(rest[len(word):])
                kind = word
                _check_directive(kind, args)
                if kind == "@protocol":
                    if steps:
                        raise ScriptError("@protocol must come before any command")
                    protocols = [int(a) for a in args]
                    if not protocols or any(p not in (2, 3) for p in protocols):
                        raise ScriptError("@protocol takes 2 and/or 3")
                    continue
            else:
                kind, args = "cmd", split_args(rest)
            steps.append(Step(lineno, text, kind, args, mode, regex))
        except ScriptError as e:
            raise ScriptError(f"{os.path.basename(path)}:{lineno}: {e}: {text}")
    return protocols, steps


def _drop_first_token(s):
    s = s.lstrip()
    i = 0
    q = None
    while i < len(s):
        c = s[i]
        if q:
            if c == "\\" and q == '"':
                i += 2
                continue
            if c == "\\" and q == "'" and i + 1 < len(s) and s[i + 1] == "'":
                i += 2
                continue
            if c == q:
                q = None
        elif c in "\"'":
            q = c
        elif c.isspace():
            break
        i += 1
    return s[i:].lstrip()


def _check_directive(kind, args):
    if kind in ("@conn",) and len(args) != 1:
        raise ScriptError("@conn takes one name")
    if kind in ("@send", "@scanall") and not args:
        raise ScriptError(f"{kind} needs a command")
    if kind in ("@sleep", "@noreply", "@timeout", "@raw-replies"):
        if len(args) != 1:
            raise ScriptError(f"{kind} takes one integer")
        _int_arg(args, 0, kind)
    if kind == "@read":
        if len(args) > 2:
            raise ScriptError("@read takes [count] [timeout-ms]")
        for i in range(len(args)):
            _int_arg(args, i, "@read argument")
    if kind == "@raw" and not args:
        raise ScriptError("@raw needs bytes")
    if kind == "@raw-repeat":
        if len(args) < 2:
            raise ScriptError("@raw-repeat takes a count and bytes")
        _int_arg(args, 0, "@raw-repeat count")
    if kind in ("@closed", "@resp3", "@disconnect") and args:
        raise ScriptError(f"{kind} takes no arguments")


# --------------------------------------------------------------------------------------
# RESP replies
# --------------------------------------------------------------------------------------

class Incomplete(Exception):
    pass


class BadReply(Exception):
    pass


class Node:
    """A parsed reply: type byte, raw bytes (whole node), and children for aggregates."""
    __slots__ = ("t", "raw", "head", "children", "null")

    def __init__(self, t, raw, head=b"", children=None, null=False):
        self.t = t
        self.raw = raw
        self.head = head
        self.children = children
        self.null = null

    def scalar(self):
        """The value bytes of a string-like scalar."""
        if self.t in b"$=!":
            body = self.raw[self.raw.index(b"\r\n") + 2:-2]
            return body
        return self.raw[1:-2]


AGG = b"*~>%|"


def parse_reply(buf, pos=0):
    """Parses one reply from buf at pos. Returns (Node, new_pos); raises Incomplete."""
    nl = buf.find(b"\r\n", pos)
    if nl < 0:
        raise Incomplete()
    line = buf[pos:nl + 2]
    t = line[:1]
    end = nl + 2
    if t in (b"+", b"-", b":", b"_", b",", b"#", b"("):
        return Node(t, line), end
    if t in (b"$", b"=", b"!"):
        try:
            n = int(line[1:-2])
        except ValueError:
            raise BadReply(line)
        if n < 0:
            return Node(t, line, null=True), end
        if len(buf) < end + n + 2:
            raise Incomplete()
        return Node(t, buf[pos:end + n + 2]), end + n + 2
    if t and t in AGG:
        try:
            n = int(line[1:-2])
        except ValueError:
            raise BadReply(line)
        if n < 0:
            return Node(t, line, head=line, children=[], null=True), end
        count = n * 2 if t in (b"%", b"|") else n
        kids = []
        p = end
        for _ in range(count):
            k, p = parse_reply(buf, p)
            kids.append(k)
        if t == b"|":  # attribute: the real reply follows
            k, p = parse_reply(buf, p)
            kids.append(k)
        return Node(t, buf[pos:p], head=line, children=kids), p
    raise BadReply(line)


def serialize(node):
    if node.children is None or node.null:
        return node.raw
    return node.head + b"".join(serialize(k) for k in node.children)


def shape(node):
    t = node.t.decode()
    if node.null:
        return t + "null"
    if node.children is None:
        return t
    if node.t == b"|":
        return "|" + shape(node.children[-1])
    return f"{t}{len(node.children)}[" + ",".join(shape(k) for k in node.children) + "]"


def sort_node(node):
    if node.children is None or node.null:
        return node
    kids = [sort_node(k) for k in node.children]
    if node.t in (b"%", b"|"):
        pairs = [kids[i:i + 2] for i in range(0, len(kids) - (len(kids) % 2), 2)]
        pairs.sort(key=lambda p: serialize(p[0]) + serialize(p[1]))
        kids = [x for p in pairs for x in p] + (kids[-1:] if len(kids) % 2 else [])
    else:
        kids.sort(key=serialize)
    return Node(node.t, b"", head=node.head, children=kids)


def field_names(node):
    """For a bulk/verbatim string of 'k=v k=v' lines: the field names of every line."""
    if node.t not in b"$=" or node.null:
        return "exact:" + escape(node.raw)
    body = node.scalar()
    if node.t == b"=":
        body = body[4:]
    lines = [ln for ln in body.split(b"\n")]
    out = []
    for ln in lines:
        ln = ln.rstrip(b"\r")
        out.append(" ".join(tok.split(b"=", 1)[0].decode("latin-1") + ("=" if b"=" in tok else "")
                            for tok in ln.split(b" ") if tok))
    return node.t.decode() + "|".join(out)


def _bulk(b):
    return Node(b"$", b"$%d\r\n%s\r\n" % (len(b), b))


def normalize_hello(node):
    """HELLO replies (wherever they appear, also inside an EXEC array): the connection id
    differs between servers, so only its type is compared. A version 7.x.y is shown as
    7.x (respq is compared with Redis 7, not with one release of it)."""
    if node.children is None or node.null or not node.children:
        return node
    kids = [normalize_hello(k) for k in node.children]
    if node.t in b"*%" and len(kids) % 2 == 0 and kids[0].t in b"$+" \
            and kids[0].scalar() == b"server":
        for i in range(0, len(kids) - 1, 2):
            key = kids[i]
            if key.t not in b"$+":
                continue
            name = key.scalar()
            if name == b"id":
                kids[i + 1] = Node(kids[i + 1].t, b"<" + kids[i + 1].t + b"id>")
            elif name == b"version" and kids[i + 1].t in b"$+":
                if re.match(rb"7\.\d+\.\d+$", kids[i + 1].scalar()):
                    kids[i + 1] = _bulk(b"7.x")
    return Node(node.t, b"", head=node.head, children=kids)


def escape(b):
    out = []
    for c in b:
        if c == 0x0D:
            out.append("\\r")
        elif c == 0x0A:
            out.append("\\n")
        elif c == 0x09:
            out.append("\\t")
        elif c == 0x5C:
            out.append("\\\\")
        elif 0x20 <= c < 0x7F:
            out.append(chr(c))
        else:
            out.append("\\x%02x" % c)
    return "".join(out)


# --------------------------------------------------------------------------------------
# Connections
# --------------------------------------------------------------------------------------

class Conn:
    """A client connection that reads whole RESP replies with deadlines, never losing
    bytes on a timeout."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buf = b""
        self.eof = False
        self.client_id = None
        self.pending = []     # commands sent with @send whose replies are not read yet

    def local_addr(self):
        h, p = self.sock.getsockname()[:2]
        return f"{h}:{p}"

    def peer_addr(self):
        h, p = self.sock.getpeername()[:2]
        return f"{h}:{p}"

    def send(self, data):
        view = memoryview(data)
        deadline = time.monotonic() + 10
        while view:
            try:
                n = self.sock.send(view)
                view = view[n:]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError("send timed out")
                select.select([], [self.sock], [], 0.1)

    def _fill(self, deadline):
        """Reads available bytes, waiting until deadline. False on timeout or EOF."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([self.sock], [], [], left)
        if not r:
            return False
        try:
            chunk = self.sock.recv(1 << 16)
        except BlockingIOError:
            return True
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_reply(self, timeout_ms):
        """Returns a Node, or None on timeout / EOF (see self.eof)."""
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            if self.buf:
                try:
                    node, p = parse_reply(self.buf)
                    self.buf = self.buf[p:]
                    return node
                except Incomplete:
                    pass
            if not self._fill(deadline):
                return None

    def close(self, wait_ms=CLOSE_TIMEOUT_MS):
        """Half-closes and waits for the server to close its side, so that the server has
        processed the disconnect (subscriptions, blocked pops) before the next script."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + wait_ms / 1000.0
            while self._fill(deadline):
                self.buf = b""
        except OSError:
            pass
        self.sock.close()


def encode_command(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


# --------------------------------------------------------------------------------------
# Running a script against one server
# --------------------------------------------------------------------------------------

class Result:
    """What one step produced on one server: display text and the comparison key."""

    def __init__(self, lineno, label, display, key):
        self.lineno = lineno
        self.label = label
        self.display = display
        self.key = key


def compare_key(node, mode, regex):
    if node is None:
        return "<none>"
    node = normalize_hello(node)
    if mode == "exact":
        return serialize(node)
    if mode == "shape":
        return shape(node)
    if mode == "type":
        return node.t.decode() + ("null" if node.null else "")
    if mode == "sorted":
        return serialize(sort_node(node))
    if mode == "fields":
        return field_names(node)
    if mode == "match":
        return "matches" if regex.search(node.raw) else "does not match: " + escape(node.raw)
    raise AssertionError(mode)


class Runner:
    def __init__(self, port, protocol, script_name):
        self.port = port
        self.protocol = protocol
        self.script = script_name
        self.conns = {}
        self.current = "main"
        self.timeout_ms = READ_TIMEOUT_MS
        self.results = []
        self.missed = 0       # replies missed in a row (a server that stopped answering)

    # -- connections --
    def conn(self, lineno, name=None):
        name = name or self.current
        c = self.conns.get(name)
        if c is not None and not c.eof:
            return c
        if c is not None:
            c.close(0)
        c = Conn(self.port)
        self.conns[name] = c
        if self.protocol == 3:
            c.send(encode_command([b"HELLO", b"3"]))
            node = c.read_reply(self.timeout_ms)
            self.record(lineno, f"(new connection '{name}') HELLO 3", [node], c, "exact", None)
        return c

    def abandon(self, c):
        """A command got no reply in time: its late reply would be taken for the next
        command's, so the connection is dropped and the next use of its name opens a new
        one (the transcript already shows the missing reply)."""
        self.missed += 1
        if not c.eof:
            c.close(0)
            c.eof = True

    def close_all(self):
        for c in self.conns.values():
            c.close()
        self.conns = {}

    # -- recording --
    def record(self, lineno, label, nodes, c, mode, regex, extra=""):
        shown, keys = [], []
        for node in nodes:
            if node is None:
                what = "<connection closed>" if c is not None and c.eof else "<no reply>"
                shown.append(what)
                keys.append(what)
            else:
                self.missed = 0
                shown.append(escape(node.raw if node.raw else serialize(node)))
                keys.append(compare_key(node, mode, regex))
        if extra:
            shown.append(extra)
            keys.append(extra)
        disp = " ".join(shown) if shown else "<nothing>"
        if len(disp) > DISPLAY_MAX:
            disp = disp[:DISPLAY_MAX] + f"... ({len(disp)} characters)"
        key = tuple(k if isinstance(k, str) else escape(k) for k in keys)
        self.results.append(Result(lineno, label, disp, (mode,) + key))

    def substitute(self, lineno, args):
        """{id:NAME} {addr:NAME} {laddr:NAME} in arguments."""
        out = []
        for a in args:
            m = re.fullmatch(rb"\{(id|addr|laddr):([A-Za-z0-9_-]+)\}", a)
            if not m:
                out.append(a)
                continue
            what, name = m.group(1).decode(), m.group(2).decode()
            # A connection the server has closed keeps its id and addresses: they are what
            # a later CLIENT KILL of the same name must refer to.
            c = self.conns.get(name)
            if c is None:
                c = self.conn(lineno, name)
            if what == "addr":
                out.append(c.local_addr().encode())
            elif what == "laddr":
                out.append(c.peer_addr().encode())
            else:
                if c.client_id is None:
                    if c.eof:
                        raise RuntimeError(f"connection '{name}' is closed; use {{id:{name}}} "
                                           "before it closes")
                    c.send(encode_command([b"CLIENT", b"ID"]))
                    node = c.read_reply(self.timeout_ms)
                    if node is None or node.t != b":":
                        raise RuntimeError(f"CLIENT ID on '{name}' failed: "
                                           f"{escape(node.raw) if node else 'no reply'}")
                    c.client_id = node.raw[1:-2]
                out.append(c.client_id)
        return out

    # -- steps --
    def run(self, steps):
        setup = Conn(self.port)
        node = None
        try:
            setup.send(encode_command([b"FLUSHALL"]))
            node = setup.read_reply(self.timeout_ms)
            self.record(0, "(setup) FLUSHALL", [node], setup, "exact", None)
        finally:
            setup.close(0 if node is None else CLOSE_TIMEOUT_MS)
        if node is None:
            return self.results   # the server does not answer: nothing to compare
        for st in steps:
            if self.missed >= MAX_MISSED:
                self.results.append(Result(st.lineno, "(rest of the script)",
                                           f"<skipped: {MAX_MISSED} replies in a row missing>",
                                           ("skipped",)))
                break
            try:
                self.step(st)
            except (OSError, RuntimeError, BadReply) as e:
                what = f"<invalid reply line: {escape(e.args[0])}>" if isinstance(e, BadReply) \
                    else f"<runner error: {e}>"
                self.results.append(Result(st.lineno, st.text, what,
                                           ("error", type(e).__name__, str(e)[:40])))
                # Whatever follows on that connection cannot be trusted: start afresh.
                c = self.conns.get(self.current)
                if c is not None:
                    c.buf = b""
                    self.abandon(c)
        self.close_all()
        return self.results

    def step(self, st):
        k, a = st.kind, st.args
        if k == "@conn":
            self.current = a[0].decode()
            return
        if k == "@sleep":
            time.sleep(int(a[0]) / 1000.0)
            return
        if k == "@timeout":
            self.timeout_ms = int(a[0])
            return
        if k == "@disconnect":
            c = self.conns.get(self.current)
            if c is not None and not c.eof:
                c.close()
                c.eof = True
            return
        c = self.conn(st.lineno)
        if k == "cmd":
            args = self.substitute(st.lineno, a)
            c.send(encode_command(args))
            node = c.read_reply(self.timeout_ms)
            self.record(st.lineno, st.text, [node], c, st.mode, st.regex)
            if node is None:
                self.abandon(c)
        elif k == "@send":
            args = self.substitute(st.lineno, a)
            c.send(encode_command(args))
            c.pending.append(" ".join(st.text.split()[1:]))
            time.sleep(SETTLE_MS / 1000.0)
        elif k == "@read":
            n = int(a[0]) if a else 1
            t = int(a[1]) if len(a) > 1 else self.timeout_ms
            nodes = []
            for _ in range(n):
                node = c.read_reply(t)
                nodes.append(node)
                if node is None:
                    break
            label = st.text
            if c.pending:
                label += "  (reply to: " + c.pending[0] + ")"
                del c.pending[:n]
            self.record(st.lineno, label, nodes, c, st.mode, st.regex)
            if nodes and nodes[-1] is None:
                self.abandon(c)
        elif k == "@noreply":
            deadline = time.monotonic() + int(a[0]) / 1000.0
            while c._fill(deadline):
                pass
            nodes = []
            while c.buf:
                try:
                    node, p = parse_reply(c.buf)
                except Incomplete:
                    break
                c.buf = c.buf[p:]
                nodes.append(node)
            extra = ""
            if c.buf:
                extra = "<partial: " + escape(c.buf) + ">"
                c.buf = b""
            if c.eof:
                extra += "<connection closed>"
            self.record(st.lineno, st.text, nodes, c, st.mode, st.regex, extra=extra)
        elif k == "@resp3":
            c.send(encode_command([b"HELLO", b"3"]))
            node = c.read_reply(self.timeout_ms)
            self.record(st.lineno, st.text, [node], c, st.mode, st.regex)
        elif k == "@raw":
            c.send(b"".join(a))
        elif k == "@raw-repeat":
            c.send(b"".join(a[1:]) * int(a[0]))
        elif k == "@raw-replies":
            nodes = []
            for _ in range(int(a[0])):
                node = c.read_reply(self.timeout_ms)
                nodes.append(node)
                if node is None:
                    break
            self.record(st.lineno, st.text, nodes, c, st.mode, st.regex)
            if nodes and nodes[-1] is None:
                self.abandon(c)
        elif k == "@closed":
            nodes = []
            deadline = time.monotonic() + CLOSE_TIMEOUT_MS / 1000.0
            while True:
                node = c.read_reply(max(0.0, (deadline - time.monotonic()) * 1000))
                if node is None:
                    break
                nodes.append(node)
            extra = ""
            if c.buf:
                extra = "<partial: " + escape(c.buf) + "> "
            extra += "<connection closed>" if c.eof else "<still open>"
            self.record(st.lineno, st.text, nodes, c, st.mode, st.regex, extra=extra)
            if not c.eof:
                c.close(0)
            c.eof = True   # the next use of this name opens a fresh connection
        elif k == "@scanall":
            self.scanall(st, c)
        else:
            raise AssertionError(k)

    def scanall(self, st, c):
        """Iterates SCAN (or HSCAN/SSCAN/ZSCAN key) to cursor 0; records the sorted set of
        what it returned (field-value pairs kept together), or the first error."""
        args = self.substitute(st.lineno, st.args)
        name = args[0].upper()
        ci = 1 if name == b"SCAN" else 2
        group = 2 if name in (b"HSCAN", b"ZSCAN") else 1
        if len(args) <= ci:
            raise RuntimeError("@scanall needs a SCAN-like command and a cursor")
        items = set()
        cursor = args[ci]
        for _ in range(100000):
            c.send(encode_command(args[:ci] + [cursor] + args[ci + 1:]))
            node = c.read_reply(self.timeout_ms)
            if node is None or node.t not in b"*" or node.null or len(node.children) != 2 \
                    or node.children[1].t not in b"*~":
                self.record(st.lineno, st.text, [node], c, st.mode, st.regex)
                return
            cursor = node.children[0].scalar()
            flat = [k.scalar() for k in node.children[1].children]
            for i in range(0, len(flat), group):
                items.add(tuple(flat[i:i + group]))
            if cursor == b"0":
                break
        else:
            raise RuntimeError("SCAN did not finish")
        flat = [x for item in sorted(items) for x in item]
        out = b"*%d\r\n" % len(flat) + b"".join(_bulk(k).raw for k in flat)
        node, _ = parse_reply(out)
        self.record(st.lineno, st.text + "  (all items, sorted)", [node], c, "exact", None)


# --------------------------------------------------------------------------------------
# Servers and main
# --------------------------------------------------------------------------------------

class Target:
    def __init__(self, label, factory):
        self.label = label
        self.factory = factory
        self.server = None
        self.start_error = None

    def ensure(self):
        """The running server, restarted if it has exited (a crash is reported by the
        script it happened in). Raises if it cannot be started; once that has happened it
        is not tried again."""
        if self.start_error is not None:
            raise RuntimeError(self.start_error)
        if self.server is None or not self.server.alive():
            if self.server is not None:
                self.server.stop()
                self.server.cleanup()
                self.server = None
            try:
                self.server = self.factory()
            except Exception as e:
                self.start_error = f"{self.label} could not be started: {e}"
                raise RuntimeError(self.start_error)
        return self.server

    def stop(self):
        if self.server is not None:
            self.server.stop()
            self.server.cleanup()
            self.server = None


def run_one(target, protocol, name, steps):
    try:
        srv = target.ensure()
    except RuntimeError as e:
        return [Result(0, "(setup)", f"<{e}>", ("not started",))]
    try:
        res = Runner(srv.port, protocol, name).run(steps)
    except Exception as e:  # a connection refused at set-up and the like
        res = [Result(0, "(setup)", f"<runner error: {e}>", ("error", type(e).__name__))]
    crashed = not srv.alive()
    if crashed:
        res.append(Result(10 ** 9, "(end of script)", f"<{target.label} exited>", ("crashed",)))
    return res


def diff(name, protocol, ra, rb, la, lb, out):
    """Compares two transcripts line by line (so that an extra or missing reply on one
    line does not shift the rest). Returns the number of differences written."""
    def by_line(rs):
        d = {}
        for r in rs:
            d.setdefault(r.lineno, []).append(r)
        return d
    da, db = by_line(ra), by_line(rb)
    n = 0
    width = max(len(la), len(lb))
    for lineno in sorted(set(da) | set(db)):
        # Pair the entries of one line by label: the k-th entry labelled L on one side
        # with the k-th labelled L on the other. A connection reopened on one side only
        # (after a dropped connection, already reported) adds a HELLO entry that has no
        # counterpart: it is not a reply to the script and is left out.
        xa, xb = da.get(lineno, []), db.get(lineno, [])
        labels = []
        for r in xa + xb:
            if r.label not in labels:
                labels.append(r.label)
        pairs = []
        for lab in labels:
            la_, lb_ = [r for r in xa if r.label == lab], [r for r in xb if r.label == lab]
            if lab.startswith("(new connection ") and (not la_ or not lb_):
                continue
            for i in range(max(len(la_), len(lb_))):
                pairs.append((la_[i] if i < len(la_) else None, lb_[i] if i < len(lb_) else None))
        for a, b in pairs:
            if a is not None and b is not None and a.key == b.key:
                continue
            n += 1
            ref = a or b
            line = "end" if lineno == 10 ** 9 else lineno
            out.write(f"{name}:{line} [RESP{protocol}] {ref.label}\n")
            out.write(f"    {la:<{width}}: {a.display if a else '<missing>'}\n")
            out.write(f"    {lb:<{width}}: {b.display if b else '<missing>'}\n")
            if a is not None and b is not None and a.key[0] != "exact":
                out.write(f"    (compared: {a.key[0]})\n")
    return n


def show(name, protocol, label, results, out):
    for r in results:
        line = "end" if r.lineno == 10 ** 9 else r.lineno
        out.write(f"{name}:{line} [RESP{protocol}] {label}: {r.label}\n    -> {r.display}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--self", dest="self_mode", action="store_true",
                    help="compare redis-server with another redis-server")
    ap.add_argument("--show", metavar="PATTERN", help="print every reply of matching scripts")
    ap.add_argument("--protocol", type=int, choices=(2, 3), help="run only this protocol")
    ap.add_argument("scripts", nargs="*", help="script names or substrings (default: all)")
    opts = ap.parse_args()

    paths = sorted(glob.glob(os.path.join(SCRIPTS_DIR, "*.txt")))
    if opts.scripts:
        paths = [p for p in paths if any(s in os.path.basename(p) for s in opts.scripts)]
    if not paths:
        print("no scripts selected", file=sys.stderr)
        return 2
    try:
        parsed = [(os.path.basename(p), *parse_script(p)) for p in paths]
    except ScriptError as e:
        print(f"script error: {e}", file=sys.stderr)
        return 2

    if opts.self_mode:
        la, lb = "redis", "redis2"
        fb = lambda: harness.RedisServer(*REDIS_ARGS)  # noqa: E731
    elif getattr(harness, "TARGET", "respq") == "redis":
        # The harness is told to stand a redis-server in for respq: this is then a
        # redis-against-redis run, like --self.
        la, lb = "redis", "redis-as-respq"
        fb = lambda: harness.Respq()  # noqa: E731
    else:
        if not (os.path.isfile(harness.SERVER) and os.access(harness.SERVER, os.X_OK)):
            print(f"respq server binary not found: {harness.SERVER} "
                  "(build it, set RESPQ_SERVER, or use --self)", file=sys.stderr)
            return 2
        la, lb = "redis", "respq"
        fb = lambda: harness.Respq()  # noqa: E731
    ta = Target(la, lambda: harness.RedisServer(*REDIS_ARGS))
    tb = Target(lb, fb)

    total_diffs = 0
    total_steps = 0
    out = sys.stdout
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            for name, protocols, steps in parsed:
                for proto in protocols:
                    if opts.protocol and proto != opts.protocol:
                        continue
                    fa = pool.submit(run_one, ta, proto, name, steps)
                    fbr = pool.submit(run_one, tb, proto, name, steps)
                    ra, rb = fa.result(), fbr.result()
                    for t in (ta, tb):
                        if t.start_error is not None:
                            out.write(f"# {t.start_error}\n")
                            return 2
                    total_steps += len(ra)
                    if opts.show and opts.show in name:
                        show(name, proto, la, ra, out)
                        show(name, proto, lb, rb, out)
                    d = diff(name, proto, ra, rb, la, lb, out)
                    total_diffs += d
                    out.write(f"# {name} RESP{proto}: {len(ra)} replies compared, "
                              f"{d} difference(s)\n")
                    out.flush()
    finally:
        ta.stop()
        tb.stop()
    out.write(f"# total: {total_steps} replies compared, {total_diffs} difference(s) "
              f"({la} vs {lb})\n")
    return 1 if total_diffs else 0


if __name__ == "__main__":
    sys.exit(main())
