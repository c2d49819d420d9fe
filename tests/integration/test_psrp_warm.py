"""Warm start: hosts (and their pwsh) started ahead of demand, per user,
configuration and locale, and never handed to anyone else."""
import subprocess
import time

import pytest

from conftest import have_pwsh
from psrp import PowerShell, RunspacePool, WSManTransport

pytestmark = pytest.mark.skipif(not have_pwsh(), reason="needs pwsh")


def host_pids(daemon_pid):
    r = subprocess.run(["pgrep", "-P", str(daemon_pid), "-f", "winrmd-host"],
                       capture_output=True, text=True)
    return {int(p) for p in r.stdout.split()}


def open_pool(lab, user, password, **kw):
    t = WSManTransport(lab.http_url, user, password, auth="basic",
                       operation_timeout=10, **kw)
    pool = RunspacePool(t).open(timeout=60)
    return pool, int(t.shell_info["ProcessId"])


def wait_for(pred, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    return pred()


def test_warm_host_per_user(lab_factory):
    lab = lab_factory(args=["-o", "SessionConfiguration Microsoft.PowerShell"
                            ".WarmPoolSize=1"])
    r = lab.winrmctl("user", "add", "other", "--password-stdin",
                     input="0ther-Passw0rd\n")
    assert r.returncode == 0, r.stderr
    pid = lab.info["pid"]

    pool_a, host_a = open_pool(lab, lab.user, lab.password)
    # The pool's host plus one warm host for the same user.
    warm = wait_for(lambda: host_pids(pid) - {host_a})
    assert len(warm) == 1, warm
    (warm_pid,) = warm

    # Another user never gets that host.
    pool_b, host_b = open_pool(lab, "other", "0ther-Passw0rd")
    assert host_b != warm_pid
    # Nor does a different locale.
    pool_c, host_c = open_pool(lab, lab.user, lab.password,
                               data_locale="de-DE")
    assert host_c != warm_pid
    # The same user and locale does, and it works.
    pool_d, host_d = open_pool(lab, lab.user, lab.password)
    assert host_d == warm_pid
    ps = PowerShell(pool_d).add_script("(Get-Culture).Name; 6 * 7")
    assert ps.invoke(timeout=60) == ["en-US", 42]
    for pool in (pool_a, pool_b, pool_c, pool_d):
        pool.close()


def test_warm_hosts_expire(lab_factory):
    lab = lab_factory(args=[
        "-o", "SessionConfiguration Microsoft.PowerShell.WarmPoolSize=1",
        "-o", "SessionConfiguration Microsoft.PowerShell.WarmPoolTtlSeconds=2"])
    pool, host = open_pool(lab, lab.user, lab.password)
    pid = lab.info["pid"]
    assert wait_for(lambda: host_pids(pid) - {host}), "no warm host"
    pool.close()
    assert wait_for(lambda: not host_pids(pid), timeout=30), \
        "the warm host outlived its time to live"
