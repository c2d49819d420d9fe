"""Integration test harness: every test runs the real winrmd.

A test asks for the ``lab`` fixture and gets a freshly started
``winrmd --lab DIR --port 0`` (its own temporary directory, listeners on
127.0.0.1 with ports the kernel picked).  When the test ends the daemon is
stopped with SIGTERM and must exit cleanly, and its log must hold no fatal
error, internal error or sanitizer report; otherwise the test fails.
"""
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
SRCDIR = HERE.parent.parent
BUILDDIR = pathlib.Path(os.environ.get("WINRMD_BUILDDIR",
                                       SRCDIR / "build")).resolve()
# Recorded Windows exchanges and real clients' requests (tests/data).
FIXTURES = SRCDIR / "tests" / "data"

BAD_LOG = re.compile(r"FATAL|fatal:|internal error|AddressSanitizer|"
                     r"LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer")


# Leaks of third-party libraries the sanitizer build cannot do anything
# about (each explained in the file), for every process the tests start.
_supp = "suppressions=%s" % (SRCDIR / "tests" / "lsan.supp")
if _supp not in os.environ.get("LSAN_OPTIONS", ""):
    os.environ["LSAN_OPTIONS"] = ":".join(
        x for x in (os.environ.get("LSAN_OPTIONS", ""), _supp) if x)


def binary(name):
    path = BUILDDIR / name
    if not path.exists():
        pytest.fail(f"{path} is missing: build first (WINRMD_BUILDDIR)")
    return str(path)


def have_pwsh():
    return shutil.which("pwsh") is not None


class Lab:
    """A running lab endpoint."""

    def __init__(self, directory, args=(), config_lines=(), env=None):
        self.dir = pathlib.Path(directory)
        self.log_path = self.dir.parent / "winrmd.log"
        self.args = list(args)
        self.extra_config = list(config_lines)
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.proc = None
        self.info = {}

    def start(self, timeout=20):
        test_conf = self.dir / "sessions.d" / "zz-test.conf"
        if self.extra_config:
            test_conf.parent.mkdir(parents=True, exist_ok=True)
            test_conf.write_text("\n".join(self.extra_config) + "\n")
        elif test_conf.exists():
            test_conf.unlink()      # a restart without the earlier lines
        json_path = self.dir / "lab.json"
        if json_path.exists():
            json_path.unlink()
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [binary("winrmd"), "--lab", str(self.dir), "--port", "0"]
            + self.args, stdout=self._log, stderr=subprocess.STDOUT,
            env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("winrmd exited early:\n" + self.log())
            try:
                self.info = json.loads(json_path.read_text())
                if self.info.get("pid") == self.proc.pid:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        else:
            raise AssertionError("winrmd did not start:\n" + self.log())
        self.http_url = self.info["http_url"]
        self.https_url = self.info["https_url"]
        self.user = self.info["user"]
        self.password = self.info["password"]
        self.ca_file = self.info["ca_file"]
        self.client_cert = self.info.get("client_cert")
        self.client_key = self.info.get("client_key")
        self.config = self.info["config"]
        return self

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, check=True):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("winrmd did not stop on SIGTERM:\n"
                                     + self.log())
            if check:
                assert rc == 0, f"winrmd exited with {rc}:\n{self.log()}"
        self.proc = None
        self._log.close()
        if check:
            self.check_log()

    def kill_surviving_hosts(self):
        """Disconnected shells outlive the daemon by design; a finished
        test must not leave their hosts behind, nor the lab's KDC of a
        daemon the test killed."""
        import sqlite3
        pidfile = self.dir / "kdc" / "krb5kdc.pid"
        try:
            kdc = int(pidfile.read_text().split()[0])
            with open(f"/proc/{kdc}/cmdline", "rb") as f:
                if str(pidfile).encode() in f.read():
                    os.kill(kdc, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass
        db = self.dir / "state.db"
        if not db.exists():
            return
        try:
            con = sqlite3.connect(str(db), timeout=5)
            pids = [r[0] for r in con.execute(
                "SELECT host_pid FROM shells WHERE host_pid > 0")]
            con.close()
        except sqlite3.Error:
            return
        for pid in pids:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"winrmd-host" not in f.read():
                        continue
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def check_log(self):
        text = self.log()
        bad = [line for line in text.splitlines() if BAD_LOG.search(line)]
        assert not bad, "daemon log has errors:\n" + "\n".join(bad[:40])

    def winrmctl(self, *args, input=None):
        return subprocess.run([binary("winrmctl"), "-f", self.config]
                              + list(args), input=input, capture_output=True,
                              text=True, timeout=30)

    def session(self, **kw):
        import winrm
        return winrm.Session(self.http_url, auth=(self.user, self.password),
                             transport="basic", **kw)

    def protocol(self, url=None, **kw):
        from winrm.protocol import Protocol
        url = url or self.http_url
        args = dict(endpoint=url, transport="basic", username=self.user,
                    password=self.password)
        if url.startswith("https:"):
            # pywinrm 0.3.0 lets REQUESTS_CA_BUNDLE override "ignore", so
            # validate against the lab's own certificate instead.
            args.update(server_cert_validation="validate",
                        ca_trust_path=self.ca_file)
        args.update(kw)
        return Protocol(**args)


@pytest.fixture
def lab_factory(tmp_path):
    labs = []

    def make(args=(), config_lines=(), env=None, start=True):
        lab = Lab(tmp_path / f"lab{len(labs)}", args, config_lines, env)
        labs.append(lab)
        if start:
            lab.start()
        return lab

    yield make
    errors = []
    for lab in labs:
        try:
            lab.stop()
        except AssertionError as e:
            errors.append(str(e))
        finally:
            lab.kill_surviving_hosts()
    if errors:
        pytest.fail("\n".join(errors))


@pytest.fixture
def lab(lab_factory):
    return lab_factory()
