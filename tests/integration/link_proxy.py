"""A TCP proxy between respq and its upstream redis-server that can lose a reply: the
fault a plain CLIENT KILL rarely hits (a command that ran on the upstream whose reply
never came back).

    with LinkProxy(up.port) as px:               # respq connects to px.port
        px.lose_next_reply("respq-take")         # the next bytes the upstream sends to the
                                                 # connection named respq-take* are dropped,
                                                 # and 50 ms later both sides are closed
        px.lose_next_reply("respq-link", after=b"LREM")  # the same, once respq has sent a
                                                 # command containing those bytes (the
                                                 # link's other traffic goes on meanwhile)
        px.stall("respq-link")                   # from now on, what respq sends on that
                                                 # connection never reaches the upstream
"""
import select
import socket
import threading
import time


class LinkProxy:
    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.armed = {}         # name prefix whose next reply is lost -> trigger bytes or None
        self.stalled = set()    # name prefixes whose commands are dropped
        self.lost = []          # (name, bytes dropped)
        self.stopping = False
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def lose_next_reply(self, name_prefix, after=None):
        with self.lock:
            self.armed[name_prefix] = after

    def stall(self, name_prefix):
        with self.lock:
            self.stalled.add(name_prefix)

    def losses(self):
        with self.lock:
            return list(self.lost)

    def _accept(self):
        while not self.stopping:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            t = threading.Thread(target=self._pump, args=(client, server), daemon=True)
            t.start()

    def _pump(self, client, server):
        name = b""
        seen = b""
        triggered = set()  # armed prefixes whose trigger this connection has sent
        try:
            while not self.stopping:
                r, _, _ = select.select([client, server], [], [], 0.2)
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    if s is client:
                        if not name:
                            seen = (seen + data)[-4096:]
                            i = seen.find(b"SETNAME\r\n$")
                            if i >= 0:
                                rest = seen[i + 10:]
                                n, _, tail = rest.partition(b"\r\n")
                                if n.isdigit() and len(tail) >= int(n):
                                    name = tail[:int(n)]
                        with self.lock:
                            dropped = bool(name) and any(name.decode().startswith(p) for p in self.stalled)
                            if name:
                                triggered.update(p for p, t in self.armed.items()
                                                 if t is not None and name.decode().startswith(p) and t in data)
                        if not dropped:
                            server.sendall(data)
                        continue
                    with self.lock:
                        hit = next((p for p, t in self.armed.items() if name.decode().startswith(p)
                                    and (t is None or p in triggered)), None) if name else None
                        if hit is not None:
                            del self.armed[hit]
                            self.lost.append((name.decode(), data))
                    if hit is not None:
                        # Let the upstream finish what it received, then cut both sides.
                        time.sleep(0.05)
                        return
                    client.sendall(data)
        except OSError:
            return
        finally:
            client.close()
            server.close()

    def close(self):
        self.stopping = True
        self.listener.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
