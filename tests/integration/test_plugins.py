"""Session configurations served by the test plugins of tests/plugins
(echo, crashy, and the defective ones the loader refuses), through the
real daemon and host.  PluginDirectory is a search path: the installed
plugins first, then the test ones, so the built-in configurations keep
working beside them."""
import subprocess
import threading
import time
import uuid

import pytest

from conftest import BUILDDIR, binary
from wsman_raw import (CREATE_BODY, ERROR_INVALID_SELECTORS, Wire,
                       command_body, envelope, fault_of, receive_body)

CRASHY_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/crashy"
PLUGINS = ["-o", "Service.PluginDirectory=%s:%s" % (
    BUILDDIR / "plugins", BUILDDIR / "tests" / "plugins")]


def plugin_lab(lab_factory, *lines):
    return lab_factory(args=PLUGINS, config_lines=list(lines))


def create(wire, uri):
    env, _ = envelope("Create", resource_uri=uri, body=CREATE_BODY,
                      to=wire.url)
    r = wire.soap(env)
    assert r.status == 200, r
    return r.doc.text(".//w:Selector[@Name='ShellId']").strip()


def test_crashing_plugin_faults_and_daemon_lives_on(lab_factory):
    lab = plugin_lab(lab_factory, "[SessionConfiguration crashy]",
                     "Plugin = crashy", f"ResourceURI = {CRASHY_URI}")
    w = Wire(lab)
    sid = create(w, CRASHY_URI)
    env, _ = envelope("Command", resource_uri=CRASHY_URI,
                      body=command_body("anything"),
                      selectors={"ShellId": sid}, to=w.url)
    r = w.soap(env)
    if r.status == 200:
        # The abort may come just after the CommandResponse: the next
        # Receive must then report the broken shell.
        cid = r.doc.text(".//rsp:CommandId").strip()
        env, _ = envelope("Receive", resource_uri=CRASHY_URI,
                          body=receive_body(cid),
                          selectors={"ShellId": sid}, to=w.url)
        r = w.soap(env)
    assert r.status == 500, r
    assert fault_of(r)["subcode"] is not None
    assert "SHELL_BROKEN" in lab.log()
    # The daemon and the other configurations are unaffected.
    out = lab.session().run_cmd("echo", ["still serving"])
    assert out.std_out == b"still serving\n"


def test_host_dying_during_create(lab_factory):
    """The host aborts before it answers the Create: the client gets the
    host-died fault, the daemon forgets the shell and the host (once freed
    twice) and keeps serving; repeatedly, so that a corrupted heap shows."""
    lab = plugin_lab(lab_factory, "[SessionConfiguration crashy]",
                     "Plugin = crashy", f"ResourceURI = {CRASHY_URI}")
    w = Wire(lab)
    for _ in range(5):
        env, _ = envelope("Create", resource_uri=CRASHY_URI,
                          body=CREATE_BODY.replace(
                              "<rsp:Shell>", '<rsp:Shell Name="abort">'),
                          to=w.url)
        r = w.soap(env)
        assert r.status == 500, r
        f = fault_of(r)
        assert "Receiver" in f["code_value"] and \
            "host process ended" in f["message"], f
    create(w, CRASHY_URI)       # a healthy shell of the same configuration
    out = lab.session().run_cmd("echo", ["still serving"])
    assert out.std_out == b"still serving\n"


SLEEPY_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/sleepy"


def test_receive_waiting_on_a_command_that_fails(lab_factory):
    """A Receive names a CommandId whose Command the plugin has not yet
    answered; the plugin then refuses the command.  The Command gets the
    plugin's fault and the waiting Receive an InvalidSelectors fault at
    once (it once kept a pointer to the freed command)."""
    lab = plugin_lab(lab_factory, "[SessionConfiguration sleepy]",
                     "Plugin = sleepy", f"ResourceURI = {SLEEPY_URI}")
    w = Wire(lab)
    sid = create(w, SLEEPY_URI)
    cid = str(uuid.uuid4()).upper()
    results = {}

    def run(name, body, delay):
        time.sleep(delay)
        env, _ = envelope(name, resource_uri=SLEEPY_URI, body=body,
                          selectors={"ShellId": sid}, to=w.url)
        results[name] = (time.monotonic(), w.soap(env))

    threads = [threading.Thread(target=run, args=(
                   "Command", command_body("fail-late", command_id=cid), 0)),
               threading.Thread(target=run, args=(
                   "Receive", receive_body(cid), 0.2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    (t_cmd, cmd), (t_recv, recv) = results["Command"], results["Receive"]
    assert cmd.status == 500 and "fail-late" in fault_of(cmd)["message"]
    assert recv.status == 500, recv
    assert fault_of(recv)["code"] == ERROR_INVALID_SELECTORS, fault_of(recv)
    assert t_recv - t_cmd < 5       # not left to its OperationTimeout
    # The shell and the daemon go on.
    env, _ = envelope("Command", resource_uri=SLEEPY_URI,
                      body=command_body("x", ["10", "2"]),
                      selectors={"ShellId": sid}, to=w.url)
    assert w.soap(env).status == 200
    out = lab.session().run_cmd("echo", ["still serving"])
    assert out.std_out == b"still serving\n"


def test_echo_plugin_beside_builtins(lab_factory):
    lab = plugin_lab(lab_factory, "[SessionConfiguration cmd]",
                     "Plugin = echo")
    r = lab.session().run_cmd("exit", ["3"])
    assert r.status_code == 3


@pytest.mark.parametrize("name,reason", [
    ("abi-other-major", "major version differs"),
    ("abi-newer-minor", "built for a newer host"),
    ("missing-callback", "required callback signal is missing"),
    ("no-entry", "no winrmd_plugin_entry symbol"),
])
def test_refused_plugin_named_by_check(tmp_path, name, reason):
    conf = tmp_path / "winrmd.conf"
    conf.write_text("[Service]\nUserMode = true\nStateDirectory = %s\n"
                    "[SessionConfiguration broken]\nPlugin = %s\n"
                    "ResourceURI = http://example.invalid/broken\n"
                    "[Listener HTTP]\nAddress = 127.0.0.1\nPort = 0\n"
                    % (tmp_path, name))
    r = subprocess.run([binary("winrmd"), "-t", "-f", str(conf)] + PLUGINS,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert reason in r.stdout + r.stderr, r.stdout + r.stderr
