"""WinRS through Debian's pywinrm 0.3.0 against the real daemon."""
import base64
import concurrent.futures
import time

import pytest
from winrm.exceptions import WinRMOperationTimeoutError


def send_input(p, shell, cid, data, end=False):
    """Protocol.send_command_input of later pywinrm releases.

    Debian's pywinrm 0.3.0 lacks the method; this sends the same rsp:Send
    envelope through the same Protocol (headers, transport, auth)."""
    if hasattr(p, "send_command_input"):
        return p.send_command_input(shell, cid, data, end=end)
    req = {"env:Envelope": p._get_soap_header(
        resource_uri="http://schemas.microsoft.com/wbem/wsman/1/windows/"
                     "shell/cmd",
        action="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
               "Send",
        shell_id=shell)}
    stream = req["env:Envelope"].setdefault("env:Body", {}).setdefault(
        "rsp:Send", {}).setdefault("rsp:Stream", {})
    stream["@Name"] = "stdin"
    stream["@CommandId"] = cid
    stream["#text"] = base64.b64encode(data).decode()
    if end:
        stream["@End"] = "true"
    import xmltodict
    p.send_message(xmltodict.unparse(req))


def run(p, shell, command, args=(), stdin=None, end=True):
    cid = p.run_command(shell, command, list(args))
    if stdin is not None:
        send_input(p, shell, cid, stdin, end=end)
    out, err, code = p.get_command_output(shell, cid)
    p.cleanup_command(shell, cid)
    return out, err, code


def test_echo_and_exit_code(lab):
    s = lab.session()
    r = s.run_cmd("echo", ["hello", "world"])
    assert r.status_code == 0
    assert r.std_out == b"hello world\n"
    assert r.std_err == b""
    r = s.run_cmd("exit 7")
    assert r.status_code == 7


def test_stderr(lab):
    r = lab.session().run_cmd("echo out; echo oops >&2; exit 3")
    assert (r.std_out, r.std_err, r.status_code) == (b"out\n", b"oops\n", 3)


def test_full_command_line_in_command(lab):
    # pywinrm's run_cmd("a b c") puts the whole line in rsp:Command.
    r = lab.session().run_cmd("printf '%s|' one 'two three'")
    assert r.std_out == b"one|two three|"


def test_stdin_through_send(lab):
    p = lab.protocol()
    shell = p.open_shell()
    try:
        out, err, code = run(p, shell, "tr a-z A-Z", stdin=b"stdin data\n")
        assert (out, code) == (b"STDIN DATA\n", 0)
        # Input in several Sends, the last one ending the stream.
        cid = p.run_command(shell, "wc -c")
        send_input(p, shell, cid, b"x" * 1000, end=False)
        send_input(p, shell, cid, b"y" * 24, end=True)
        out, err, code = p.get_command_output(shell, cid)
        p.cleanup_command(shell, cid)
        assert out.strip() == b"1024"
    finally:
        p.close_shell(shell)


def test_unicode_both_ways(lab):
    text = "Grüße, 日本語, emoji 🎉, Ελληνικά"
    p = lab.protocol()
    shell = p.open_shell(codepage=65001)
    try:
        out, _, code = run(p, shell, "cat", stdin=text.encode())
        assert out.decode() == text
        out, _, code = run(p, shell, f"printf '%s' '{text}'")
        assert out.decode() == text
    finally:
        p.close_shell(shell)


def test_ten_mebibytes_of_output(lab):
    r = lab.session().run_cmd("head -c 10485760 /dev/zero | tr '\\0' 'a'")
    assert r.status_code == 0
    assert len(r.std_out) == 10 * 1024 * 1024
    assert set(r.std_out) == {ord("a")}


def test_twenty_commands_in_one_shell(lab):
    p = lab.protocol()
    shell = p.open_shell()
    try:
        for i in range(20):
            out, err, code = run(p, shell, f"echo {i}; exit {i % 5}")
            assert out == f"{i}\n".encode()
            assert code == i % 5
    finally:
        p.close_shell(shell)


def test_sixteen_shells_in_parallel(lab):
    def one(i):
        p = lab.protocol()
        shell = p.open_shell()
        try:
            return run(p, shell, f"sleep 0.2; echo shell{i}")
        finally:
            p.close_shell(shell)

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        results = list(ex.map(one, range(16)))
    assert [r[0] for r in results] == [f"shell{i}\n".encode()
                                       for i in range(16)]


def test_command_outlives_operation_timeout(lab):
    # pywinrm polls through the w:TimedOut faults and still gets the output.
    p = lab.protocol(operation_timeout_sec=2, read_timeout_sec=4)
    shell = p.open_shell()
    try:
        start = time.monotonic()
        out, err, code = run(p, shell, "sleep 5; echo done")
        assert (out, code) == (b"done\n", 0)
        assert time.monotonic() - start >= 5
    finally:
        p.close_shell(shell)


def test_receive_timeout_fault_shape(lab):
    p = lab.protocol(operation_timeout_sec=2, read_timeout_sec=4)
    shell = p.open_shell()
    try:
        cid = p.run_command(shell, "sleep 30")
        start = time.monotonic()
        with pytest.raises(WinRMOperationTimeoutError):
            p._raw_get_command_output(shell, cid)
        # Answered before the client's own deadline.
        assert time.monotonic() - start < 2.5
        p.cleanup_command(shell, cid)
    finally:
        p.close_shell(shell)


def test_run_ps_without_pwsh_runs_nothing_else(lab):
    # run_ps encodes the script for "powershell -encodedcommand".
    import shutil
    if shutil.which("pwsh") is None:
        pytest.skip("pwsh is not installed")
    r = lab.session().run_ps("Write-Output ('a' + 'b'); exit 4")
    assert r.std_out.strip() == b"ab"
    assert r.status_code == 4
