#!/usr/bin/env python3
"""Is a CQL server answering? Standard library only.

Speaks the CQL native protocol v4: STARTUP (and, given a user and password, a SASL PLAIN
login when the server asks for one), then QUERY "SELECT release_version FROM system.local",
and expects a ROWS result. Prints the release version and exits 0 if so; prints why not to
stderr and exits 1 otherwise.

usage: cql_ping.py [host] [port] [timeout_seconds] [user password]
"""
import socket
import struct
import sys

VERSION = 0x04  # request frames, protocol v4
OP_ERROR, OP_STARTUP, OP_READY, OP_AUTHENTICATE, OP_QUERY, OP_RESULT = 0x00, 0x01, 0x02, 0x03, 0x07, 0x08
OP_AUTH_RESPONSE, OP_AUTH_SUCCESS = 0x0F, 0x10
RESULT_ROWS = 0x0002
CONSISTENCY_ONE = 0x0001


def string(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def long_string(s):
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by server")
        buf += chunk
    return buf


def request(sock, stream, opcode, body):
    sock.sendall(struct.pack(">BBhBi", VERSION, 0, stream, opcode, len(body)) + body)
    version, _flags, rstream, ropcode, length = struct.unpack(">BBhBi", recv_exact(sock, 9))
    if version != 0x80 | VERSION or rstream != stream:
        raise ConnectionError(f"unexpected frame header (version {version:#x}, stream {rstream})")
    return ropcode, recv_exact(sock, length)


def error_text(body):
    code, n = struct.unpack(">iH", body[:6])
    return f"server error {code:#06x}: {body[6:6 + n].decode(errors='replace')}"


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return values[0] if len(values) == 1 else values

    def string(self):
        n = self.take(">H")
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def bytes(self):
        n = self.take(">i")
        if n < 0:
            return None
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def type_option(self):
        kind = self.take(">H")
        if kind == 0x0000:  # custom
            self.string()
        elif kind in (0x0020, 0x0022):  # list, set
            self.type_option()
        elif kind == 0x0021:  # map
            self.type_option()
            self.type_option()
        elif kind in (0x0030, 0x0031):  # udt, tuple: not expected for release_version
            raise ValueError("unexpected column type in system.local")


def first_value_of_rows(body):
    """Decodes a ROWS result and returns the first column of the first row (or None)."""
    r = Reader(body)
    if r.take(">i") != RESULT_ROWS:
        raise ValueError("result is not ROWS")
    flags, columns = r.take(">ii")
    if flags & 0x0002:  # has_more_pages: paging state
        r.bytes()
    if flags & 0x0004:  # no_metadata
        raise ValueError("ROWS without metadata")
    if flags & 0x0001:  # global table spec
        r.string()
        r.string()
    for _ in range(columns):
        if not flags & 0x0001:
            r.string()
            r.string()
        r.string()  # column name
        r.type_option()
    rows = r.take(">i")
    if rows < 1:
        return None
    value = r.bytes()
    return value.decode() if value is not None else None


def ping(host, port, timeout, login=None):
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        opcode, body = request(sock, 1, OP_STARTUP, struct.pack(">H", 1) + string("CQL_VERSION") + string("3.0.0"))
        if opcode == OP_ERROR:
            raise ConnectionError(error_text(body))
        if opcode == OP_AUTHENTICATE:
            if login is None:
                raise ConnectionError("server requires authentication")
            user, password = login
            token = b"\0" + user.encode() + b"\0" + password.encode()
            opcode, body = request(sock, 3, OP_AUTH_RESPONSE, struct.pack(">i", len(token)) + token)
            if opcode == OP_ERROR:
                raise ConnectionError(error_text(body))
            if opcode != OP_AUTH_SUCCESS:
                raise ConnectionError(f"unexpected reply to AUTH_RESPONSE (opcode {opcode:#x})")
        elif opcode != OP_READY:
            raise ConnectionError(f"unexpected reply to STARTUP (opcode {opcode:#x})")
        query = long_string("SELECT release_version FROM system.local") + struct.pack(">HB", CONSISTENCY_ONE, 0)
        opcode, body = request(sock, 2, OP_QUERY, query)
        if opcode == OP_ERROR:
            raise ConnectionError(error_text(body))
        if opcode != OP_RESULT:
            raise ConnectionError(f"unexpected reply to QUERY (opcode {opcode:#x})")
        return first_value_of_rows(body)


def main():
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 9042
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
    login = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else None
    try:
        version = ping(host, port, timeout, login)
    except (OSError, ValueError, struct.error) as e:
        print(f"cql {host}:{port}: {e}", file=sys.stderr)
        return 1
    print(f"cql {host}:{port}: release_version {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
