"""WinRS through the Go masterzen/winrm client against the real daemon.

The client is Debian's golang-github-masterzen-winrm-dev (2020).  The
driver program in tests/go/winrmgo is built once per session, offline in
GOPATH mode against /usr/share/gocode, and run once per scenario; it
prints a JSON report of what the library saw (exit code, output, errors
and every SOAP request it posted, with any fault in the answer).

Two traits of this library version shape the checks:

* Its HTTP transport hands a non-200 SOAP fault back as a successful
  body, so a Receive fault never surfaces as an error: the Receive loop
  simply polls again.  The driver recognises faults in the body instead.
* The HTTP response-header timeout is a hard client deadline: a Receive
  answered after it fails the whole command.  The timeout test sets it
  equal to the OperationTimeout, as the library's defaults (PT60S, 60 s)
  do.
"""
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import time

import pytest

from conftest import SRCDIR

GO_PROGRAM = SRCDIR / "tests" / "go" / "winrmgo"
# Debian's Go library tree (GOPATH layout).
GOCODE = pathlib.Path("/usr/share/gocode")

# The envelope size the library asks for; no answer may be larger.
ENVELOPE = 153600

# Same strings as the driver's "unicode" scenario.
UNICODE_ARG = "Grüße ✓ 日本語 🎉"
UNICODE_STDIN = "stdin: żółw ☃ 𝄞 Ωμέγα\n"
UNICODE_STDERR = "ошибка ✗"

TIMED_OUT_CODE = "2150858793"

TRANSPORTS = ["http", "https-ca", "https-insecure"]


@pytest.fixture(scope="session")
def winrmgo(tmp_path_factory):
    go = shutil.which("go")
    if go is None:
        pytest.skip("go is not installed (golang-go)")
    work = tmp_path_factory.mktemp("winrmgo")
    env = dict(os.environ)
    env.update(GO111MODULE="off", GOPATH=f"{GOCODE}:{work / 'gopath'}",
               GOCACHE=str(work / "cache"), GOPROXY="off", GOFLAGS="",
               GOENV="off", GOTOOLCHAIN="local", CGO_ENABLED="0",
               HOME=str(work))
    exe = work / "winrmgo"
    proc = subprocess.run([go, "build", "-o", str(exe), "."],
                          cwd=GO_PROGRAM, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, (
        "building tests/go/winrmgo failed (needs "
        "golang-github-masterzen-winrm-dev):\n" + proc.stdout + proc.stderr)
    return str(exe)


class Report:
    def __init__(self, data, argv):
        self.data = data
        self.argv = argv
        self.results = data["results"]
        self.requests = data["requests"]
        self.error = data.get("error")

    def __str__(self):
        lines = [f"scenario {self.data['scenario']} ({self.data['url']}), "
                 f"{self.data['seconds']:.2f} s, error: {self.error}"]
        for r in self.results:
            lines.append(f"  {r['name']}: exit {r['exit_code']} "
                         f"error {r.get('error')!r} stdout "
                         f"{r.get('stdout', '<%d bytes>' % r['stdout_len'])!r}"
                         f" stderr {r.get('stderr')!r}")
        for q in self.requests[:60]:
            lines.append(f"  {q['start']:8.3f} {q['seconds']:6.3f}s "
                         f"{q['action']:<8} {q['response_bytes']:>7} B "
                         f"{q.get('fault', '')} {q.get('fault_code', '')} "
                         f"{q.get('error', '')[:200]}")
        return "\n".join(lines)

    def one(self):
        assert self.error is None, str(self)
        assert len(self.results) == 1, str(self)
        return self.results[0]

    def by_name(self):
        return {r["name"]: r for r in self.results}

    def actions(self):
        return [q["action"] for q in self.requests]

    def check_clean(self, allow_faults=(), envelope=ENVELOPE):
        """No request failed, every fault is an allowed one, and no
        answer exceeded the envelope size the client asked for."""
        for q in self.requests:
            assert "error" not in q, str(self)
            if "fault" in q:
                assert (q["action"], q["fault"]) in allow_faults, str(self)
            assert q["response_bytes"] <= envelope, str(self)


def run_go(exe, lab, scenario, transport="http", *extra, timeout=150):
    url = lab.http_url if transport == "http" else lab.https_url
    argv = [exe, "-url", url, "-user", lab.user, "-password", lab.password,
            "-scenario", scenario, "-deadline", f"{timeout - 30}s"]
    if transport == "https-ca":
        argv += ["-cafile", lab.ca_file]
    elif transport == "https-insecure":
        argv += ["-insecure"]
    argv += list(extra)
    proc = subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode in (0, 3), (
        f"winrmgo exited with {proc.returncode}:\n{proc.stderr}")
    rep = Report(json.loads(proc.stdout), argv)
    assert proc.returncode == 0, str(rep)
    return rep


def seq_prefix(n):
    """The first n bytes of `seq 1 N` for a large N."""
    i, parts, total = 1, [], 0
    while total < n:
        chunk = "".join(f"{j}\n" for j in range(i, i + 100000))
        parts.append(chunk)
        total += len(chunk)
        i += 100000
    return "".join(parts).encode()[:n]


def sha(b):
    return hashlib.sha256(b).hexdigest()


def wait_gone(pid, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{pid}"):
            return True
        try:
            state = pathlib.Path(f"/proc/{pid}/stat").read_text().split()[2]
            if state == "Z":
                return True
        except (OSError, IndexError):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_echo(winrmgo, lab, transport):
    rep = run_go(winrmgo, lab, "echo", transport)
    r = rep.one()
    assert (r["stdout"], r["stderr"], r["exit_code"], r.get("error")) == \
        ("hello\n", "", 0, None), str(rep)
    rep.check_clean()
    acts = rep.actions()
    assert acts[:2] == ["Create", "Command"], str(rep)
    assert acts[-2:] == ["Signal", "Delete"], str(rep)
    assert set(acts[2:-2]) == {"Receive"}, str(rep)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exit_code(winrmgo, lab, transport):
    rep = run_go(winrmgo, lab, "exit", transport)
    r = rep.one()
    assert (r["stdout"], r["stderr"], r["exit_code"], r.get("error")) == \
        ("", "", 7, None), str(rep)
    rep.check_clean()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_stderr(winrmgo, lab, transport):
    rep = run_go(winrmgo, lab, "stderr", transport)
    r = rep.one()
    assert (r["stdout"], r["stderr"], r["exit_code"], r.get("error")) == \
        ("out\n", "oops\n", 3, None), str(rep)
    rep.check_clean()


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("scenario", ["stdin", "stdin-stream"])
def test_stdin_echoed_back(winrmgo, lab, transport, scenario):
    """1 MiB of binary through RunWithInput into `cat`: the library's stdin
    goroutine Sends while its Receive loop polls on another connection.
    "stdin" Sends 152,600 raw bytes a time (about 203 KB envelopes, more
    than the 153,600 the client declares); "stdin-stream" 32 KiB."""
    rep = run_go(winrmgo, lab, scenario, transport)
    r = rep.one()
    assert r.get("error") is None and r["exit_code"] == 0, str(rep)
    assert r["stdin_len"] == 1 << 20
    assert r["stdout_len"] == r["stdin_len"], str(rep)
    assert r["stdout_sha256"] == r["stdin_sha256"], str(rep)
    assert r["stderr_len"] == 0, str(rep)
    rep.check_clean()
    sends = [q for q in rep.requests if q["action"] == "Send"]
    # Data Sends plus the empty End="true" one.
    chunk = 152600 if scenario == "stdin" else 32768
    assert len(sends) == -(-(1 << 20) // chunk) + 1, str(rep)
    if scenario == "stdin":
        assert max(q["bytes"] for q in sends) > ENVELOPE


def test_stdin_string(winrmgo, lab):
    """RunWithString sends End only after the command finished, so the
    command stops reading by itself; the late End Send is answered with a
    fault the library ignores."""
    rep = run_go(winrmgo, lab, "stdin-string")
    r = rep.one()
    assert (r["stdout"], r["stderr"], r["exit_code"], r.get("error")) == \
        ("HELLO FROM GO\nSECOND LINE\n", "", 0, None), str(rep)
    rep.check_clean(allow_faults={("Send", "w:InvalidSelectors")})


def test_stdin_command_exits_early(winrmgo, lab):
    """The command reads 100 bytes of 4 MiB and exits while Sends keep
    coming; everything completes and the exit code arrives."""
    rep = run_go(winrmgo, lab, "stdin-early-exit")
    r = rep.one()
    assert r.get("error") is None and r["exit_code"] == 5, str(rep)
    assert r["stdout_len"] == 100, str(rep)
    assert r["stdout_head"] == r["stdin_head"][:200], str(rep)
    rep.check_clean(allow_faults={("Send", "w:InvalidSelectors")})


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unicode_both_ways(winrmgo, lab, transport):
    rep = run_go(winrmgo, lab, "unicode", transport)
    r = rep.one()
    assert r.get("error") is None and r["exit_code"] == 0, str(rep)
    assert r["stdout"] == UNICODE_ARG + "\n" + UNICODE_STDIN, str(rep)
    assert r["stderr"] == UNICODE_STDERR + "\n", str(rep)
    rep.check_clean()


@pytest.mark.parametrize("transport", ["http", "https-ca"])
def test_10mib_output(winrmgo, lab, transport):
    size = 10 << 20
    rep = run_go(winrmgo, lab, "bigout", transport)
    r = rep.one()
    assert r.get("error") is None and r["exit_code"] == 0, str(rep)
    assert r["stdout_len"] == size, str(rep)
    assert r["stdout_sha256"] == sha(seq_prefix(size)), str(rep)
    assert r["stderr"] == "tail\n", str(rep)
    # check_clean holds every ReceiveResponse to the 153,600 bytes asked.
    rep.check_clean()
    receives = [q for q in rep.requests if q["action"] == "Receive"]
    assert len(receives) >= size * 4 // 3 // ENVELOPE, str(rep)


@pytest.mark.parametrize("envelope", [8192, 512000])
def test_envelope_size_honoured(winrmgo, lab, envelope):
    """The smallest envelope allowed and the server's own maximum: output
    and input (Sends of envelope - 1000 raw bytes) both go through whole
    and every answer fits the declared size."""
    size = 2000000
    out = run_go(winrmgo, lab, "bigout", "http", "-size", str(size),
                 "-envelope-size", str(envelope))
    r = out.one()
    assert r.get("error") is None and r["exit_code"] == 0, str(out)
    assert r["stdout_sha256"] == sha(seq_prefix(size)), str(out)
    out.check_clean(envelope=envelope)
    receives = [q for q in out.requests if q["action"] == "Receive"]
    assert len(receives) >= size * 4 // 3 // envelope, str(out)
    if envelope > 8192:
        # Big envelopes are used, not just allowed.
        assert max(q["response_bytes"] for q in receives) > envelope // 2

    # 512000 - 1000 raw bytes are about 680 KB of base64: more than the
    # server's MaxEnvelopeSizekb, so that Send is refused with HTTP 413 and
    # the library gives up on the rest of the input.
    size = 600000
    inp = run_go(winrmgo, lab, "stdin", "http", "-size", str(size),
                 "-envelope-size", str(envelope))
    r = inp.one()
    assert r.get("error") is None and r["exit_code"] == 0, str(inp)
    sends = [q for q in inp.requests if q["action"] == "Send"]
    if envelope == 8192:
        assert (r["stdout_len"], r["stdout_sha256"]) == \
            (size, r["stdin_sha256"]), str(inp)
        inp.check_clean(envelope=envelope)
        assert len(sends) == -(-size // (envelope - 1000)) + 1, str(inp)
    else:
        assert r["stdout_len"] == 0, str(inp)
        # The server reads and drops the oversized body before answering
        # 413, so the client always sees the status, never a reset.
        err = sends[0].get("error", "")
        assert "413" in err, str(inp)
        assert "error" not in sends[-1], str(inp)


def test_several_commands_in_one_shell(winrmgo, lab):
    rep = run_go(winrmgo, lab, "multi")
    assert rep.error is None, str(rep)
    res = rep.by_name()
    want = {
        "first": ("one\n", "", 0),
        "exit": ("", "", 4),
        "stderr": ("", "two\n", 0),
        "arguments": ("arg1 arg2\n", "", 0),
        "last": ("three\n", "", 0),
        "concurrent-A": ("A\n", "", 0),
        "concurrent-B": ("B\n", "", 0),
    }
    assert set(res) == set(want), str(rep)
    for name, expect in want.items():
        r = res[name]
        assert (r["stdout"], r["stderr"], r["exit_code"]) == expect, \
            f"{name}\n{rep}"
        # Command.Close (terminate after Done) succeeded.
        assert r.get("error") is None, f"{name}\n{rep}"
    # The two commands ran at the same time in the one shell (each sleeps
    # one second).
    assert res["concurrent-A"]["seconds"] < 1.9, str(rep)
    assert res["concurrent-B"]["seconds"] < 1.9, str(rep)
    acts = rep.actions()
    assert acts.count("Create") == 1 and acts.count("Delete") == 1, str(rep)
    assert acts.count("Command") == 7 and acts.count("Signal") == 7, str(rep)
    rep.check_clean()


def test_parallel_clients(winrmgo, lab):
    count = 8
    rep = run_go(winrmgo, lab, "parallel", "http", "-count", str(count))
    assert rep.error is None, str(rep)
    res = rep.by_name()
    assert set(res) == {f"client-{i}" for i in range(count)}, str(rep)
    for i in range(count):
        r = res[f"client-{i}"]
        assert (r["stdout"], r["stderr"], r["exit_code"], r.get("error")) \
            == (f"client {i}\n", f"done {i}\n", i % 5, None), str(rep)
    # Each command sleeps one second; run one after the other they would
    # take at least `count` seconds.
    assert rep.data["seconds"] < count * 0.75, str(rep)
    assert rep.actions().count("Create") == count
    rep.check_clean()


def test_command_outlives_operation_timeout(winrmgo, lab):
    """OperationTimeout PT3S and a 3 s HTTP response-header deadline (the
    same relation as the library's defaults, PT60S and 60 s): each idle
    Receive must come back as the w:TimedOut fault naming OperationTimeout
    before the client gives up, and the library polls again."""
    rep = run_go(winrmgo, lab, "timeout", "http",
                 "-operation-timeout", "PT3S", "-http-timeout", "3s",
                 "-sleep", "8")
    r = rep.one()
    assert (r["stdout"], r["stderr"], r["exit_code"], r.get("error")) == \
        ("started\nfinished\n", "", 0, None), str(rep)
    receives = [q for q in rep.requests if q["action"] == "Receive"]
    timed_out = [q for q in receives if "fault" in q]
    assert len(timed_out) >= 2, str(rep)
    for q in timed_out:
        assert q["fault"] == "w:TimedOut", str(rep)
        assert q["fault_code"] == TIMED_OUT_CODE, str(rep)
        assert q["operation_timeout"], str(rep)
        # A real long poll, not an immediate answer.
        assert q["seconds"] >= 0.5, str(rep)
    for q in receives:
        assert q["seconds"] < 3.0, str(rep)
    assert len(receives) <= 12, str(rep)
    rep.check_clean(allow_faults={("Receive", "w:TimedOut")})


def test_close_running_command(winrmgo, lab):
    """Command.Close sends terminate while the library's Receive is
    waiting on the server: the process is killed and the waiting Receive
    is answered at once, so Wait returns without waiting out the 60 s
    OperationTimeout."""
    rep = run_go(winrmgo, lab, "terminate")
    r = rep.one()
    assert r.get("error") is None, str(rep)
    pid = int(r["stdout"])
    assert r["seconds"] < 10, str(rep)
    assert wait_gone(pid), f"process {pid} still runs\n{rep}"
    acts = rep.actions()
    assert "Signal" in acts and acts[-1] == "Delete", str(rep)
    rep.check_clean(allow_faults={("Receive", "w:InvalidSelectors")})


def test_wrong_password(winrmgo, lab):
    # The last -password on the command line wins.
    rep = run_go(winrmgo, lab, "echo", "http", "-password", "wrong")
    r = rep.one()
    assert r["error"] is not None and "401" in r["error"], str(rep)
    assert rep.actions() == ["Create"], str(rep)


def test_https_unknown_ca_refused(winrmgo, lab):
    """Without the lab CA and without skip-verify the client must refuse
    the certificate, so the verified HTTPS tests do verify."""
    rep = run_go(winrmgo, lab, "echo", "https-system-roots")
    assert "-cafile" not in rep.argv and "-insecure" not in rep.argv
    r = rep.one()
    assert r["error"] is not None, str(rep)
    assert "x509" in r["error"] or "certificate" in r["error"], str(rep)


# -- other authentication schemes -------------------------------------------

NO_BASIC = ["-o", "Service/Auth.Basic=false"]


@pytest.mark.parametrize("transport", ["http", "https-ca"])
def test_ntlm(winrmgo, lab_factory, transport):
    """The library's NTLM transport (go-ntlmssp).  It does not seal
    messages, so over HTTP it needs AllowUnencrypted, as against Windows;
    Basic is off so that NTLM is what authenticates."""
    lab = lab_factory(args=NO_BASIC)
    rep = run_go(winrmgo, lab, "echo", transport, "-auth", "ntlm")
    r = rep.one()
    assert r["exit_code"] == 0 and r["stdout"] == "hello\n", str(rep)
    rep.check_clean()
    ok = [ln for ln in lab.log().splitlines() if "AUTH_OK" in ln]
    assert ok and all("mech=NTLM" in ln for ln in ok), ok


def test_ntlm_wrong_password(winrmgo, lab_factory):
    lab = lab_factory(args=NO_BASIC)
    rep = run_go(winrmgo, lab, "echo", "http", "-auth", "ntlm",
                 "-password", "wrong")
    r = rep.one()
    assert r["error"] is not None and "401" in r["error"], str(rep)
    assert "AUTH_FAIL" in lab.log()
    assert "AUTH_OK" not in lab.log()


def test_ntlm_unsealed_refused_without_allow_unencrypted(winrmgo,
                                                         lab_factory):
    lab = lab_factory(args=NO_BASIC + ["-o",
                                       "Service.AllowUnencrypted=false"])
    rep = run_go(winrmgo, lab, "echo", "http", "-auth", "ntlm")
    r = rep.one()
    assert r["error"] is not None and "401" in r["error"], str(rep)
    assert "unencrypted request refused" in lab.log()
