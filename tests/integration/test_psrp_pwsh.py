"""The PSRP client package against real PowerShell through ``pwsh -s``.

Tests using the ``open_pool`` fixture run twice (the others only on
``pwsh -s``, where the WS-Man layer would add nothing):

* ``oop``: OutOfProcTransport speaks pwsh's stdio server mode directly, so
  everything above the transport (fragments, CLIXML, messages,
  RunspacePool/PowerShell, Host) meets the real PowerShell remoting server
  code — the same code the winrmd bridge will front.
* ``wsman``: WSManTransport over python3-winrm (HTTP, Basic auth) talks to
  a real winrmd lab endpoint, whose Microsoft.PowerShell configuration
  bridges each shell to its own ``pwsh -s``: the same scenarios, through the
  product.

Skipped when no pwsh is installed.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import signal
import sys
import time
import uuid
import xml.etree.ElementTree as ET

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import psrp  # noqa: E402
from psrp import (Host, OutOfProcTransport, PowerShell, PSInvocationState,  # noqa: E402
                  RunspacePool, RunspacePoolState, WSManTransport, clixml)

PWSH = psrp.find_pwsh()
pytestmark = pytest.mark.skipif(PWSH is None, reason="pwsh not found")

TEST_TIME_LIMIT = 45


@pytest.fixture(autouse=True)
def time_limit():
    """Fail (instead of hanging) when a test runs longer than the limit."""
    def expired(signum, frame):
        raise TimeoutError("test exceeded %d s" % TEST_TIME_LIMIT)
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_TIME_LIMIT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _pools(kind: str, lab_factory=None):
    """Generator behind the pool fixtures: yields make(**RunspacePool kwargs)
    that returns an opened pool on a fresh pwsh, and cleans up afterwards."""
    server = None
    if kind == "wsman":
        pytest.importorskip("winrm")
        server = lab_factory()
    made: list[RunspacePool] = []

    def make(**kw) -> RunspacePool:
        if server is None:
            transport = OutOfProcTransport(PWSH)
        else:
            transport = WSManTransport(server.http_url, server.user,
                                       server.password, auth="basic",
                                       operation_timeout=5)
        pool = RunspacePool(transport, **kw)
        made.append(pool)
        return pool.open(timeout=30)

    try:
        yield make
    finally:
        for pool in made:
            try:
                if pool.state == RunspacePoolState.OPENED:
                    pool.close()
            finally:
                tr = pool.transport
                if isinstance(tr, OutOfProcTransport) and tr.process.poll() is None:
                    tr.close(timeout=5)


@pytest.fixture(params=["oop", "wsman"])
def open_pool(request, lab_factory):
    """Runs the test on both transports."""
    yield from _pools(request.param, lab_factory)


@pytest.fixture
def open_oop_pool():
    """For behaviour the WS-Man layer adds nothing to: pwsh -s only."""
    yield from _pools("oop")


def run(pool: RunspacePool, script: str, input=None, timeout: float = 30, **kw):
    ps = PowerShell(pool, **kw).add_script(script)
    out = ps.invoke(input=input, timeout=timeout)
    return ps, out


# ---------------------------------------------------------------------------


def test_open_and_close_pool(open_pool):
    pool = open_pool()
    assert pool.state == RunspacePoolState.OPENED
    cap = pool.server_capability
    assert cap.protocol_version == "2.3" and cap.ps_version == "2.0"
    assert cap.serialization_version == "1.1.0.1"
    types = [m.message_type for m in pool.received]
    assert types == [psrp.MessageType.SESSION_CAPABILITY,
                     psrp.MessageType.APPLICATION_PRIVATE_DATA,
                     psrp.MessageType.RUNSPACEPOOL_STATE]
    assert pool.received[0].rpid == psrp.NIL_UUID          # like Windows
    assert all(m.rpid == pool.rpid for m in pool.received[1:])
    assert all(m.has_bom for m in pool.received)
    table = pool.application_private_data["PSVersionTable"]
    assert table["PSEdition"] == "Core" and table["PSVersion"] >= "7.0"
    assert table["PSRemotingProtocolVersion"] == "2.3"

    tr = pool.transport
    pool.close()
    assert pool.state == RunspacePoolState.CLOSED
    if isinstance(tr, OutOfProcTransport):
        assert tr.process.wait(10) is not None   # pwsh ends after Close + EOF
    else:
        assert tr.closed and tr.shell_id == str(pool.rpid).upper()
    pool.close()   # idempotent


def test_get_date(open_pool):
    pool = open_pool()
    ps, out = run(pool, "Get-Date")
    assert ps.state == PSInvocationState.COMPLETED and len(out) == 1
    now = out[0].value
    assert isinstance(now, dt.datetime) and now.tzinfo is not None
    assert abs((dt.datetime.now(dt.timezone.utc) - now).total_seconds()) < 300
    assert out[0]["DisplayHint"].value == 2 and str(out[0]["DisplayHint"]) == "DateTime"
    ps = PowerShell(pool).add_command("Get-Date").add_parameter("Year", 2001)
    ps.add_parameter("Month", 2).add_parameter("Day", 3)
    assert ps.invoke(timeout=30)[0].value.date() == dt.date(2001, 2, 3)


def test_psversiontable(open_oop_pool):
    pool = open_oop_pool()
    ps, out = run(pool, "$PSVersionTable")
    assert len(out) == 1
    table = out[0]
    assert isinstance(table, clixml.PSDict)
    assert table.type_names[0] == "System.Management.Automation.PSVersionHashTable"
    assert str(table["PSVersion"]).startswith("7.") and table["PSEdition"] == "Core"
    # pwsh reports its own protocol version here (2.4 in 7.6), not the negotiated one.
    assert table["PSRemotingProtocolVersion"] >= clixml.PSVersion(2, 3)
    assert table["SerializationVersion"] == "1.1.0.1"


def test_thousand_output_objects(open_pool):
    pool = open_pool()
    ps, out = run(pool, "1..1000 | ForEach-Object { [pscustomobject]@{ N = $_; S = 'item' + $_ } }")
    assert ps.state == PSInvocationState.COMPLETED
    assert len(out) == 1000
    assert [o["N"] for o in out] == list(range(1, 1001))
    assert out[999]["S"] == "item1000"
    assert out[0].type_names == ["System.Management.Automation.PSCustomObject", "System.Object"]
    object_ids = [m.object_id for m in ps.received]
    assert object_ids == sorted(object_ids)   # one counter, increasing


def test_unicode_round_trip(open_pool):
    pool = open_pool()
    text = "Grüße 日本 🎉"
    ps = PowerShell(pool).add_script("param($s) $s; $s.Length; [int][char]$s[6]; 'Grüße 日本 🎉'")
    ps.add_argument(text)
    out = ps.invoke(timeout=30)
    assert out == [text, 11, ord("日"), text]
    tricky = "tab\tcr\r\nlf\n _x0041_ _X00 \x01 <&> \U0001F600"
    ps, out = run(pool, "$input", input=[tricky])
    assert out == [tricky]


def test_write_error_is_non_terminating(open_oop_pool):
    pool = open_oop_pool()
    ps, out = run(pool, "Write-Error 'bad thing'; 'after'")
    assert ps.state == PSInvocationState.COMPLETED
    assert out == ["after"]
    assert ps.had_errors and len(ps.streams.error) == 1
    err = ps.streams.error[0]
    assert err.message == "bad thing"
    assert err.fully_qualified_error_id == "Microsoft.PowerShell.Commands.WriteErrorException"
    assert err.exception_type == "Microsoft.PowerShell.Commands.WriteErrorException"
    assert err.category == psrp.ErrorCategory.NOT_SPECIFIED
    assert ps.invocation_error is None


def test_throw_fails_the_pipeline(open_pool):
    pool = open_pool()
    ps, out = run(pool, "'before'; throw 'boom'; 'never'")
    assert ps.state == PSInvocationState.FAILED
    assert out == ["before"]
    err = ps.invocation_error
    assert err.message == "boom" and err.fully_qualified_error_id == "boom"
    assert err.exception_type == "System.Management.Automation.RuntimeException"
    assert err.category == psrp.ErrorCategory.OPERATION_STOPPED
    assert ps.had_errors
    # The pool survives a failed pipeline.
    assert run(pool, "'still here'")[1] == ["still here"]


def test_informational_streams(open_oop_pool):
    pool = open_oop_pool()
    ps, out = run(pool, """
        $VerbosePreference = 'Continue'
        $DebugPreference = 'Continue'
        $InformationPreference = 'Continue'
        Write-Warning 'warn msg'
        Write-Verbose 'verbose msg'
        Write-Debug 'debug msg'
        Write-Information 'info msg' -Tags t1, t2
        Write-Progress -Activity 'act' -Status 'half' -PercentComplete 50
        'done'
    """)
    assert ps.state == PSInvocationState.COMPLETED and out == ["done"]
    s = ps.streams
    assert [r.message for r in s.warning] == ["warn msg"]
    assert [r.message for r in s.verbose] == ["verbose msg"]
    assert [r.message for r in s.debug] == ["debug msg"]
    assert [r.message for r in s.information] == ["info msg"]
    assert s.information[0].tags == ["t1", "t2"] and s.information[0].source == "Write-Information"
    prog = [p for p in s.progress if p.activity == "act"]
    assert prog and prog[0].status_description == "half" and prog[0].percent_complete == 50
    assert not ps.had_errors


def test_pipeline_input(open_pool):
    pool = open_pool()
    ps, out = run(pool, "$input | ForEach-Object { $_ * 2 }", input=[1, 2, 3])
    assert out == [2, 4, 6]
    ps, out = run(pool, "process { $_.Name + '=' + $_.Value }",
                  input=[{"Name": "a", "Value": 1}, {"Name": "b", "Value": 2}])
    assert out == ["a=1", "b=2"]
    # Input sent in pieces while the pipeline runs.
    ps = PowerShell(pool).add_script("$input | Measure-Object -Sum | ForEach-Object Sum")
    ps.begin_invoke(input=[1, 2], end_input=False)
    ps.send_input([3, 4])
    ps.end_input()
    assert ps.end_invoke(30) == [10]


def test_param_with_positional_arguments(open_oop_pool):
    pool = open_oop_pool()
    ps = PowerShell(pool).add_script("param($First, $Second, [switch]$Loud) "
                                     "$r = \"$First+$Second\"; if ($Loud) { $r.ToUpper() } else { $r }")
    ps.add_argument("one").add_argument(2)
    assert ps.invoke(timeout=30) == ["one+2"]
    ps = PowerShell(pool).add_script("param($First, $Second, [switch]$Loud) "
                                     "$r = \"$First+$Second\"; if ($Loud) { $r.ToUpper() } else { $r }")
    ps.add_parameter("Second", "b").add_argument("a").add_parameter("Loud")
    assert ps.invoke(timeout=30) == ["A+B"]


def test_several_commands_in_one_pipeline(open_oop_pool):
    pool = open_oop_pool()
    ps = PowerShell(pool).add_script("5, 3, 4, 1").add_command("Sort-Object")
    ps.add_command("Select-Object").add_parameter("First", 3)
    assert ps.invoke(timeout=30) == [1, 3, 4]
    ps = PowerShell(pool).add_command("Get-Item").add_argument("/")
    ps.add_command("Select-Object").add_parameter("ExpandProperty", "FullName")
    assert ps.invoke(timeout=30) == ["/"]


def test_merge_error_into_output(open_oop_pool):
    pool = open_oop_pool()
    ps = PowerShell(pool).add_script("Write-Error 'merged'; 'out'").merge_error_to_output()
    out = ps.invoke(timeout=30)
    assert len(out) == 2 and not ps.streams.error
    assert out[0].type_names[0] == "System.Management.Automation.ErrorRecord"
    assert psrp.messages.parse_error_record(out[0]).message == "merged"
    assert out[1] == "out"


def test_read_host_answered_through_host(open_pool):
    host = Host(read_lines=["typed line", "prompted answer"])
    pool = open_pool(host=host)
    ps, out = run(pool, "$a = Read-Host; $b = Read-Host -Prompt 'Name'; \"[$a][$b]\"; "
                        "Write-Host 'shown on host'")
    assert ps.state == PSInvocationState.COMPLETED
    assert out == ["[typed line][prompted answer]"]
    names = [c.method_name for c in host.calls]
    assert names[:2] == ["ReadLine", "Prompt"]
    read_line = host.calls[0]
    assert read_line.method_id == 11 and read_line.ci > 0 and read_line.expects_response
    prompt = host.calls[1]
    assert prompt.parameters[2][0]["name"] == "Name"
    assert ("WriteLine2", "shown on host") in host.written
    assert not host.read_lines


def test_unimplemented_host_method_returns_an_error(open_oop_pool):
    pool = open_oop_pool(host=Host())
    ps, out = run(pool, "try { $host.UI.ReadLineAsSecureString() } "
                        "catch { 'caught: ' + $_.Exception.Message }")
    assert ps.state == PSInvocationState.COMPLETED
    assert len(out) == 1 and out[0].startswith("caught: ")
    assert "not implemented" in out[0]
    # Read-Host with no input left is answered with an error too, not a hang.
    ps, out = run(pool, "Read-Host")
    assert ps.state == PSInvocationState.FAILED
    assert "no input available" in ps.invocation_error.message


def test_stop_long_running_pipeline(open_pool):
    pool = open_pool()
    ps = PowerShell(pool).add_script("'started'; Start-Sleep -Seconds 60; 'not reached'")
    ps.begin_invoke()
    deadline = time.monotonic() + 20
    while not ps.output and time.monotonic() < deadline:
        ps.poll_invoke(0.5)
    assert ps.output == ["started"]
    t0 = time.monotonic()
    ps.stop(timeout=15)
    elapsed = time.monotonic() - t0
    assert ps.state == PSInvocationState.STOPPED
    assert elapsed < 5, "stop took %.1f s" % elapsed
    assert ps.output == ["started"]
    assert ps.invocation_error is not None
    assert run(pool, "'alive'")[1] == ["alive"]


def test_two_concurrent_pipelines(open_pool):
    pool = open_pool(max_runspaces=2)
    script = "Start-Sleep -Seconds 2; [runspace]::DefaultRunspace.InstanceId"
    a = PowerShell(pool).add_script(script)
    b = PowerShell(pool).add_script(script)
    t0 = time.monotonic()
    a.begin_invoke()
    b.begin_invoke()
    ra = a.end_invoke(20)
    rb = b.end_invoke(20)
    elapsed = time.monotonic() - t0
    assert a.state == b.state == PSInvocationState.COMPLETED
    assert ra[0] != rb[0], "both pipelines ran in the same runspace"
    assert elapsed < 3.8, "pipelines did not overlap (%.1f s)" % elapsed


def test_runspace_pool_calls(open_pool):
    pool = open_pool()
    assert pool.get_available_runspaces() == 1
    run(pool, "$global:marker = 'set'")
    assert run(pool, "$global:marker")[1] == ["set"]
    assert pool.reset_runspace_state() is True
    assert run(pool, "$global:marker")[1] == [None]
    assert pool.set_max_runspaces(3) is True
    assert pool.max_runspaces == 3 and pool.get_available_runspaces() == 3
    assert pool.set_min_runspaces(2) is True
    assert pool.set_min_runspaces(5) is False   # above the maximum
    assert pool.reset_runspace_state() is False  # only for single-runspace pools


def test_get_command_metadata(open_pool):
    pool = open_pool()
    meta = pool.get_command_metadata("Get-Date")
    assert len(meta) == 1
    md = meta[0]
    assert md["Name"] == "Get-Date"
    assert md["CommandType"].value == 8 and str(md["CommandType"]) == "Cmdlet"
    assert md["Namespace"] == "Microsoft.PowerShell.Utility"
    params = md["Parameters"]
    assert {"Date", "Format", "UFormat", "Year"} <= set(params)
    assert params["Date"]["ParameterType"] == "System.DateTime"
    several = pool.get_command_metadata(["Get-Dat*", "Get-Item"],
                                        command_type=psrp.CommandTypes.CMDLET)
    assert {"Get-Date", "Get-Item"} <= {m["Name"] for m in several}


def test_application_arguments(open_oop_pool):
    pool = open_oop_pool(application_arguments={"Who": "winrmd-tests", "N": 7})
    ps, out = run(pool, "$PSSenderInfo.ApplicationArguments['Who']; "
                        "$PSSenderInfo.ApplicationArguments['N']")
    assert out == ["winrmd-tests", 7]


def test_large_messages_are_fragmented(open_pool):
    pool = open_pool()
    big = "x" * 200000 + "é"
    ps, out = run(pool, "$input | ForEach-Object { $_.Length; $_ + $_ }", input=[big])
    assert out[0] == len(big)
    assert out[1] == big + big
    starts = [m for m in ps.received if m.message_type == psrp.MessageType.PIPELINE_OUTPUT]
    assert len(starts) == 2
    # The CREATE_PIPELINE of a huge script also spans several fragments.
    script = "'" + "y" * 100000 + "'.Length"
    assert run(pool, script)[1] == [100002 - 2]


def test_serializer_round_trip_through_powershell(open_oop_pool):
    pool = open_oop_pool()
    when = clixml.PSDateTime.from_datetime(
        dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone.utc), 700)
    values = [  # noqa: RUF012
        "s", 42, 2 ** 40, True, None, 1.25, decimal.Decimal("79228162514264337593543950335"),
        when, dt.timedelta(days=2, hours=3, microseconds=5), b"\x00\x01\xfe",
        uuid.UUID("01234567-89ab-cdef-0123-456789abcdef"), clixml.PSVersion("1.2.3.4"),
        clixml.PSChar("Z"), clixml.PSUri("http://example.com/a?b=c"),
        clixml.PSUInt64(2 ** 64 - 1), clixml.PSSByte(-5), clixml.PSByte(200),
        clixml.PSInt16(-300), clixml.PSUInt16(60000), clixml.PSUInt32(4000000000),
        clixml.PSSingle(0.5),
        [1, "two", [3]], {"k": {"nested": [True]}},
    ]
    ps, out = run(pool, "$input | ForEach-Object { , $_ }", input=values)
    assert ps.state == PSInvocationState.COMPLETED, ps.invocation_error
    assert len(out) == len(values)
    for sent, got in zip(values, out):
        if isinstance(sent, dict):
            assert got == {"k": {"nested": [True]}}
        elif isinstance(sent, list):
            assert got == [1, "two", [3]]
        else:
            assert got == sent, (sent, got)
            if sent is not None:
                # a plain int comes back as int or as the sized type it needed
                assert type(got) is type(sent) or type(sent) is int and isinstance(got, int)
    assert out[7].nanosecond == 700
    type_names = run(pool, "$input | ForEach-Object { if ($null -eq $_) { 'null' } "
                           "else { $_.GetType().FullName } }", input=values[:21])[1]
    assert type_names == [
        "System.String", "System.Int32", "System.Int64", "System.Boolean", "null",
        "System.Double", "System.Decimal", "System.DateTime", "System.TimeSpan",
        "System.Byte[]", "System.Guid", "System.Version", "System.Char", "System.Uri",
        "System.UInt64", "System.SByte", "System.Byte", "System.Int16", "System.UInt16",
        "System.UInt32", "System.Single"]


def test_powershell_object_can_be_invoked_again(open_pool):
    pool = open_pool()
    ps = PowerShell(pool).add_script("$global:n++; $global:n")
    assert ps.invoke(timeout=30) == [1]
    first_pid = ps.pid
    assert ps.invoke(timeout=30) == [2]
    assert ps.pid == first_pid and ps.state == PSInvocationState.COMPLETED


def test_pipeline_without_host_gets_no_host_calls(open_oop_pool):
    pool = open_oop_pool(host=Host(read_lines=["unused"]))
    ps = PowerShell(pool, host=False).add_script("Write-Host 'no host'; 'ok'")
    assert ps.invoke(timeout=30) == ["ok"]
    assert ps.host_calls == [] and pool.host.calls == []
    assert [str(i.message_data) for i in ps.streams.information] == ["no host"]


def test_forwarded_engine_event_arrives_as_user_event(open_pool):
    pool = open_pool()
    ps, out = run(pool, "Register-EngineEvent -SourceIdentifier WinrmdTest -Forward | Out-Null; "
                        "$null = New-Event -SourceIdentifier WinrmdTest -MessageData 'payload' "
                        "-EventArguments 1, 'two'; 'raised'")
    assert out == ["raised"]
    deadline = time.monotonic() + 10
    while not pool.user_events and time.monotonic() < deadline:
        pool.poll(1)
    assert pool.user_events, "no USER_EVENT on the pool lane"
    ev = pool.user_events[0]
    assert ev.source_identifier == "WinrmdTest" and ev.message_data == "payload"
    assert ev.source_args == [1, "two"] and ev.event_identifier >= 1
    assert isinstance(ev.runspace_id, uuid.UUID)


def test_wsman_receive_timeouts_are_polled_through(lab):
    """Receives that end in the w:TimedOut fault are simply issued again."""
    pytest.importorskip("winrm")
    tr = WSManTransport(lab.http_url, lab.user, lab.password,
                        auth="basic", operation_timeout=2)
    pool = RunspacePool(tr).open(timeout=30)
    try:
        ps = PowerShell(pool).add_script("Start-Sleep -Seconds 4; 'slow'")
        ps.begin_invoke()
        polls = 0
        while not ps.poll_invoke(2):
            polls += 1
            assert polls < 10
        assert ps.output == ["slow"] and polls >= 1
        faults = [h for h in tr.history if h[0] == "Receive" and "w:TimedOut" in h[2]]
        assert 1 <= len(faults) <= polls
        assert ps.command_state == "Done"
    finally:
        pool.close()
    actions = [h[0] for h in tr.history]
    assert actions[0] == "Create" and actions[-1] == "Delete"
    assert "Signal" in actions   # the finished pipeline was terminated


def test_wsman_host_response_sent_shell_level(lab):
    """pypsrp's form: the pipeline's host response goes on a shell-level ``pr``
    Send (no CommandId); the server routes it by the message's PID."""
    pytest.importorskip("winrm")
    tr = WSManTransport(lab.http_url, lab.user, lab.password,
                        auth="basic", operation_timeout=5)
    tr.pr_command_id = False
    pool = RunspacePool(tr, host=Host(read_lines=["from pr"])).open(timeout=30)
    try:
        ps, out = run(pool, "Read-Host")
        assert out == ["from pr"]
        sends = [ET.fromstring(x.encode("utf-8")) for a, x, _ in tr.history if a == "Send"]
        pr = [st for env in sends for st in env.iter("{%s}Stream" % psrp.wsman.NS["rsp"])
              if st.get("Name") == "pr"]
        assert len(pr) == 1 and pr[0].get("CommandId") is None
    finally:
        pool.close()
