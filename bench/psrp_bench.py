#!/usr/bin/python3
"""PowerShell remoting benchmarks for bench/run.sh (docs/benchmarks.md).

Two subcommands, each printing one line of key=value results on stdout
(progress and errors go to stderr):

open        S5: runspace-pool open latency.  Each round takes one sample
            of every kind asked for, in a rotating order:
              cold    Create with creationXml on a configuration without
                      warm hosts, until RUNSPACEPOOL_STATE Opened
              warm    the same on a configuration with WarmPoolSize=1,
                      once its warm host has finished starting
              direct  `pwsh -NoLogo -NoProfile -s` started here and the
                      same handshake over its stdin and stdout
              direct-wd  the same with `-wd $HOME` added, as the
                      powershell plugin starts pwsh by default
              spare, spare-wd  like direct and direct-wd, but pwsh is
                      started first and left to settle, and only the
                      handshake is timed: what a warm host can save,
                      without WS-Man
            Before every sample the machine is left to settle: no host of
            a closed shell still running, the warm host idle.

concurrent  S6: N clients at once, each opening a pool, running one
            pipeline and closing the pool.  Against the lab's
            Microsoft.PowerShell configuration, or (--direct) against N
            pwsh processes started here.  Reports wall time, per-client
            latency, failures and peak resident memory.

The PSRP client is the project's own, in tests/integration/psrp.  Every
wait is bounded.
"""

import argparse
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from psrp import (OutOfProcTransport, PowerShell, RunspacePool,  # noqa: E402
                  WSManTransport, find_pwsh)
import winrm.transport  # noqa: E402,F401  (imported here, not in a sample)

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
HOME = os.path.expanduser("~")
HZ = os.sysconf("SC_CLK_TCK")


def log(*a):
    print(time.strftime("%H:%M:%S"), "psrp_bench:", *a, file=sys.stderr,
          flush=True)


# ---- /proc -----------------------------------------------------------------

def proc_table():
    """{pid: (ppid, comm, ticks, rss_kb)} for every process."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                s = f.read().decode("ascii", "replace")
        except OSError:
            continue
        i = s.rfind(")")
        comm = s[s.find("(") + 1:i]
        f = s[i + 2:].split()
        out[int(name)] = (int(f[1]), comm, int(f[11]) + int(f[12]),
                          int(f[21]) * PAGE_KB)
    return out


def descendants(table, root):
    kids = {}
    for pid, (ppid, _, _, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], list(kids.get(root, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def is_pwsh(comm):
    # The dotnet global tool's pwsh is a launcher that runs dotnet.
    return comm in ("pwsh", "dotnet") or comm.startswith(".NET")


class Monitor(threading.Thread):
    """Peak RSS of a process and of its descendants, every `interval` s."""

    def __init__(self, root, interval=0.2):
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.stop_ev = threading.Event()
        self.root_kb = self.hosts_kb = self.pwsh_kb = self.tree_kb = 0
        self.root_start_kb = None
        self.max_hosts = 0

    def sample(self):
        t = proc_table()
        if self.root in t:
            self.root_kb = max(self.root_kb, t[self.root][3])
            if self.root_start_kb is None:
                self.root_start_kb = t[self.root][3]
        hosts = pw = tree = n = 0
        for p in descendants(t, self.root):
            comm, rss = t[p][1], t[p][3]
            tree += rss
            if comm == "winrmd-host":
                hosts += rss
                n += 1
            elif is_pwsh(comm):
                pw += rss
        self.hosts_kb = max(self.hosts_kb, hosts)
        self.pwsh_kb = max(self.pwsh_kb, pw)
        self.tree_kb = max(self.tree_kb, tree)
        self.max_hosts = max(self.max_hosts, n)

    def run(self):
        while not self.stop_ev.wait(self.interval):
            self.sample()

    def finish(self):
        self.stop_ev.set()
        self.join(5)
        self.sample()


def settle(daemon_pid, want_warm, timeout=30.0, quiet_ms=500):
    """Wait until the daemon has no host but (with want_warm) one warm
    one, and its descendants used at most one tick in quiet_ms.  Returns
    the seconds waited, or None on time-out."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        t = proc_table()
        tree = descendants(t, daemon_pid)
        hosts = [p for p in tree if t[p][1] == "winrmd-host"]
        pw = [p for p in tree if is_pwsh(t[p][1])]
        ticks = sum(t[p][2] for p in tree)
        ok = (len(hosts) == 1 and len(pw) >= 1) if want_warm else not hosts
        if ok and last is not None and ticks - last[1] <= 1 and \
                last[0] == tuple(sorted(tree)):
            return time.monotonic() - t0
        last = (tuple(sorted(tree)), ticks) if ok else None
        time.sleep(quiet_ms / 1000.0)
    return None


def settle_proc(pid, timeout=30.0, quiet_ms=500, quiet_n=2):
    """Wait until pid and its descendants used at most one tick in each
    of quiet_n periods of quiet_ms (a pwsh that has finished starting)."""
    t0 = time.monotonic()
    last = None
    quiet = 0
    while time.monotonic() - t0 < timeout:
        t = proc_table()
        tree = [pid] + descendants(t, pid)
        ticks = sum(t[p][2] for p in tree if p in t)
        quiet = quiet + 1 if last is not None and ticks - last <= 1 else 0
        if quiet >= quiet_n:
            return True
        last = ticks
        time.sleep(quiet_ms / 1000.0)
    return False


def settle_self(timeout=10.0, quiet_ms=500):
    """For the direct samples: no pwsh child of ours left running."""
    me = os.getpid()
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        t = proc_table()
        if not any(is_pwsh(t[p][1]) for p in descendants(t, me)):
            time.sleep(quiet_ms / 1000.0)
            return
        time.sleep(0.1)


# ---- pools -------------------------------------------------------------------

def wsman_pool(lab, config="Microsoft.PowerShell"):
    t = WSManTransport(lab["http_url"], lab["user"], lab["password"],
                       auth="basic", configuration_name=config,
                       operation_timeout=20)
    return RunspacePool(t)


def direct_pool(pwsh, wd=None, cache=None):
    """A pool on a pwsh of our own.  pwsh keeps a JIT profile of its
    start-up in $XDG_CACHE_HOME/powershell and rewrites it as it exits:
    with `cache`, each kind of sample keeps its own (see --cache-dir)."""
    args = ("-NoLogo", "-NoProfile", "-s")
    if wd:
        args += ("-wd", wd)
    env = None
    if cache:
        os.makedirs(cache, exist_ok=True)
        env = dict(os.environ, XDG_CACHE_HOME=cache)
    return RunspacePool(OutOfProcTransport(pwsh, arguments=args, env=env))


def cache_for(a, kind):
    return os.path.join(a.cache_dir, kind) if a.cache_dir else None


def close_pool(pool):
    try:
        pool.close(timeout=30)
    finally:
        tr = pool.transport
        if isinstance(tr, OutOfProcTransport) and tr.process.poll() is None:
            tr.close(timeout=10)


def pct(values, q):
    v = sorted(values)
    if not v:
        return 0.0
    # nearest rank
    k = max(0, min(len(v) - 1, int(round(q / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


# ---- open (S5) ---------------------------------------------------------------

def cmd_open(a):
    lab = json.load(open(a.lab)) if a.lab else None
    kinds = a.kinds.split(",")
    pwsh = a.pwsh or find_pwsh()
    if any(k.startswith(("direct", "spare")) for k in kinds) and not pwsh:
        sys.exit("psrp_bench: pwsh not found")
    if lab is None and ("cold" in kinds or "warm" in kinds):
        sys.exit("psrp_bench: cold and warm need --lab")
    samples = {k: [] for k in kinds}
    failures = {k: 0 for k in kinds}
    unsettled = 0
    have_warm = False	# a warm host is kept once warm was opened once

    # Round 0 is not timed: it leaves a start-up profile for every kind and,
    # for warm, starts the first warm host (one is started after a user's
    # shell on the configuration).
    for r in range(-1, a.n):
        order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
        for kind in order:
            if kind.startswith(("direct", "spare")):
                settle_self()
            if lab is not None and settle(lab["pid"], have_warm) is None:
                log("the daemon's hosts did not settle in time")
                unsettled += 1
                if unsettled >= 3:
                    sys.exit("psrp_bench: the daemon's hosts never settle")
            pool = None
            if kind.startswith("spare"):
                pool = direct_pool(pwsh, HOME if kind == "spare-wd" else None,
                                   cache_for(a, kind))
                if not settle_proc(pool.transport.process.pid):
                    log("the spare pwsh did not settle in time")
            t0 = time.monotonic()
            try:
                if kind.startswith("direct"):
                    pool = direct_pool(pwsh, HOME if kind == "direct-wd"
                                       else None, cache_for(a, kind))
                elif kind in ("cold", "warm"):
                    pool = wsman_pool(lab, a.warm_config if kind == "warm"
                                      else "Microsoft.PowerShell")
                pool.open(timeout=60)
                have_warm = have_warm or kind == "warm"
                if r >= 0:
                    samples[kind].append((time.monotonic() - t0) * 1e3)
            except Exception as e:  # a failed sample is counted, not fatal
                failures[kind] += r >= 0
                log("%s open failed: %s" % (kind, e))
            finally:
                if pool is not None:
                    try:
                        close_pool(pool)
                    except Exception as e:
                        log("%s close failed: %s" % (kind, e))
        if r < 0:
            continue
        log("round %d: %s" % (r + 1, " ".join(
            "%s=%.0fms" % (k, samples[k][-1]) for k in kinds
            if samples[k])))

    out = []
    for kind in kinds:
        v = samples[kind]
        vals = {"n": len(v), "p50_ms": pct(v, 50), "p90_ms": pct(v, 90),
                "min_ms": min(v) if v else 0, "max_ms": max(v) if v else 0,
                "failures": failures[kind]}
        k = kind.replace("-", "_")
        out += ["%s_%s=%s" % (k, n, ("%.1f" % x) if isinstance(x, float)
                              else x) for n, x in vals.items()]
        out.append("%s_all=%s" % (k, ",".join("%.1f" % x for x in v) or "-"))
    print(" ".join(out))
    return 0 if not any(failures.values()) else 3


# ---- concurrent (S6) -----------------------------------------------------------

def one_client(make, script, expect, result, barrier):
    t0 = None
    pool = None
    try:
        barrier.wait(60)
        t0 = time.monotonic()
        pool = make()
        pool.open(timeout=a_timeout)
        t_open = time.monotonic()
        out = PowerShell(pool).add_script(script).invoke(timeout=a_timeout)
        if len(out) != expect:
            raise RuntimeError("%d objects, expected %d" % (len(out), expect))
        close_pool(pool)
        pool = None
        t1 = time.monotonic()
        result.update(ok=True, total=t1 - t0, open=t_open - t0)
    except Exception as e:
        result.update(ok=False, error="%s: %s" % (type(e).__name__, e))
        if pool is not None:
            try:
                close_pool(pool)
            except Exception:
                pass


a_timeout = 300.0


def cmd_concurrent(a):
    global a_timeout
    a_timeout = a.timeout
    pwsh = a.pwsh or find_pwsh()
    if a.direct:
        if not pwsh:
            sys.exit("psrp_bench: pwsh not found")
        root = os.getpid()
        wd = HOME if a.wd else None
        cache = cache_for(a, "direct-wd" if a.wd else "direct")

        def make():
            return direct_pool(pwsh, wd, cache)
    else:
        lab = json.load(open(a.lab))
        root = lab["pid"]

        def make():
            return wsman_pool(lab)
    expect = a.expect
    results = [dict() for _ in range(a.clients)]
    barrier = threading.Barrier(a.clients + 1)
    threads = [threading.Thread(target=one_client, daemon=True,
                                args=(make, a.script, expect, results[i],
                                      barrier))
               for i in range(a.clients)]
    mon = Monitor(root)
    mon.sample()
    for t in threads:
        t.start()
    ticks0 = proc_table().get(root, (0, "", 0, 0))[2]
    mon.start()
    barrier.wait(60)
    t0 = time.monotonic()
    deadline = t0 + a.timeout + 60
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    wall = time.monotonic() - t0
    mon.finish()
    ok = [r for r in results if r.get("ok")]
    fails = [r for r in results if not r.get("ok")]
    for r in fails[:5]:
        log("client failed: %s" % r.get("error", "did not finish"))
    tot = [r["total"] * 1e3 for r in ok]
    opn = [r["open"] * 1e3 for r in ok]
    # CPU of the daemon itself (not its children), for the direct run 0.
    ticks1 = proc_table().get(root, (0, "", 0, 0))[2]
    print("clients=%d wall_s=%.2f p50_ms=%.0f p99_ms=%.0f max_ms=%.0f "
          "open_p50_ms=%.0f failures=%d root_rss_start_mb=%.1f "
          "root_rss_mb=%.1f hosts_rss_mb=%.1f "
          "pwsh_rss_mb=%.1f tree_rss_mb=%.1f max_hosts=%d root_cpu_s=%.2f"
          % (a.clients, wall, pct(tot, 50), pct(tot, 99),
             max(tot) if tot else 0, pct(opn, 50), len(fails),
             (mon.root_start_kb or 0) / 1024.0, mon.root_kb / 1024.0, mon.hosts_kb / 1024.0,
             mon.pwsh_kb / 1024.0, mon.tree_kb / 1024.0, mon.max_hosts,
             0 if a.direct else (ticks1 - ticks0) / HZ))
    return 0 if not fails else 3


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("open", help="S5: pool open latency")
    o.add_argument("--lab", help="the lab's lab.json")
    o.add_argument("--kinds", default="cold,warm,direct")
    o.add_argument("--warm-config", default="BenchWarm",
                   help="configuration with WarmPoolSize=1")
    o.add_argument("-n", type=int, default=15, help="rounds")
    o.add_argument("--pwsh")
    o.add_argument("--cache-dir", help="XDG_CACHE_HOME of the pwsh started "
                   "here is DIR/KIND (start winrmd with one of its own)")
    c = sub.add_parser("concurrent", help="S6: concurrent clients")
    c.add_argument("--lab", help="the lab's lab.json")
    c.add_argument("--direct", action="store_true",
                   help="pwsh processes started here, no WS-Man")
    c.add_argument("--wd", action="store_true",
                   help="with --direct: add `-wd $HOME` as the plugin does")
    c.add_argument("--cache-dir", help="as for open")
    c.add_argument("--clients", type=int, default=32)
    c.add_argument("--script", default="1..100")
    c.add_argument("--expect", type=int, default=100,
                   help="objects the script must return")
    c.add_argument("--timeout", type=float, default=300)
    c.add_argument("--pwsh")
    a = p.parse_args()
    if a.cmd == "concurrent" and not a.direct and not a.lab:
        p.error("concurrent needs --lab or --direct")
    return cmd_open(a) if a.cmd == "open" else cmd_concurrent(a)


if __name__ == "__main__":
    sys.exit(main())
