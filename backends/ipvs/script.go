package ipvs

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	netutils "k8s.io/utils/net"

	"github.com/svc2rules/svc2rules/compiler"
)

// heredocEnd ends every here-document of the script. No payload line can be
// equal to it (payload lines start with "-", ":", "*", "create", "add",
// "COMMIT" or a digit/hex address).
const heredocEnd = "SVC2RULES_EOF"

// script renders the POSIX sh script that applies the four parts for one
// family. Each payload sits in a here-document inside a function
// (ipset_payload, ipvsadm_payload, addresses_payload, iptables_payload) and is
// byte for byte the text --ipvs-section prints (iptables: the restore view,
// which is what kube-proxy feeds to iptables-restore --noflush).
func (st *state) script(plan *compiler.Plan, s Settings) string {
	v6 := plan.Family == v1.IPv6Protocol
	fam, ipt, famFlag := "ipv4", "iptables", "-4"
	if v6 {
		fam, ipt, famFlag = "ipv6", "ip6tables", "-6"
	}
	// The four payloads are independent readings of st: the largest, the
	// ipvsadm table, is written by a second goroutine meanwhile.
	ipvsadm := make(chan string, 1)
	go func() { ipvsadm <- st.ipvsadmText() }()
	ipsetText, addresses, iptables := st.ipsetText(), st.addressesText(), st.restoreText()
	ipvsadmText := <-ipvsadm

	var b strings.Builder
	b.Grow(len(ipsetText) + len(ipvsadmText) + len(addresses) + len(iptables) + 8192 + 96*len(st.servers))
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	w("#!/bin/sh\n")
	w("# kube-proxy v1.37.2 --proxy-mode=ipvs state for one node and IP family, compiled offline by svc2rules.\n")
	w("# family: %s   node: %s   node IP: %s\n", fam, orNone(plan.Node.Name), orNone(plan.Node.IP))
	w("# node addresses (not in the manifests; NodePort virtual servers and the \"already local\" check):\n")
	w("#   %s\n", orNone(strings.Join(nonLoopback(plan.Node.Addresses, plan.Family), " ")))
	w("# NodePort virtual server addresses: %s\n", orNone(strings.Join(st.nodeIPs, " ")))
	w("# scheduler: %s\n", s.scheduler())
	w("#\n")
	w("# Parts, each applied by its own step below: 1 sysctls, 2 the dummy device kube-ipvs0, 3 the %d KUBE-* ipsets,\n", numSets)
	w("# 4 the IPVS virtual and real servers, 5 the kube-ipvs0 addresses, 6 the iptables rules and jumps. Sets are\n")
	w("# filled before any iptables rule uses them, as kube-proxy does; the final state is the one kube-proxy leaves\n")
	w("# after a full sync. \"svc2rules compile -b ipvs --ipvs-section ipvsadm|ipset|addresses|iptables\" prints one\n")
	w("# payload alone. Run as root; requires ip, ipset, ipvsadm, %s, sysctl.\n", ipt)
	w("set -eu\n\n")

	payload := func(name, text string) {
		// w("%s_payload() {\n\tcat <<'%s'\n%s%s\n}\n\n", ...) without fmt
		// copying the text through its buffer.
		b.WriteString(name)
		b.WriteString("_payload() {\n\tcat <<'")
		b.WriteString(heredocEnd)
		b.WriteString("'\n")
		b.WriteString(text)
		b.WriteString(heredocEnd)
		b.WriteString("\n}\n\n")
	}
	payload("ipset", ipsetText)
	payload("ipvsadm", ipvsadmText)
	payload("addresses", addresses)
	payload("iptables", iptables)

	w("# 1. sysctls (kube-proxy's NewProxier; the ipvs keys are global, the same for both families).\n")
	w("sysctl -qw net.ipv4.vs.conntrack=1\n")
	w("case $(uname -r) in 4.[1-9]*|5.[0-8].*|5.[0-8]-*) sysctl -qw net.ipv4.vs.conn_reuse_mode=0 ;; esac # only 4.1 <= kernel < 5.9\n")
	w("sysctl -qw net.ipv4.vs.expire_nodest_conn=1\n")
	w("sysctl -qw net.ipv4.vs.expire_quiescent_template=1\n")
	w("sysctl -qw net.ipv4.ip_forward=1\n")
	if s.StrictARP {
		w("sysctl -qw net.ipv4.conf.all.arp_ignore=1 # ipvs.strictARP\n")
		w("sysctl -qw net.ipv4.conf.all.arp_announce=2\n")
	}
	w("\n")

	w("# 2. The dummy device the service addresses are bound to (kube-proxy never sets it up).\n")
	w("ip link show kube-ipvs0 >/dev/null 2>&1 || ip link add kube-ipvs0 type dummy\n\n")

	w("# 3. ipsets: create every set (no-op if it exists), drop stale entries, add the wanted ones.\n")
	w("ipset_payload | sed -n 's/^create \\([^ ]*\\) .*/\\1/p' | while read -r set; do\n")
	w("\tipset flush \"$set\" 2>/dev/null || :\n")
	w("done\n")
	w("ipset_payload | ipset restore -exist\n\n")

	w("# 4. IPVS (one table for both families). kube-proxy deletes every %s virtual server it does not want\n", fam)
	w("#    (except inside --ipvs-exclude-cidrs) and updates the wanted ones in place; this step deletes every %s\n", fam)
	w("#    virtual server outside the exclude CIDRs, then restores the table (so open connections through them end).\n")
	for _, line := range st.provenance() {
		w("#    %s\n", line)
	}
	excl := familyCIDRs(s.ExcludeCIDRs, plan.Family)
	if len(excl) > 0 {
		w("#    --ipvs-exclude-cidrs: %s\n", strings.Join(excl, " "))
		w("%s\n", inExcludeFunc(excl, v6))
	}
	w("ipvsadm -S -n | while read -r op svc addr rest; do\n")
	w("\t[ \"$op\" = -A ] || continue\n")
	w("\tcase $svc in -t|-u|--sctp-service) ;; *) continue ;; esac\n")
	if v6 {
		w("\tcase $addr in \\[*) ;; *) continue ;; esac\n")
	} else {
		w("\tcase $addr in \\[*) continue ;; esac\n")
	}
	if len(excl) > 0 {
		if v6 {
			w("\thost=${addr%%]:*}; host=${host#\\[}\n")
		} else {
			w("\thost=${addr%%:*}\n")
		}
		w("\tin_exclude_cidrs \"$host\" && continue\n")
	}
	w("\tipvsadm -D \"$svc\" \"$addr\"\n")
	w("done\n")
	w("ipvsadm_payload | ipvsadm -R\n\n")

	w("# 5. kube-ipvs0 addresses: bind the wanted ones, unbind every other %s address (loopback and link-local\n", fam)
	w("#    addresses are left alone, as kube-proxy does).\n")
	w("addresses_payload | while read -r a; do ip addr replace \"$a\" dev kube-ipvs0; done\n")
	w("ip -o %s addr show dev kube-ipvs0 | while read -r _ _ _ cidr _; do\n", famFlag)
	w("\tip=${cidr%%/*}\n")
	if v6 {
		w("\tcase $ip in ::1|fe[89ab]?:*) continue ;; esac\n")
	} else {
		w("\tcase $ip in 127.*) continue ;; esac\n")
	}
	w("\taddresses_payload | sed 's,/.*,,' | grep -qxF \"$ip\" || ip addr del \"$cidr\" dev kube-ipvs0\n")
	w("done\n\n")

	w("# 6. iptables: the KUBE-* chains and kube-proxy's jumps to them (EnsureRule: -C, else -I at position 1;\n")
	w("#    existing rules are never moved), then the rules (declaring a chain in the payload flushes it).\n")
	for _, table := range []string{"nat", "filter"} {
		w("for c in %s; do %s -w -t %s -N \"$c\" 2>/dev/null || :; done\n", strings.Join(kubeChains[table], " "), ipt, table)
	}
	for _, j := range jumpRules {
		w("%s -w -t %s -C %s %s 2>/dev/null ||\n\t%s -w -t %s -I %s %s\n", ipt, j.table, j.from, j.args(), ipt, j.table, j.from, j.args())
	}
	w("iptables_payload | %s-restore -w --noflush --counters\n", ipt)
	return b.String()
}

// provenance lists, per service port in plan order, the virtual servers it
// produced ("ns/svc:port TCP -> 10.96.0.10:80, 192.168.0.2:30080").
func (st *state) provenance() []string {
	var out []string
	for _, p := range st.bySPN {
		var vss []string
		for _, k := range p.keys {
			vss = append(vss, hostPort(k.address, k.port))
		}
		out = append(out, fmt.Sprintf("%s %s -> %s", p.spn, p.protocol, strings.Join(vss, ", ")))
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func nonLoopback(addrs []string, family v1.IPFamily) []string {
	var out []string
	for _, a := range addrs {
		if validForSet(a, family) {
			out = append(out, a)
		}
	}
	return out
}

// familyCIDRs is filterCIDRs: the CIDRs of the family, normalised.
func familyCIDRs(cidrs []string, family v1.IPFamily) []string {
	var out []string
	for _, c := range cidrs {
		_, n, err := netutils.ParseCIDRSloppy(strings.TrimSpace(c))
		if err != nil || netutils.IsIPv6CIDR(n) != (family == v1.IPv6Protocol) {
			continue
		}
		out = append(out, n.String())
	}
	return out
}

// inExcludeFunc writes in_exclude_cidrs ADDR, true when ADDR (ipvsadm -S -n
// text) lies inside one of the CIDRs. POSIX awk only: addresses are turned
// into bit strings and prefixes compared.
func inExcludeFunc(cidrs []string, v6 bool) string {
	var b strings.Builder
	b.WriteString("in_exclude_cidrs() {\n\tawk -v addr=\"$1\" -v cidrs='" + strings.Join(cidrs, " ") + "' '\n")
	if v6 {
		b.WriteString(`	function hexval(h,   i, v) { v = 0; h = tolower(h); for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1; return v }
	function bits16(v,   s, i) { s = ""; for (i = 0; i < 16; i++) { s = (v % 2) s; v = int(v / 2) }; return s }
	function tobits(a,   n, l, r, nl, nr, L, R, i, s, miss) {
		n = index(a, "::")
		if (n) { l = substr(a, 1, n - 1); r = substr(a, n + 2) } else { l = a; r = "" }
		nl = (l == "") ? 0 : split(l, L, ":"); nr = (r == "") ? 0 : split(r, R, ":")
		s = ""; for (i = 1; i <= nl; i++) s = s bits16(hexval(L[i]))
		miss = 8 - nl - nr; for (i = 0; i < miss; i++) s = s bits16(0)
		for (i = 1; i <= nr; i++) s = s bits16(hexval(R[i]))
		return s
	}
`)
	} else {
		b.WriteString(`	function bits8(v,   s, i) { s = ""; for (i = 0; i < 8; i++) { s = (v % 2) s; v = int(v / 2) }; return s }
	function tobits(a,   P, i, s) { split(a, P, "."); s = ""; for (i = 1; i <= 4; i++) s = s bits8(P[i] + 0); return s }
`)
	}
	b.WriteString(`	BEGIN {
		a = tobits(addr); n = split(cidrs, C, " ")
		for (i = 1; i <= n; i++) { split(C[i], X, "/"); if (substr(a, 1, X[2]) == substr(tobits(X[1]), 1, X[2])) exit 0 }
		exit 1
	}'
}`)
	return b.String()
}
