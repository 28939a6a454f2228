"""The node's network on this machine: its address, the traffic guard, and removing every rule the node made.

Pod, Service and node addresses are private ranges that exist only here. A packet for one of them that left
through an uplink (say, to a ClusterIP before kube-proxy has written its rules) would go to a network where nothing
of ours is, and that is not allowed. So before any component starts, `install()` puts a guard in mangle POSTROUTING
(it sees the final route; a filter OUTPUT rule misfires on DNAT'd packets): a packet for a cluster range may leave
only through `lo` or the pods' bridge, and is dropped on any other interface, whichever is the uplink. Pods reach
this machine's own addresses and each other, and nothing beyond (filter FORWARD): the node's pods have no reason
to, and the same rule holds for them.

`remove()` takes out the guard last, after every other rule the node's components wrote (kubelet's and kube-proxy's
KUBE-* chains, the CNI plugins' CNI-* chains), the bridge and the address, and turns IP forwarding back off if the
node turned it on. It is idempotent, so it is also the sweep after a run that was killed. One node per network
namespace: the rules, the address and the forwarding switch are this namespace's.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
from pathlib import Path

from .controlplane import SERVICE_CIDR

log = logging.getLogger("mlfunctions_harness.node_network")

NODE_IP = "10.200.0.1"           # on `lo`: kubelet refuses a loopback node IP, and the kernel has no dummy links
NODE_RANGE = "10.200.0.0/24"     # the nodes' range (one node here); guarded like the others
CLUSTER_CIDR = "10.244.0.0/16"   # pods (kube-proxy's --cluster-cidr)
POD_CIDR = "10.244.0.0/24"       # this node's share, the bridge's subnet
DNS_SERVICE_IP = "10.96.0.10"    # the kube-dns Service, in SERVICE_CIDR (kubelet's clusterDNS)
BRIDGE = "mlf0"                  # the pods' bridge, made by the CNI bridge plugin
CLUSTER_RANGES = (SERVICE_CIDR, CLUSTER_CIDR, NODE_RANGE)

GUARD_CHAIN = "MLF-NODE-GUARD"
FORWARD_CHAIN = "MLF-NODE-FORWARD"
# Chains of ours and of the node's components; docker's (DOCKER*) and anything else is left alone.
OWN_CHAIN_PREFIXES = ("MLF-NODE-", "KUBE-", "CNI-")
TABLES = ("filter", "nat", "mangle", "raw")
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")  # this network namespace's


class NetworkError(RuntimeError):
    """The node's network could not be set up; the message says which command failed and why."""


def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NetworkError(f"{shlex.join(command)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def install(state: Path) -> None:
    """Guard first, then pod forwarding, then the node address. Call remove(state) on any failure.

    `state` records what was here before (IP forwarding, which the CNI bridge plugin turns on), for remove().
    """
    for binary in ("iptables", "ip"):
        if _run("sh", "-c", f"command -v {binary}", check=False).returncode != 0:
            raise NetworkError(f"{binary} is missing: run hack/node-packages.sh")
    if not state.exists():  # a restart after a killed run: what was here before is what that run found
        state.write_text(json.dumps({"ip_forward": IP_FORWARD.read_text().strip()}))
    _chain("mangle", GUARD_CHAIN, "POSTROUTING", [
        ["-o", "lo", "-j", "RETURN"],
        ["-o", BRIDGE, "-j", "RETURN"],
        *(["-d", cidr, "-j", "DROP"] for cidr in CLUSTER_RANGES),
    ])
    _chain("filter", FORWARD_CHAIN, "FORWARD", [
        ["-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"],  # pod to pod, also through a ClusterIP
        ["-i", BRIDGE, "-j", "DROP"],                  # pods reach this machine, never beyond it
    ])
    if not address_present():
        _run("ip", "address", "add", f"{NODE_IP}/32", "dev", "lo")
    log.info("node network: guard on %s, address %s on lo", ", ".join(CLUSTER_RANGES), NODE_IP)


def _chain(table: str, chain: str, hook: str, rules: list[list[str]]) -> None:
    _run("iptables", "-w", "-t", table, "-N", chain)
    for rule in rules:
        _run("iptables", "-w", "-t", table, "-A", chain, *rule)
    _run("iptables", "-w", "-t", table, "-I", hook, "1", "-j", chain)


def address_present() -> bool:
    shown = _run("ip", "-o", "address", "show", "dev", "lo").stdout
    return f" {NODE_IP}/32 " in shown


def bridge_present() -> bool:
    # Asked of netlink, not /sys/class/net: sysfs shows the namespace of whoever mounted it, not ours.
    return _run("ip", "link", "show", BRIDGE, check=False).returncode == 0


def remove(state: Path) -> None:
    """Remove the node's rules, bridge and address, the guard last, and turn IP forwarding back off if it was off
    before install(state). Safe to call when none of it exists."""
    try:
        forwarding_before = json.loads(state.read_text())["ip_forward"]
    except (OSError, ValueError, KeyError):
        forwarding_before = None
    if address_present():
        _run("ip", "address", "del", f"{NODE_IP}/32", "dev", "lo")
    if bridge_present():
        _run("ip", "link", "del", BRIDGE)
    for family in ("iptables", "ip6tables"):
        for table in TABLES:
            _remove_own_chains(family, table, keep=GUARD_CHAIN)
    _remove_own_chains("iptables", "mangle")
    if forwarding_before == "0":
        IP_FORWARD.write_text("0")
    state.unlink(missing_ok=True)


def proxied_endpoints() -> set[str]:
    """The `address:port` endpoints kube-proxy has written DNAT rules for: a Service answers through its ClusterIP
    only once its endpoints are among them."""
    _, rules = _saved("iptables", "nat")
    return {r[r.index("--to-destination") + 1] for r in rules
            if r[1].startswith("KUBE-SEP-") and "--to-destination" in r}


def own_rules() -> list[str]:
    """Every iptables/ip6tables line that belongs to the node (for checks that nothing is left)."""
    found = []
    for family in ("iptables", "ip6tables"):
        for table in TABLES:
            chains, rules = _saved(family, table)
            found += [f"{family} -t {table} {' '.join(r)}" for r in rules if _is_own(r, chains)]
            found += [f"{family} -t {table} chain {c}" for c in chains if c.startswith(OWN_CHAIN_PREFIXES)]
    return found


def _saved(family: str, table: str) -> tuple[list[str], list[list[str]]]:
    """The chains and the rules (as `-A CHAIN ...` argument lists) of one table; none if the table is absent."""
    result = _run(f"{family}-save", "-t", table, check=False)
    if result.returncode != 0:
        return [], []
    chains, rules = [], []
    for line in result.stdout.splitlines():
        if line.startswith(":"):
            chains.append(line[1:].split()[0])
        elif line.startswith("-A "):
            rules.append(shlex.split(line))
    return chains, rules


def _is_own(rule: list[str], chains: list[str]) -> bool:
    targets = [rule[i + 1] for i, word in enumerate(rule[:-1]) if word in ("-j", "-g")]
    return any(name.startswith(OWN_CHAIN_PREFIXES) for name in [rule[1], *targets])


def _remove_own_chains(family: str, table: str, keep: str | None = None) -> None:
    chains, rules = _saved(family, table)
    own = [c for c in chains if c.startswith(OWN_CHAIN_PREFIXES) and c != keep]
    for rule in rules:
        chain, spec = rule[1], rule[2:]
        targets = {spec[i + 1] for i, word in enumerate(spec[:-1]) if word in ("-j", "-g")}
        # Rules inside our chains go with the chain; the hooks into them from other chains are deleted one by one.
        if chain not in own and targets & set(own):
            _run(family, "-w", "-t", table, "-D", chain, *spec, check=False)
    for chain in own:
        _run(family, "-w", "-t", table, "-F", chain, check=False)
    for chain in own:
        _run(family, "-w", "-t", table, "-X", chain, check=False)
    if own:
        log.debug("removed %s chains from %s %s", len(own), family, table)
