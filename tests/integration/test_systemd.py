"""The systemd protocols, spoken by the real daemon to stand-ins made
here: readiness on $NOTIFY_SOCKET (a datagram socket this test reads, as
systemd would) and socket activation (a listening socket passed as fd 3
with LISTEN_FDS/LISTEN_PID, as systemd's socket units do)."""
import json
import os
import signal
import socket
import subprocess
import time

from conftest import binary


def free_port_block(n=6):
    """A port PORT such that PORT to PORT+n-1 are free: the lab puts its
    HTTPS and scenario listeners on PORT+1 to PORT+5."""
    for _ in range(50):
        socks = []
        try:
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            if port + n - 1 > 65535:
                continue
            for k in range(1, n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port + k))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no block of %d free ports" % n)


def wait_json(path, proc, log, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            info = json.loads(path.read_text())
            if info.get("pid") == proc.pid:
                return info
        except (OSError, ValueError):
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError("winrmd did not start (exit status %s):\n%s" % (
        proc.poll(), log.read_text(errors="replace")[-4000:]))


def test_readiness_reload_and_stop_notifications(tmp_path):
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(str(tmp_path / "notify"))
    ns.settimeout(20)
    env = dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "notify"))
    log = open(tmp_path / "log", "wb")
    p = subprocess.Popen([binary("winrmd"), "--lab", str(tmp_path / "lab"),
                          "--port", "0"], env=env, stdout=log,
                         stderr=subprocess.STDOUT)
    try:
        msg = ns.recv(4096).decode()
        assert "READY=1" in msg.split("\n")
        info = wait_json(tmp_path / "lab" / "lab.json", p, tmp_path / "log")
        # Ready means serving: Identify answers at once.
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w",
                            "%{http_code}", "-H",
                            "WSMANIDENTIFY: unauthenticated", "-H",
                            "Content-Type: application/soap+xml",
                            "--data-binary", "@-", info["http_url"]],
                           input=IDENTIFY, capture_output=True, text=True,
                           timeout=20)
        assert r.stdout == "200"
        p.send_signal(signal.SIGHUP)
        assert ns.recv(4096).decode().startswith("RELOADING=1")
        assert "READY=1" in ns.recv(4096).decode()
        p.send_signal(signal.SIGTERM)
        assert ns.recv(4096).decode().startswith("STOPPING=1")
        assert p.wait(20) == 0
    finally:
        if p.poll() is None:
            p.kill()
        ns.close()
        log.close()


IDENTIFY = ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
            'xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/'
            'wsmanidentity.xsd"><s:Header/><s:Body><wsmid:Identify/>'
            '</s:Body></s:Envelope>')


def test_socket_activation(tmp_path):
    """The HTTP listener takes the socket passed as fd 3; a client
    connected before the daemon even started is served."""
    port = free_port_block()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(16)
    early = socket.create_connection(("127.0.0.1", port))

    def child_setup():
        os.dup2(ls.fileno(), 3)

    # LISTEN_PID must name the daemon itself: exec through sh keeps it.
    script = ('LISTEN_PID=$$; LISTEN_FDS=1; export LISTEN_PID LISTEN_FDS; '
              'exec "$0" --lab "$1" --port "$2"')
    log = open(tmp_path / "log", "wb")
    p = subprocess.Popen(["/bin/sh", "-c", script, binary("winrmd"),
                          str(tmp_path / "lab"), str(port)],
                         preexec_fn=child_setup, close_fds=False,
                         stdout=log, stderr=subprocess.STDOUT)
    ls.close()
    try:
        info = wait_json(tmp_path / "lab" / "lab.json", p, tmp_path / "log")
        assert info["http_url"].endswith(":%d/wsman" % port)
        body = IDENTIFY.encode()
        early.sendall(b"POST /wsman HTTP/1.1\r\nHost: x\r\n"
                      b"WSMANIDENTIFY: unauthenticated\r\n"
                      b"Content-Type: application/soap+xml;charset=UTF-8\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body)
        early.settimeout(20)
        assert early.recv(4096).startswith(b"HTTP/1.1 200")
        text = (tmp_path / "log").read_text()
        assert "using the socket systemd passed" in text
        p.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0
    finally:
        early.close()
        if p.poll() is None:
            p.kill()
        log.close()
