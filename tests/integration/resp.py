"""A minimal Redis client (RESP2 over a socket), standard library only: enough for tests and
benchmarks to send binary-safe commands, raw pipelines, and read typed replies."""
import socket


class RedisError(Exception):
    pass


class Redis:
    def __init__(self, port, host="127.0.0.1", timeout=30):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise RedisError("connection closed")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read(self):
        """One reply: bytes, int, list, None, or a RedisError instance (not raised)."""
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return RedisError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RedisError(f"bad reply line {line!r}")

    def __call__(self, *args):
        """Send one command; return its reply, raising RedisError for an error reply."""
        self.sock.sendall(self.encode(*args))
        reply = self.read()
        if isinstance(reply, RedisError):
            raise reply
        return reply

    def pipeline(self, raw, n):
        """Send already encoded commands and return their n replies (errors as values)."""
        self.sock.sendall(raw)
        return [self.read() for _ in range(n)]

    def scan_all(self, pattern="*"):
        keys, cursor = [], b"0"
        while True:
            cursor, batch = self("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            keys += batch
            if cursor == b"0":
                return sorted(keys)
