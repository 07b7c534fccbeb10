#!/usr/bin/env python3
"""Is a Kafka broker answering, and ready to serve? Standard library only.

Sends ApiVersions (v0), then Metadata (v4) and expects at least one live (unfenced) broker in
the reply: a broker that is still fenced, or still catching up with the metadata log, does not
count as ready. Prints the broker count and exits 0 if ready; prints why not to stderr and
exits 1 otherwise.

usage: kafka_ping.py [host] [port] [timeout_seconds]
"""
import socket
import struct
import sys

API_METADATA, API_VERSIONS = 3, 18
METADATA_VERSION = 4  # last non-flexible version; supported by every 4.x broker


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return buf


def request(sock, correlation_id, api_key, api_version, body):
    """Request header v1 (key, version, correlation id, client id); response header v0."""
    client_id = b"porch-engines"
    header = struct.pack(">hhih", api_key, api_version, correlation_id, len(client_id)) + client_id
    message = header + body
    sock.sendall(struct.pack(">i", len(message)) + message)
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    reply = recv_exact(sock, size)
    if struct.unpack(">i", reply[:4])[0] != correlation_id:
        raise ConnectionError("correlation id mismatch")
    return reply[4:]


def ping(host, port, timeout):
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        # ApiVersions v0: error_code, [api_key, min_version, max_version]
        reply = request(sock, 1, API_VERSIONS, 0, b"")
        error, count = struct.unpack(">hi", reply[:6])
        if error != 0:
            raise ConnectionError(f"ApiVersions error code {error}")
        ranges = {}
        for i in range(count):
            key, lo, hi = struct.unpack_from(">hhh", reply, 6 + 6 * i)
            ranges[key] = (lo, hi)
        lo, hi = ranges.get(API_METADATA, (1, 0))
        if not lo <= METADATA_VERSION <= hi:
            raise ConnectionError(f"broker does not offer Metadata v{METADATA_VERSION}")
        # Metadata v4: topics = null (all), allow_auto_topic_creation = false
        reply = request(sock, 2, API_METADATA, METADATA_VERSION, struct.pack(">i?", -1, False))
        _throttle, brokers = struct.unpack(">ii", reply[:8])
        if brokers < 1:
            raise ConnectionError("no live broker yet (still starting or fenced)")
        return brokers


def main():
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 9092
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
    try:
        brokers = ping(host, port, timeout)
    except (OSError, struct.error) as e:
        print(f"kafka {host}:{port}: {e}", file=sys.stderr)
        return 1
    print(f"kafka {host}:{port}: {brokers} live broker(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
