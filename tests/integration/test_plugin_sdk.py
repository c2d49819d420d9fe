"""The plugin SDK from the outside, and the administration commands that
put a plugin to use.

* The project is installed into a temporary directory (``make install
  DESTDIR=...``), and plugins/skeleton/skeleton.c is compiled outside the
  tree with nothing but ``pkg-config --cflags --libs winrmd-plugin``
  against that installation.
* ``winrmctl config register`` makes it a session configuration of a
  running lab endpoint, ``--reload`` (SIGHUP) makes the daemon serve it,
  and a shell on it is driven with raw WS-Management envelopes.
* ``winrmctl config`` (register, unregister, enable, disable, set, list,
  show) and its refusals, and ``winrmctl quickconfig`` into temporary
  paths.  Nothing here changes /etc: quickconfig is given a temporary
  configuration and PAM file, and a group that exists.
"""
import base64
import grp
import http.client
import os
import pathlib
import re
import shutil
import ssl
import subprocess
import time
import types

import pytest

from conftest import BUILDDIR, SRCDIR, binary
from wsman_raw import (CREATE_BODY, NS, STATE_DONE, Wire, command_body,
                       envelope, fault_of, q, receive_body, send_body)

URI = "http://schemas.microsoft.com/powershell/SkeletonTest"
GREETING = "hello from out of tree"


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def run(args, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 60)
    return subprocess.run([str(a) for a in args], **kw)


def winrmctl(config, *args, overrides=()):
    cmd = [binary("winrmctl"), "-f", config]
    for o in overrides:
        cmd += ["-o", o]
    return run(cmd + list(args))


def plugin_dirs(extra):
    return "Service.PluginDirectory=%s:%s" % (BUILDDIR / "plugins", extra)


def reloads(lab):
    return lab.log().count("configuration reloaded")


def wait_reload(lab, before, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reloads(lab) > before:
            return
        time.sleep(0.05)
    raise AssertionError("no reload:\n" + lab.log())


def create(wire, uri):
    env, _ = envelope("Create", resource_uri=uri, body=CREATE_BODY,
                      to=wire.url)
    return wire.soap(env)


def call(wire, uri, action, sid, body=""):
    env, _ = envelope(action, resource_uri=uri, body=body,
                      selectors={"ShellId": sid}, to=wire.url)
    return wire.soap(env)


def subcode(reply):
    return fault_of(reply)["subcode"]


def files_in(directory):
    return sorted(p.name for p in pathlib.Path(directory).iterdir())


def mode(path):
    return os.stat(path).st_mode & 0o777


# ---------------------------------------------------------------------------
# The SDK, installed
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sdk(tmp_path_factory):
    """``make install DESTDIR=...`` of the build tree, and the skeleton
    plugin compiled against it as skeleton-oot.so in a directory of its
    own."""
    for tool in ("make", "cc", "pkg-config"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found")
    root = tmp_path_factory.mktemp("sdk")
    dest = root / "dest"
    # Under "make check" the jobserver of the outer make is not ours.
    menv = {k: v for k, v in os.environ.items()
            if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    r = run(["make", "install", f"DESTDIR={dest}"], cwd=BUILDDIR,
            env=menv, timeout=1200)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    pcs = list(dest.rglob("winrmd-plugin.pc"))
    assert len(pcs) == 1, pcs
    headers = list(dest.rglob("winrmd/plugin.h"))
    assert len(headers) == 1, headers
    env = dict(os.environ, PKG_CONFIG_PATH=str(pcs[0].parent),
               PKG_CONFIG_SYSROOT_DIR=str(dest))
    env.pop("PKG_CONFIG_LIBDIR", None)
    r = run(["pkg-config", "--cflags", "--libs", "winrmd-plugin"], env=env)
    assert r.returncode == 0, r.stderr
    flags = r.stdout.split()
    # The header comes from the installation, not from the source tree.
    assert "-I%s" % headers[0].parent.parent in flags, (flags, headers)
    outdir = root / "oot"
    outdir.mkdir()
    shutil.copy(SRCDIR / "plugins" / "skeleton" / "skeleton.c", outdir)
    so = outdir / "skeleton-oot.so"
    r = run(["cc"] + flags + ["-shared", "-fPIC", "-Wall", "-Werror",
                              "-o", so, outdir / "skeleton.c"], cwd=outdir)
    assert r.returncode == 0, r.stderr
    return types.SimpleNamespace(dest=dest, pc=pcs[0], so=so, dir=outdir,
                                 flags=flags)


def installed(sdk, name):
    found = [p for p in sdk.dest.rglob(name) if p.is_file()]
    assert len(found) == 1, (name, found)
    return found[0]


def test_installed_sdk_builds_a_loadable_plugin(sdk):
    # The installed host accepts the plugin and lists its option.
    host = installed(sdk, "winrmd-host")
    r = run([host, "--check-plugin", sdk.so])
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert re.match(r"^ok\tskeleton\t1\.0\tABI \d+\.\d+$", lines[0]), lines
    assert any(line.startswith("option\tGreeting\t") for line in lines)
    # -fvisibility=hidden from the .pc file: the entry point is the only
    # function the plugin exports.
    if shutil.which("nm"):
        r = run(["nm", "-D", "--defined-only", sdk.so])
        funcs = [line.split()[-1] for line in r.stdout.splitlines()
                 if line.split()[-2:-1] == ["T"]]
        assert funcs == ["winrmd_plugin_entry"], r.stdout
    # The administration tools and the pages are installed too.
    for name in ("winrmd", "winrmctl", "winrmctl.8", "winrmd.conf.5",
                 "winrmd-plugin.3"):
        installed(sdk, name)


def test_out_of_tree_plugin_registered_reloaded_and_served(lab_factory, sdk):
    dirs = plugin_dirs(sdk.dir)
    lab = lab_factory(args=["-o", dirs])
    w = Wire(lab)
    # Unknown before it is registered.
    r = create(w, URI)
    assert r.status == 500 and subcode(r) == q("a", "DestinationUnreachable")

    before = reloads(lab)
    r = lab.winrmctl("-o", dirs, "config", "register", "SkeletonTest",
                     "--plugin", "skeleton-oot", "--resource-uri", URI,
                     "Greeting=" + GREETING, "MaxShellsPerUser=4",
                     "--reload")
    assert r.returncode == 0, r.stdout + r.stderr
    conf = pathlib.Path(lab.config).parent / "sessions.d" / "SkeletonTest.conf"
    assert "sent SIGHUP to winrmd (pid %d)" % lab.proc.pid in r.stdout
    assert mode(conf) == 0o644
    text = conf.read_text()
    assert "[SessionConfiguration SkeletonTest]" in text
    assert "Plugin = skeleton-oot" in text
    assert "ResourceURI = " + URI in text
    assert "Greeting = " + GREETING in text
    wait_reload(lab, before)

    # A shell on it: the command's output is the greeting and its command
    # line, then whatever is sent to its stdin, until End.
    r = create(w, URI)
    assert r.status == 200, r
    sid = r.doc.text(".//w:Selector[@Name='ShellId']").strip()
    r = call(w, URI, "Command", sid, command_body("echo", ["a", "b"]))
    assert r.status == 200, r
    cid = r.doc.text(".//rsp:CommandId").strip()
    r = call(w, URI, "Send", sid, send_body(cid, b"ping\n", end="true"))
    assert r.status == 200, r
    out = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = call(w, URI, "Receive", sid, receive_body(cid))
        assert r.status == 200, r
        for s in r.doc.findall(".//rsp:Stream"):
            if s.get("Name") == "stdout":
                out += base64.b64decode(s.text or "")
        st = r.doc.find(".//rsp:CommandState")
        if st is not None and st.get("State") == STATE_DONE:
            break
    else:
        raise AssertionError("the command did not finish")
    assert out == ("%s echo a b\nping\n" % GREETING).encode(), out
    assert call(w, URI, "Delete", sid).status == 200

    # The daemon sees it in its configuration: listed by the shell count.
    r = lab.winrmctl("-o", dirs, "config", "list")
    assert r.returncode == 0, r.stderr
    row = [line.split() for line in r.stdout.splitlines()
           if line.startswith("SkeletonTest ")]
    assert row == [["SkeletonTest", "skeleton-oot", "true", URI]], r.stdout

    # Disabled: new shells are refused once the daemon reloads.
    before = reloads(lab)
    r = lab.winrmctl("-o", dirs, "config", "disable", "SkeletonTest",
                     "--reload")
    assert r.returncode == 0, r.stdout + r.stderr
    wait_reload(lab, before)
    r = create(w, URI)
    assert r.status == 500 and subcode(r) == q("w", "AccessDenied"), r

    before = reloads(lab)
    r = lab.winrmctl("-o", dirs, "config", "enable", "SkeletonTest",
                     "--reload")
    assert r.returncode == 0, r.stdout + r.stderr
    wait_reload(lab, before)
    r = create(w, URI)
    assert r.status == 200, r
    assert call(w, URI, "Delete", sid=r.doc.text(
        ".//w:Selector[@Name='ShellId']").strip()).status == 200

    # Unregistered: gone after the reload, and so is its file.
    before = reloads(lab)
    r = lab.winrmctl("-o", dirs, "config", "unregister", "SkeletonTest",
                     "--reload")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not conf.exists()
    wait_reload(lab, before)
    r = create(w, URI)
    assert r.status == 500 and subcode(r) == q("a", "DestinationUnreachable")


def test_reload_hint_and_no_daemon(lab_factory, sdk):
    dirs = plugin_dirs(sdk.dir)
    lab = lab_factory(args=["-o", dirs])
    r = lab.winrmctl("-o", dirs, "config", "register", "Hint",
                     "--plugin", "skeleton-oot")
    assert r.returncode == 0, r.stderr
    assert "kill -HUP %d" % lab.proc.pid in r.stdout, r.stdout
    lab.stop()
    r = lab.winrmctl("-o", dirs, "config", "set", "Hint", "Greeting=x",
                     "--reload")
    assert r.returncode == 0, r.stderr
    assert "winrmd is not running" in r.stdout, r.stdout


# ---------------------------------------------------------------------------
# winrmctl config
# ---------------------------------------------------------------------------

@pytest.fixture
def conf_lab(lab_factory):
    """A lab endpoint whose configuration the commands change."""
    lab = lab_factory()
    lab.sessions = pathlib.Path(lab.config).parent / "sessions.d"
    return lab


def test_register_show_set_and_list(conf_lab):
    lab = conf_lab
    r = lab.winrmctl("config", "register", "Echo", "--plugin", "skeleton",
                     "Greeting=hi", "MaxShellsPerUser=2",
                     "IdleTimeoutms=600000")
    assert r.returncode == 0, r.stderr
    path = lab.sessions / "Echo.conf"
    assert r.stdout.startswith("wrote %s\n" % path), r.stdout
    assert "kill -HUP" in r.stdout
    assert mode(path) == 0o644
    assert files_in(lab.sessions) == ["Echo.conf"]    # no temporary left

    r = lab.winrmctl("config", "show", "echo")
    assert r.returncode == 0, r.stderr
    lines = [line.rstrip() for line in r.stdout.splitlines()]
    assert "[SessionConfiguration Echo]" in lines
    for want in ("Plugin = skeleton", "ResourceURI =", "Enabled = true",
                 "MaxShellsPerUser = 2", "IdleTimeoutms = 600000",
                 "Greeting = hi", "OutputBufferingMode = Block"):
        assert want in lines, r.stdout
    assert "# Resource URI: http://schemas.microsoft.com/powershell/Echo" \
        in lines
    assert "# Section at %s:2" % path in lines

    # set: the line is rewritten in place, a new key added to the section,
    # the rest of the file (comments) kept.
    path.write_text(path.read_text() + "# kept\n")
    r = lab.winrmctl("config", "set", "Echo", "MaxShellsPerUser=3",
                     "AllowUsers=lab alice")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("updated %s\n" % path)
    text = path.read_text()
    assert "MaxShellsPerUser = 3\n" in text
    assert "MaxShellsPerUser = 2" not in text
    assert "AllowUsers = lab alice\n" in text
    assert "# kept\n" in text

    r = lab.winrmctl("config", "list")
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines()]
    assert rows[0] == ["NAME", "PLUGIN", "ENABLED", "RESOURCEURI"]
    assert ["Microsoft.PowerShell", "powershell", "true",
            "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"] \
        in rows
    assert ["PowerShell.7", "powershell", "true",
            "http://schemas.microsoft.com/powershell/PowerShell.7"] in rows
    assert ["cmd", "cmd", "true",
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"] \
        in rows
    assert ["Echo", "skeleton", "true",
            "http://schemas.microsoft.com/powershell/Echo"] in rows

    # The daemon agrees with the checks winrmctl made.
    r = run([binary("winrmd"), "-t", "-f", lab.config])
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("args,message", [
    (["--plugin", "skeleton", "Colour=blue"],
     "plugin skeleton has no option Colour"),
    (["--plugin", "no-such-plugin"], "plugin no-such-plugin not found"),
    (["--plugin", "skeleton", "MaxShellsPerUser=many"],
     'MaxShellsPerUser: bad value "many"'),
    (["--plugin", "skeleton", "OutputBufferingMode=Sometimes"],
     "OutputBufferingMode must be Block or Drop"),
    (["--plugin", "skeleton", "--resource-uri",
      "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"],
     "ResourceURI already used by cmd"),
    (["--plugin", "skeleton", "--resource-uri",
      "http://schemas.microsoft.com/powershell/PowerShell.7"],
     "ResourceURI already used by PowerShell.7"),
])
def test_register_refused_with_the_reason(conf_lab, args, message):
    lab = conf_lab
    r = lab.winrmctl("config", "register", "Bad", *args)
    assert r.returncode == 1, r.stdout + r.stderr
    assert message in r.stderr, r.stderr
    assert "refused" in r.stderr
    assert not (lab.sessions / "Bad.conf").exists()
    assert files_in(lab.sessions) == []


@pytest.mark.parametrize("args", [
    ["config", "register", "X"],                     # no --plugin
    ["config", "register", "X", "--plugin"],
    ["config", "set", "cmd"],                        # nothing to set
    ["config", "set", "cmd", "Enabled"],             # not Key=Value
    ["config", "show"],
    ["config", "list", "extra"],
    ["config", "frobnicate", "X"],
    ["config"],
    ["quickconfig", "--https-port", "70000"],
    ["quickconfig", "--bogus"],
])
def test_usage_errors_exit_2(conf_lab, args):
    r = conf_lab.winrmctl(*args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "usage:" in r.stderr or "needs --plugin" in r.stderr, r.stderr


@pytest.mark.parametrize("name,key", [
    ("../evil", None), (".hidden", None), ("a b", None), ("x" * 101, None),
    ("Ok", "Include"), ("Ok", "Bad Key"), ("Ok", "a=b"),
])
def test_bad_names_and_keys_refused(conf_lab, name, key):
    args = ["config", "register", name, "--plugin", "skeleton"]
    if key is not None:
        args.append(key + "=1")
    r = conf_lab.winrmctl(*args)
    assert r.returncode == 1, r.stdout + r.stderr
    assert files_in(conf_lab.sessions) == []


def test_existing_and_missing_configurations(conf_lab):
    lab = conf_lab
    r = lab.winrmctl("config", "register", "Microsoft.PowerShell",
                     "--plugin", "skeleton")
    assert r.returncode == 1 and "is built in" in r.stderr, r.stderr
    for verb in ("unregister", "enable", "disable", "show"):
        r = lab.winrmctl("config", verb, "Nope")
        assert r.returncode == 1, r.stderr
        assert "no session configuration Nope" in r.stderr, r.stderr
    r = lab.winrmctl("config", "set", "Nope", "Enabled=false")
    assert r.returncode == 1 and "no session configuration" in r.stderr
    r = lab.winrmctl("config", "register", "Twice", "--plugin", "skeleton")
    assert r.returncode == 0, r.stderr
    r = lab.winrmctl("config", "register", "twice", "--plugin", "skeleton")
    assert r.returncode == 1 and "Twice exists" in r.stderr, r.stderr


def test_builtins_disabled_and_changed_not_unregistered(conf_lab):
    lab = conf_lab
    for name in ("Microsoft.PowerShell", "PowerShell.7", "cmd", "CMD"):
        r = lab.winrmctl("config", "unregister", name)
        assert r.returncode == 1, r.stderr
        assert "built in" in r.stderr, r.stderr
    before = reloads(lab)
    r = lab.winrmctl("config", "disable", "CMD", "--reload")
    assert r.returncode == 0, r.stderr
    # The file takes the configuration's own spelling.
    path = lab.sessions / "cmd.conf"
    assert path.read_text().splitlines()[1:] == [
        "[SessionConfiguration cmd]", "Enabled = false"]
    wait_reload(lab, before)
    import winrm.exceptions
    with pytest.raises(winrm.exceptions.WinRMError) as e:
        lab.session().run_cmd("echo", ["no"])
    assert "Access is denied" in str(e.value), str(e.value)
    r = lab.winrmctl("config", "show", "cmd")
    assert "# Built in." in r.stdout and "Enabled = false" in r.stdout
    # Changed, then enabled again in the same file.
    r = lab.winrmctl("config", "set", "cmd", "MaxShellsPerUser=7")
    assert r.returncode == 0, r.stderr
    before = reloads(lab)
    r = lab.winrmctl("config", "enable", "cmd", "--reload")
    assert r.returncode == 0, r.stderr
    assert path.read_text().splitlines()[1:] == [
        "[SessionConfiguration cmd]", "Enabled = true",
        "MaxShellsPerUser = 7"]
    wait_reload(lab, before)
    assert lab.session().run_cmd("echo", ["yes"]).std_out == b"yes\n"


def test_a_later_file_wins_so_the_change_is_refused(conf_lab):
    lab = conf_lab
    r = lab.winrmctl("config", "register", "Echo", "--plugin", "skeleton")
    assert r.returncode == 0, r.stderr
    later = lab.sessions / "zz-later.conf"
    later.write_text("[SessionConfiguration Echo]\nMaxShellsPerUser = 9\n")
    r = lab.winrmctl("config", "set", "Echo", "MaxShellsPerUser=1")
    assert r.returncode == 1
    assert "MaxShellsPerUser is set again at %s:2" % later in r.stderr, \
        r.stderr
    assert "MaxShellsPerUser" not in (lab.sessions / "Echo.conf").read_text()
    # Unregistering would leave it defined by the other file.
    r = lab.winrmctl("config", "unregister", "Echo")
    assert r.returncode == 1
    assert "still defined at %s:1" % later in r.stderr, r.stderr
    assert (lab.sessions / "Echo.conf").exists()
    later.unlink()
    r = lab.winrmctl("config", "unregister", "Echo")
    assert r.returncode == 0, r.stderr
    assert files_in(lab.sessions) == []


def test_unregister_keeps_a_file_holding_more(conf_lab):
    lab = conf_lab
    path = lab.sessions / "Mixed.conf"
    path.write_text("[SessionConfiguration Mixed]\nPlugin = skeleton\n"
                    "[Service]\nLogLevel = INFO\n")
    r = lab.winrmctl("config", "unregister", "Mixed")
    assert r.returncode == 1
    assert "holds more than session configuration Mixed" in r.stderr
    assert path.exists()


def test_other_errors_of_the_configuration_block_a_change(conf_lab):
    lab = conf_lab
    (lab.sessions / "broken.conf").write_text("[Service]\nNoSuchKey = 1\n")
    r = lab.winrmctl("config", "register", "Echo", "--plugin", "skeleton")
    assert r.returncode == 1
    assert "unknown key NoSuchKey in [Service]" in r.stderr, r.stderr
    assert not (lab.sessions / "Echo.conf").exists()


def test_configuration_without_the_include_is_refused(tmp_path):
    conf = tmp_path / "winrmd.conf"
    conf.write_text("[Service]\nUserMode = true\nStateDirectory = %s\n"
                    "[Listener HTTP]\nAddress = 127.0.0.1\nPort = 0\n"
                    % tmp_path)
    r = winrmctl(conf, "config", "register", "Echo", "--plugin", "skeleton")
    assert r.returncode == 1
    assert "needs \"Include = sessions.d/*.conf\"" in r.stderr, r.stderr
    assert files_in(tmp_path / "sessions.d") == []
    assert conf.read_text().count("Include") == 0


# ---------------------------------------------------------------------------
# winrmctl quickconfig
# ---------------------------------------------------------------------------

def my_group():
    return grp.getgrgid(os.getgid()).gr_name


def missing_group():
    for i in range(100):
        name = "winrmd-test-nogroup%d" % i
        try:
            grp.getgrnam(name)
        except KeyError:
            return name
    pytest.skip("no unused group name")


def tree(directory):
    return sorted(str(p.relative_to(directory))
                  for p in pathlib.Path(directory).rglob("*"))


def test_quickconfig_dry_run_changes_nothing(tmp_path):
    etc = tmp_path / "etc"
    pam = tmp_path / "pam.d"
    pam.mkdir()
    group = missing_group()
    r = winrmctl(etc / "winrmd.conf", "quickconfig", "--dry-run",
                 "--group", group, "--pam-file", pam / "winrmd",
                 "--hostname", "web1.example.com", "--https-port", "15986")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert out.startswith("Plan (dry run: nothing is changed)"), out
    assert "would:  create group %s (groupadd --system %s)" % (group, group) \
        in out
    assert "would:  write PAM service file %s" % (pam / "winrmd") in out
    assert "would:  generate a self-signed certificate for " \
        "web1.example.com" in out
    assert "would:  write %s: HTTPS listener on port 15986" \
        % (etc / "winrmd.conf") in out
    assert "systemctl enable --now winrmd" in out
    assert "15986/tcp" in out
    assert "TrustedHosts" in out
    assert tree(tmp_path) == ["pam.d"]


def test_quickconfig_fresh_then_again(tmp_path):
    etc = tmp_path / "etc"
    pam = tmp_path / "pam.d"
    pam.mkdir()
    conf = etc / "winrmd.conf"
    args = ["quickconfig", "--group", my_group(), "--pam-file",
            pam / "winrmd", "--hostname", "web1.example.com",
            "--https-port", "15986"]
    r = winrmctl(conf, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok:     group %s exists" % my_group() in r.stdout
    assert "done:   wrote PAM service file" in r.stdout
    assert "done:   generated a self-signed certificate" in r.stdout
    assert "done:   wrote %s" % conf in r.stdout
    assert tree(tmp_path) == ["etc", "etc/cert.pem", "etc/key.pem",
                              "etc/sessions.d", "etc/winrmd.conf", "pam.d",
                              "pam.d/winrmd"]
    assert mode(etc / "key.pem") == 0o600
    assert mode(etc / "cert.pem") == 0o644
    assert mode(conf) == 0o644
    assert "pam_unix.so" in (pam / "winrmd").read_text()
    text = conf.read_text()
    for want in ("AllowUnencrypted = false", "AllowGroups = " + my_group(),
                 "Basic = true", "Negotiate = true", "Kerberos = true",
                 "[Listener HTTPS]", "Transport = HTTPS", "Port = 15986",
                 "CertificateFile = %s" % (etc / "cert.pem"),
                 "KeyFile = %s" % (etc / "key.pem"),
                 "Include = sessions.d/*.conf"):
        assert want + "\n" in text, text
    assert "[Listener HTTP]" not in text
    r = run([binary("winrmd"), "-t", "-f", conf])
    assert r.returncode == 0, r.stderr
    # The certificate names the host.
    if shutil.which("openssl"):
        r = run(["openssl", "x509", "-in", etc / "cert.pem", "-noout",
                 "-subject", "-ext", "subjectAltName,extendedKeyUsage"])
        if r.returncode == 0:
            assert "web1.example.com" in r.stdout
            assert "DNS:web1" in r.stdout
            assert "TLS Web Server Authentication" in r.stdout

    # Again: nothing to do, nothing changed.
    snapshot = {p: (p.read_bytes(), os.stat(p).st_mtime_ns)
                for p in tmp_path.rglob("*") if p.is_file()}
    r = winrmctl(conf, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "  done:" not in r.stdout and "would:" not in r.stdout, r.stdout
    assert "ok:     HTTPS listener HTTPS is enabled on port 15986" in r.stdout
    assert {p: (p.read_bytes(), os.stat(p).st_mtime_ns)
            for p in tmp_path.rglob("*") if p.is_file()} == snapshot


def test_quickconfig_certificate_serves_https(tmp_path):
    etc = tmp_path / "etc"
    pam = tmp_path / "pam.d"
    pam.mkdir()
    conf = etc / "winrmd.conf"
    r = winrmctl(conf, "quickconfig", "--group", my_group(), "--pam-file",
                 pam / "winrmd", "--hostname", "localhost")
    assert r.returncode == 0, r.stdout + r.stderr
    log = tmp_path / "winrmd.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(
            [binary("winrmd"), "-f", str(conf),
             "-o", "Service.UserMode=true",
             "-o", "Service.StateDirectory=%s" % (tmp_path / "state"),
             "-o", "Listener HTTPS.Address=127.0.0.1",
             "-o", "Listener HTTPS.Port=0"], stdout=f,
            stderr=subprocess.STDOUT)
    try:
        port = None
        deadline = time.monotonic() + 20
        while port is None and time.monotonic() < deadline:
            m = re.search(r"listening on https://127\.0\.0\.1:(\d+)/wsman",
                          log.read_text())
            if m:
                port = int(m.group(1))
            elif proc.poll() is not None:
                raise AssertionError(log.read_text())
            time.sleep(0.05)
        assert port, log.read_text()
        # A client that trusts the generated certificate, and checks the
        # host name in it, gets an answer.
        ctx = ssl.create_default_context(cafile=str(etc / "cert.pem"))
        assert ctx.check_hostname
        body = ('<s:Envelope xmlns:s="%s" xmlns:wsmid="%s"><s:Header/>'
                "<s:Body><wsmid:Identify/></s:Body></s:Envelope>"
                % (NS["s"], NS["wsmid"]))
        c = http.client.HTTPSConnection("localhost", port, timeout=30,
                                        context=ctx)
        c.request("POST", "/wsman-anon/identify", body=body, headers={
            "Content-Type": "application/soap+xml;charset=UTF-8"})
        resp = c.getresponse()
        reply = resp.read()
        c.close()
        assert resp.status == 200, reply
        assert b"IdentifyResponse" in reply, reply
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_quickconfig_existing_configuration_gets_a_listener_file(tmp_path):
    # The sample configuration, as installed: HTTPS listener disabled.
    etc = tmp_path / "etc"
    (etc / "sessions.d").mkdir(parents=True)
    sample = (SRCDIR / "config" / "winrmd.conf").read_text()
    sample = sample.replace("/etc/winrmd/", str(etc) + "/")
    (etc / "winrmd.conf").write_text(sample)
    for f in (SRCDIR / "config" / "sessions.d").iterdir():
        shutil.copy(f, etc / "sessions.d")
    before = {p: p.read_bytes() for p in etc.rglob("*") if p.is_file()}
    pam = tmp_path / "pam.d"
    pam.mkdir()
    (pam / "common-auth").write_text("")
    args = ["quickconfig", "--group", my_group(), "--pam-file",
            pam / "winrmd", "--hostname", "web1.example.com"]

    r = winrmctl(etc / "winrmd.conf", *args, "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    dropin = etc / "sessions.d" / "quickconfig-https.conf"
    assert "would:  write %s: enable HTTPS listener HTTPS on port 5986" \
        % dropin in r.stdout, r.stdout
    assert "common-auth, common-account" in r.stdout
    assert 'AllowGroups in %s is "winrmd-users"' % (etc / "winrmd.conf") \
        in r.stdout or my_group() == "winrmd-users"
    assert "Basic is off" in r.stdout
    assert not dropin.exists()

    r = winrmctl(etc / "winrmd.conf", *args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "@include common-auth" in (pam / "winrmd").read_text()
    text = dropin.read_text()
    assert "[Listener HTTPS]\n" in text and "Enabled = true\n" in text
    assert "CertificateFile = %s/cert.pem\n" % etc in text
    # The files that were there are as they were.
    assert {p: p.read_bytes() for p in before} == before
    r = run([binary("winrmd"), "-T", "-f", etc / "winrmd.conf"])
    assert r.returncode == 0, r.stderr
    https = r.stdout.split("[Listener HTTPS]\n")[1].split("\n\n")[0]
    assert "Enabled = true" in https and "Port = 5986" in https
    r = run([binary("winrmd"), "-t", "-f", etc / "winrmd.conf"])
    assert r.returncode == 0, r.stderr

    # Again: the listener is enabled now; nothing is written.
    r = winrmctl(etc / "winrmd.conf", *args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "  done:" not in r.stdout
    # The drop-in is not a session configuration winrmctl would remove.
    r = winrmctl(etc / "winrmd.conf", "config", "unregister",
                 "quickconfig-https")
    assert r.returncode == 1 and dropin.exists()


def test_quickconfig_never_replaces_half_a_pair(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "key.pem").write_text("not mine\n")
    pam = tmp_path / "pam.d"
    pam.mkdir()
    r = winrmctl(etc / "winrmd.conf", "quickconfig", "--group", my_group(),
                 "--pam-file", pam / "winrmd")
    assert r.returncode == 1
    assert "not replacing it" in r.stderr, r.stderr
    assert (etc / "key.pem").read_text() == "not mine\n"
    assert not (etc / "winrmd.conf").exists()
    assert not (etc / "cert.pem").exists()


def test_quickconfig_refuses_a_configuration_that_does_not_check(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "winrmd.conf").write_text("[Service]\nBogus = 1\n")
    r = winrmctl(etc / "winrmd.conf", "quickconfig", "--dry-run",
                 "--group", my_group(), "--pam-file", tmp_path / "pam")
    assert r.returncode == 1
    assert "unknown key Bogus" in r.stderr
    assert tree(tmp_path) == ["etc", "etc/winrmd.conf"]
