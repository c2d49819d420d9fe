"""PowerShell session configurations: the built-in endpoints, custom
configurations from sessions.d with their options, session configuration
files, the client's culture, and what happens without pwsh."""
import os
import pwd
import subprocess

import pytest

from conftest import binary, have_pwsh
from psrp import PowerShell, RunspacePool, WSManTransport
from psrp.wsman import WSManFault

pytestmark = pytest.mark.skipif(not have_pwsh(), reason="needs pwsh")


def transport(lab, **kw):
    kw.setdefault("operation_timeout", 10)
    return WSManTransport(lab.http_url, lab.user, lab.password, auth="basic",
                          **kw)


def invoke(pool, script=None, command=None):
    ps = PowerShell(pool)
    if command is not None:
        ps.add_command(command)
    else:
        ps.add_script(script)
    out = ps.invoke(timeout=60)
    return ps, out


def open_pool(lab, **kw):
    return RunspacePool(transport(lab, **kw)).open(timeout=60)


def test_builtin_endpoints_and_case_insensitive_uri(lab):
    for name in ("Microsoft.PowerShell", "PowerShell.7",
                 "microsoft.powershell"):
        pool = open_pool(lab, configuration_name=name)
        try:
            _, out = invoke(pool, "$PSVersionTable.PSEdition")
            assert out == ["Core"]
        finally:
            pool.close()


def test_unknown_configuration_faults(lab):
    with pytest.raises(WSManFault) as e:
        open_pool(lab, configuration_name="NoSuch.Endpoint")
    assert e.value.wsman_code == 2150858811
    assert e.value.subcode_local == "DestinationUnreachable"


def test_runspace_starts_in_the_home_directory(lab):
    """Without a WorkingDirectory, the runspace starts in the account's
    home directory (Windows: the user's profile directory), not in the
    daemon's or the host's working directory."""
    pool = open_pool(lab)
    try:
        _, out = invoke(pool, "(Get-Location).Path; [Environment]::"
                        "CurrentDirectory")
        home = pwd.getpwuid(os.getuid()).pw_dir
        assert out == [home, home]
    finally:
        pool.close()


def test_quotas_as_the_psrp_client_reads_them(lab_factory):
    """The configuration's MaxShellsPerUser and MaxConcurrentCommandsPerShell
    on PowerShell shells: a second pool, and a second pipeline running at
    once, are refused with Windows' quota faults (w:QuotaLimit,
    2150859173 and the commands-per-shell message)."""
    lab = lab_factory(config_lines=[
        "[SessionConfiguration Microsoft.PowerShell]",
        "MaxShellsPerUser = 1", "MaxConcurrentCommandsPerShell = 1"])
    pool = open_pool(lab)
    try:
        with pytest.raises(WSManFault) as e:
            open_pool(lab)
        f = e.value
        assert (f.http_status, f.subcode_local, f.wsman_code) == \
            (500, "QuotaLimit", 2150859173), f
        first = PowerShell(pool).add_script("Start-Sleep 20; 1")
        first.begin_invoke()
        with pytest.raises(WSManFault) as e:
            PowerShell(pool).add_script("2").invoke(timeout=30)
        assert "MaxConcurrentCommandsPerShell" in e.value.message, e.value
        first.stop()
        assert PowerShell(pool).add_script("3").invoke(timeout=30) == [3]
    finally:
        pool.close()


def test_custom_configuration_options(lab_factory, tmp_path):
    mods = tmp_path / "modules" / "LabTools"
    mods.mkdir(parents=True)
    (mods / "LabTools.psm1").write_text(
        "function Get-LabAnswer { 42 }\nExport-ModuleMember Get-LabAnswer\n")
    startup = tmp_path / "startup.ps1"
    startup.write_text("$global:StartedBy = 'startup script'\n")
    work = tmp_path / "work dir"
    work.mkdir()
    lab = lab_factory(config_lines=[
        "[SessionConfiguration Custom]",
        "Plugin = powershell",
        f"StartupScript = {startup}",
        "ModulesToImport = LabTools",
        f"WorkingDirectory = {work}",
        f"Environment = LAB_FLAVOUR=vanilla;PSModulePath={tmp_path}/modules",
    ])
    pool = open_pool(lab, configuration_name="Custom")
    try:
        _, out = invoke(pool, "$global:StartedBy; Get-LabAnswer; "
                        "(Get-Location).Path; $env:LAB_FLAVOUR")
        assert out == ["startup script", 42, str(work), "vanilla"]
    finally:
        pool.close()


def test_session_configuration_file(lab_factory, tmp_path):
    pssc = tmp_path / "restricted.pssc"
    pssc.write_text("@{\nSchemaVersion = '2.0.0.0'\n"
                    "SessionType = 'RestrictedRemoteServer'\n"
                    "VisibleCmdlets = 'Get-Date'\n"
                    "LanguageMode = 'NoLanguage'\n}\n")
    lab = lab_factory(config_lines=[
        "[SessionConfiguration Restricted]", "Plugin = powershell",
        f"ConfigurationFile = {pssc}"])
    pool = open_pool(lab, configuration_name="Restricted")
    try:
        ps, out = invoke(pool, command="Get-Date")
        assert len(out) == 1 and not ps.had_errors
        ps, out = invoke(pool, script="1 + 1")
        assert out == [] and ps.invocation_error is not None
        assert "no-language mode" in str(ps.invocation_error)
        ps, out = invoke(pool, command="Get-Process")
        assert out == [] and "not recognized" in str(ps.invocation_error)
    finally:
        pool.close()


def test_role_definitions_refused_clearly(lab_factory, tmp_path):
    pssc = tmp_path / "roles.pssc"
    pssc.write_text("@{\nSchemaVersion = '2.0.0.0'\n"
                    "SessionType = 'RestrictedRemoteServer'\n"
                    "RoleDefinitions = @{ 'lab' = @{ VisibleCmdlets = "
                    "'Get-Date' } }\n}\n")
    lab = lab_factory(config_lines=[
        "[SessionConfiguration Roles]", "Plugin = powershell",
        f"ConfigurationFile = {pssc}"])
    with pytest.raises(WSManFault) as e:
        open_pool(lab, configuration_name="Roles")
    assert "RoleDefinitions" in e.value.message


def test_client_culture(lab):
    pool = open_pool(lab, locale="fr-FR", data_locale="de-DE")
    try:
        _, out = invoke(pool, "(Get-Culture).Name; 1234.5.ToString('N1')")
        assert out[0] == "de-DE"
        assert out[1] == "1.234,5"
    finally:
        pool.close()


def test_missing_pwsh_names_the_program(lab_factory):
    lab = lab_factory(args=["-o", "SessionConfiguration Microsoft.PowerShell"
                            ".PwshPath=/nonexistent/bin/pwsh"])
    with pytest.raises(WSManFault) as e:
        open_pool(lab)
    assert "pwsh" in e.value.message
    assert "/nonexistent/bin/pwsh" in e.value.message
    # winrmd -t warns about it too.
    r = subprocess.run([binary("winrmd"), "-t", "-f", lab.config, "-o",
                        "SessionConfiguration Microsoft.PowerShell.PwshPath="
                        "/nonexistent/bin/pwsh"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Microsoft.PowerShell: pwsh not found" in r.stderr


def test_winrs_run_ps_uses_pwsh(lab):
    r = lab.session().run_ps("[Console]::Out.Write('from pwsh'); exit 3")
    assert r.std_out == b"from pwsh" and r.status_code == 3
