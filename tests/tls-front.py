#!/usr/bin/env python3
# tls-front.py: a TLS terminator in front of a plain backend, for
# upstream-tls.test.
#
#   tls-front.py CERT KEY UPSTREAM_PORT PORTFILE LOGFILE [IDLE_SECONDS]
#
# It listens on a loopback port chosen by the kernel (written to
# PORTFILE), does the TLS handshake with what connects, and relays the
# bytes both ways to 127.0.0.1:UPSTREAM_PORT. Each connection is logged
# to LOGFILE as one JSON line: its number, the server name the client
# asked for (SNI), and whether it resumed a session, or the handshake's
# error. With IDLE_SECONDS, a connection that has answered and then sat
# idle that long is closed ("closed" is logged), as a backend with a
# short keep-alive does, so that the next request needs a new
# connection and may resume the session.
import json
import os
import select
import socket
import ssl
import sys
import threading

cert, key, upstream, portfile, logfile = sys.argv[1:6]
idle = float(sys.argv[6]) if len(sys.argv) > 6 else None
lock = threading.Lock()


def log(**kw):
    with lock:
        with open(logfile, "a") as f:
            f.write(json.dumps(kw) + "\n")


def relay(t, n):
    u = socket.create_connection(("127.0.0.1", int(upstream)))
    answered = False
    try:
        while True:
            # Bytes TLS already decrypted raise no readiness.
            ready = [t] if t.pending() else []
            if not ready:
                ready, _, _ = select.select([t, u], [], [],
                                            idle if answered and idle else None)
            if not ready:
                log(conn=n, event="closed")
                return
            if t in ready:
                d = t.recv(65536)
                if not d:
                    return
                u.sendall(d)
            if u in ready:
                d = u.recv(65536)
                if not d:
                    return
                t.sendall(d)
                answered = True
    finally:
        u.close()


def handle(s, n):
    try:
        t = ctx.wrap_socket(s, server_side=True)
    except (ssl.SSLError, OSError) as e:
        log(conn=n, error=str(e))
        s.close()
        return
    log(conn=n, reused=t.session_reused, sni=getattr(t, "sni", None),
        version=t.version())
    try:
        relay(t, n)
    except (ssl.SSLError, OSError):
        pass
    finally:
        try:
            t.close()
        except OSError:
            pass


def remember_sni(sock, name, _ctx):
    sock.sni = name


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.sni_callback = remember_sni
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(64)
with open(portfile + ".tmp", "w") as f:
    f.write(str(ls.getsockname()[1]))
os.rename(portfile + ".tmp", portfile)
n = 0
while True:
    s, _ = ls.accept()
    n += 1
    threading.Thread(target=handle, args=(s, n), daemon=True).start()
