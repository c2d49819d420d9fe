"""Redirections ([Redirect NAME]) followed, or refused past their limit,
by clients that follow redirects (curl, Python requests), and every kind
of injected fault ([FaultInjection NAME]) as pywinrm and raw clients see
it."""
import socket
import subprocess
import time

import pytest
import requests
from winrm.exceptions import WinRMError, WinRMTransportError

from wsman_raw import Wire, command_body, envelope

IDENTIFY = ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
            'xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/'
            'wsmanidentity.xsd"><s:Header/><s:Body><wsmid:Identify/>'
            '</s:Body></s:Envelope>')


def base(lab, scheme="http"):
    url = lab.http_url if scheme == "http" else lab.https_url
    return url.rsplit("/wsman", 1)[0]


def curl_identify(lab, path, max_redirs, extra=()):
    r = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{num_redirects}",
         "-L", "--max-redirs", str(max_redirs), "--cacert", lab.ca_file,
         "-H", "WSMANIDENTIFY: unauthenticated",
         "-H", "Content-Type: application/soap+xml;charset=UTF-8",
         "--data-binary", IDENTIFY, base(lab) + path] + list(extra),
        capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout


# Paths of their own: the lab has rules on /wsman-redirect/... (lab.md).
REDIRECTS = ["[Redirect chain]", "Path = /wsman-test/chain", "Hops = 3",
             "Location = /wsman",
             "[Redirect tls]", "Path = /wsman-test/tls", "Status = 302"]


def test_redirect_chain_followed_and_limited(lab_factory):
    lab = lab_factory(config_lines=REDIRECTS)
    # Three hops: a client allowing 3 gets there, one allowing 2 does not
    # (MaximumConnectionRedirectionCount works the same way).
    rc, out = curl_identify(lab, "/wsman-test/chain", 3)
    assert (rc, out) == (0, "200 3")
    rc, out = curl_identify(lab, "/wsman-test/chain", 2)
    assert rc == 47, (rc, out)          # curl: too many redirects
    # Python requests keeps method and body across 307.
    r = requests.post(base(lab) + "/wsman-test/chain", data=IDENTIFY,
                      headers={"WSMANIDENTIFY": "unauthenticated",
                               "Content-Type": "application/soap+xml"},
                      timeout=30)
    assert r.status_code == 200 and len(r.history) == 3
    assert [h.status_code for h in r.history] == [307, 307, 307]
    assert "REDIRECT rule=chain" in lab.log()


def free_port_pair():
    for _ in range(50):
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", 0))
                port = a.getsockname()[1]
                b.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    raise AssertionError("no two free ports in a row")


def test_redirect_http_to_https(lab_factory):
    """An HTTP listener sending clients to the HTTPS one (--port P puts
    HTTPS on P+1, so the Location is known before start)."""
    port = free_port_pair()
    lab = lab_factory(args=["--port", str(port)], config_lines=[
        "[Redirect tls]", "Path = /wsman-redirect/tls", "Status = 302",
        "Location = https://localhost:%d/wsman" % (port + 1)])
    assert lab.https_url.endswith(":%d/wsman" % (port + 1))
    r = requests.post(base(lab) + "/wsman-redirect/tls", data=b"",
                      auth=(lab.user, lab.password), verify=lab.ca_file,
                      timeout=30)
    # requests turns a 302 POST into a GET, which the service refuses:
    # what matters is that it arrived over TLS.
    assert [h.status_code for h in r.history] == [302]
    assert r.url.startswith("https://localhost:%d/" % (port + 1))
    assert r.status_code == 405


def test_redirect_for_one_user(lab_factory):
    lab = lab_factory(config_lines=[
        "[Redirect lab-user]", "Path = /wsman-redirect/user",
        "User = lab", "Status = 302", "Location = /wsman"])
    r = requests.post(base(lab) + "/wsman-redirect/user", data=b"",
                      auth=(lab.user, lab.password), allow_redirects=False,
                      timeout=30)
    assert r.status_code == 302
    assert r.headers["Location"].endswith("/wsman")
    # Without credentials there is nothing to match yet: 401.
    r = requests.post(base(lab) + "/wsman-redirect/user", data=b"",
                      allow_redirects=False, timeout=30)
    assert r.status_code == 401


def inject_lab(lab_factory, *rules):
    return lab_factory(args=["-o", "Service.FaultInjection=true"],
                       config_lines=list(rules))


def test_timeout_on_nth_receive(lab_factory):
    """pywinrm polls through w:TimedOut; the third Receive gets one
    injected and the command still completes."""
    lab = inject_lab(lab_factory, "[FaultInjection third-receive]",
                     "Action = Receive", "Kind = timeout", "Nth = 1")
    r = lab.session().run_cmd("echo", ["through"])
    assert r.std_out == b"through\n"
    assert "FAULT_INJECTED rule=third-receive kind=timeout" in lab.log()


def test_fault_code_and_http_status(lab_factory):
    lab = inject_lab(
        lab_factory,
        "[FaultInjection bad-command]", "Action = Command", "Kind = fault",
        "FaultCode = 2147942405", "Message = injected failure",
        "[FaultInjection unavailable]", "Action = Create", "Kind = http",
        "HttpStatus = 503", "Nth = 1")
    p = lab.protocol()
    with pytest.raises(WinRMTransportError) as e:
        p.open_shell()
    assert "503" in str(e.value)
    shell = p.open_shell()                # the second Create is served
    with pytest.raises(WinRMError) as e:
        p.run_command(shell, "true")
    assert "2147942405" in str(e.value) and "injected failure" in str(
        e.value)
    p.close_shell(shell)


def test_quota_fault_with_wmierror(lab_factory):
    lab = inject_lab(lab_factory, "[FaultInjection quota]",
                     "Action = Create", "Kind = quota")
    w = Wire(lab)
    env, _ = envelope("Create", body="<rsp:Shell><rsp:InputStreams>stdin"
                      "</rsp:InputStreams><rsp:OutputStreams>stdout stderr"
                      "</rsp:OutputStreams></rsp:Shell>", to=w.url)
    r = w.soap(env)
    assert r.status == 500
    assert "MSFT_WmiError" in r.text and "2150859174" in r.text


def test_header_selects_the_rule_and_delay(lab_factory):
    lab = inject_lab(lab_factory, "[FaultInjection slow]",
                     "Header = X-Winrmd-Fault: slow", "Kind = delay",
                     "DelayMs = 1500")
    headers = {"WSMANIDENTIFY": "unauthenticated",
               "Content-Type": "application/soap+xml"}
    t0 = time.monotonic()
    r = requests.post(lab.http_url, data=IDENTIFY, headers=headers,
                      timeout=30)
    fast = time.monotonic() - t0
    assert r.status_code == 200
    t0 = time.monotonic()
    r = requests.post(lab.http_url, data=IDENTIFY, timeout=30,
                      headers=dict(headers, **{"X-Winrmd-Fault": "slow"}))
    assert r.status_code == 200
    # The delay is a floor the answer cannot beat (not a speed check).
    assert time.monotonic() - t0 >= 1.5 > fast


def raw_post(lab, body, extra_headers=b""):
    host, port = lab.http_url.split("/")[2].split(":")
    s = socket.create_connection((host, int(port)), timeout=20)
    s.sendall(b"POST /wsman HTTP/1.1\r\nHost: x\r\n"
              b"WSMANIDENTIFY: unauthenticated\r\n"
              b"Content-Type: application/soap+xml;charset=UTF-8\r\n" +
              extra_headers + b"Content-Length: %d\r\n\r\n" % len(body) +
              body)
    return s


def test_reset_mid_response(lab_factory):
    lab = inject_lab(lab_factory, "[FaultInjection cut]",
                     "Action = Identify", "Kind = reset")
    s = raw_post(lab, IDENTIFY.encode())
    got = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    s.close()
    head, _, body = got.partition(b"\r\n\r\n")
    length = int([ln.split(b":")[1] for ln in head.split(b"\r\n")
                  if ln.lower().startswith(b"content-length")][0])
    assert 0 < len(body) < length, (len(body), length)


def test_trickled_response(lab_factory):
    lab = inject_lab(lab_factory, "[FaultInjection drip]",
                     "Action = Identify", "Kind = trickle",
                     "TrickleBytes = 100", "DelayMs = 50")
    s = raw_post(lab, IDENTIFY.encode())
    pieces, got = 0, b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        pieces += 1
        got += chunk
        if b"</s:Envelope>" in got:
            break
    s.close()
    head, _, body = got.partition(b"\r\n\r\n")
    assert body.endswith(b"</s:Envelope>")
    # Headers, then the body 100 bytes at a time.
    assert pieces >= len(body) // 100, (pieces, len(body))


def test_rules_need_the_switch(lab_factory):
    # The lab turns the switch on for its own rules (lab.md): off here.
    lab = lab_factory(args=["-o", "Service.FaultInjection=false"],
                      config_lines=["[FaultInjection off]",
                                    "Action = Create", "Kind = http"])
    p = lab.protocol()
    p.close_shell(p.open_shell())
    assert "FAULT_INJECTED" not in lab.log()


def test_redirect_to_a_listener_by_name(lab_factory):
    """Location = listener:NAME: the running listener's URL, with its
    actual port, on the host the client asked for."""
    lab = lab_factory(config_lines=[
        "[Redirect named]", "Path = /wsman-test/named",
        "Location = listener:HTTPS"])
    r = requests.post(base(lab).replace("127.0.0.1", "localhost") +
                      "/wsman-test/named", data=b"", allow_redirects=False,
                      timeout=30)
    assert r.status_code == 307
    assert r.headers["Location"] == lab.https_url.replace("127.0.0.1",
                                                          "localhost")
    lab.stop()
    lab.extra_config = ["[Redirect named]", "Path = /wsman-test/named",
                        "Location = listener:NOPE"]
    with pytest.raises(AssertionError, match="listener:NOPE names no"):
        lab.start(timeout=10)
    lab.proc = None
