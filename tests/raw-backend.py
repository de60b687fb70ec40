#!/usr/bin/env python3
# raw-backend.py: a backend that speaks raw bytes, for hostile-raw.test.
#
#   raw-backend.py PORTFILE LOGFILE
#
# It listens on a loopback port chosen by the kernel (written to
# PORTFILE), numbers the connections it accepts, and answers the
# gateway's probes as an Ollama with one model would. A request with
# an "X-Raw: CASE" field gets the bytes of CASE instead, written as they
# are, hostile or not. Every request read is logged to LOGFILE as one
# JSON line with its connection's number and its case, and so is what
# the backend did after an answer ("forged" sent on an idle connection,
# "closed" an idle one, "dropped" a request unread), so that a test can
# tell which connection carried what, and wait for an event instead of
# sleeping.
import json
import socket
import sys
import threading
import time

FORGED = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
          b"Content-Length: 20\r\n\r\n{\"forged\":\"FORGED\"}\n")
NDJSON = b"Content-Type: application/x-ndjson\r\n"

lock = threading.Lock()
conns = 0


def log(**kw):
    with lock:
        with open(sys.argv[2], "a") as f:
            f.write(json.dumps(kw) + "\n")


def response(body, ctype=b"application/json", extra=b""):
    return (b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\n" + extra +
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" +
            body)


OK = response(b'{"version":"raw"}')
CHUNKED = b"HTTP/1.1 200 OK\r\n" + NDJSON + b"Transfer-Encoding: chunked\r\n\r\n"
FIRST = b'8\r\n{"n":1}\n\r\n'

# What each case writes; None where the case does more than write.
CASES = {
    "ok": OK,
    "cl_te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + FORGED,
    "te_cl": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
             b"Content-Length: 48\r\n\r\n0\r\n\r\n" + FORGED,
    "cl_cl": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
             b"Content-Length: 2\r\n\r\nok" + FORGED,
    "chunk_nonhex": CHUNKED + FIRST + b"zz\r\nabc\r\n0\r\n\r\n" + FORGED,
    "chunk_space": CHUNKED + FIRST + b"3 4\r\nabc\r\n0\r\n\r\n" + FORGED,
    "chunk_overlong": CHUNKED + FIRST + b"10000000000000003\r\nabc\r\n"
                      b"0\r\n\r\n" + FORGED,
    "huge_head": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70000 +
                 b"\r\nContent-Length: 2\r\n\r\nok",
    "obs_fold": b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\n"
                b"Content-Length: 2\r\n\r\nok",
    "nul": b"HTTP/1.1 200 OK\r\nX-Nul: a\0b\r\nContent-Length: 2\r\n\r\nok",
    "extra_after": OK + FORGED,
    "head_cut": None,
    "body_cut_cl": None,
    "body_cut_chunked": None,
    "unsolicited": None,
    "close_idle": None,
    "close_on_next": None,
}


def read_request(s, buf):
    """One request: (head fields, rest of buf), or None at the end."""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return None, buf
        buf += d
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        fields[k.strip().lower()] = v.strip()
    n = int(fields.get("content-length", "0"))
    while len(buf) < n:
        d = s.recv(65536)
        if not d:
            return None, buf
        buf += d
    fields[":path"] = lines[0].split(" ")[1]
    fields[":auth"] = fields.get("authorization", "")
    return fields, buf[n:]


def probe(path):
    if path.startswith("/api/tags"):
        return response(json.dumps({"models": [{
            "name": "llama3.2:latest", "model": "llama3.2:latest",
            "size": 1, "digest": "0", "details": {}}]}).encode())
    if path.startswith("/api/ps"):
        return response(b'{"models":[]}')
    return OK


def serve(s, n):
    buf = b""
    while True:
        req, buf = read_request(s, buf)
        if req is None:
            return
        case = req.get("x-raw")
        log(conn=n, case=case, path=req[":path"], auth=req[":auth"])
        if case is None:
            s.sendall(probe(req[":path"]))
            continue
        out = CASES.get(case)
        if out is not None:
            s.sendall(out)
            continue
        if case == "head_cut":
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Le")
            return
        if case == "body_cut_cl":
            s.sendall(b"HTTP/1.1 200 OK\r\n" + NDJSON +
                      b"Content-Length: 100\r\n\r\n{\"n\":1}\n")
            return
        if case == "body_cut_chunked":
            s.sendall(CHUNKED + FIRST)
            return
        if case == "unsolicited":
            # A whole answer, then later, unasked, a second one.
            s.sendall(OK)
            time.sleep(0.2)
            s.sendall(FORGED)
            log(conn=n, event="forged")
            continue
        if case == "close_idle":
            # Closed while idle, with no Connection: close said.
            s.sendall(OK)
            time.sleep(0.1)
            s.close()
            log(conn=n, event="closed")
            return
        if case == "close_on_next":
            # Kept open until the next request arrives, then closed with
            # it unread: the backend never saw it, the gateway gets a
            # reset on a connection it reused.
            s.sendall(OK)
            s.settimeout(None)
            while not buf:
                d = s.recv(1, socket.MSG_PEEK)
                if not d:
                    return
                break
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         b"\x01\0\0\0\0\0\0\0")
            s.close()
            log(conn=n, event="dropped")
            return


def handle(s, n):
    try:
        serve(s, n)
    except OSError:
        pass
    finally:
        try:
            s.close()
        except OSError:
            pass


def main():
    global conns
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(ls.getsockname()[1]))
    import os
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    while True:
        s, _ = ls.accept()
        conns += 1
        log(conn=conns, event="accepted")
        threading.Thread(target=handle, args=(s, conns), daemon=True).start()


main()
