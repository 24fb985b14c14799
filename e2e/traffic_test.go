package e2e

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/svc2rules/svc2rules/internal/cli"
)

const servicesFile = "testdata/services.yaml"

// check is one behaviour: n connections from one namespace (and source
// address) to one target, and what must happen to every one of them.
type check struct {
	name   string
	from   string // "client", "node" or a pod id
	src    string // source address to bind ("" = the kernel's choice)
	proto  string // tcp or udp
	target string // host:port
	n      int

	want   string   // ok, refused (ICMP/RST at once) or drop (timeout)
	ids    []string // ok: the only servers allowed to answer
	all    bool     // ok: every one of ids must answer at least once
	sticky bool     // ok: every connection reaches the same server
	seen   string   // ok: the source the server must see: "client" (= src), "masq" (the node's address on the server's link), "self" (the sending pod's IP; the node's address when it reaches itself, hairpin)

	localhost bool // needs localhost NodePorts (iptables backend only)
	after     func(t *testing.T, tp *topology)
}

func hp(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// checks are the behaviours verified for each backend that carries traffic.
// Connection counts are chosen so that a random choice among k endpoints
// misses one with probability below 1e-5.
func checks() []check {
	ok := func(c check) check { c.want = "ok"; return c }
	drop := func(c check) check { c.want, c.n = "drop", 3; return c }
	refused := func(c check) check { c.want, c.n = "refused", 5; return c }
	p123 := []string{"pod1", "pod2", "pod3"}
	return []check{
		// ClusterIP: every ready endpoint and nothing else (pod4 is not ready
		// and is also the catch-all for un-DNATed service traffic).
		ok(check{name: "clusterip-tcp-from-pod", from: "pod1", proto: "tcp", target: hp("10.96.0.10", 80), n: 60, ids: p123, all: true, seen: "self"}),
		ok(check{name: "clusterip-udp-from-pod", from: "pod1", proto: "udp", target: hp("10.96.0.10", 53), n: 60, ids: p123, all: true, seen: "self"}),
		ok(check{name: "clusterip-tcp-from-node", from: "node", proto: "tcp", target: hp("10.96.0.10", 80), n: 30, ids: p123, all: true, seen: "masq"}),
		// NodePort and externalIP from outside: masqueraded (externalTrafficPolicy Cluster).
		ok(check{name: "nodeport-tcp", from: "client", src: clientA4, proto: "tcp", target: hp(nodeIP4, 30080), n: 30, ids: []string{"pod1", "pod3"}, all: true, seen: "masq"}),
		ok(check{name: "nodeport-udp", from: "client", src: clientA4, proto: "udp", target: hp(nodeIP4, 30053), n: 30, ids: []string{"pod1", "pod3"}, all: true, seen: "masq"}),
		ok(check{name: "nodeport-localhost-tcp", from: "node", proto: "tcp", target: hp("127.0.0.1", 30080), n: 10, ids: []string{"pod1", "pod3"}, seen: "masq", localhost: true, after: checkLocalhostNFAcct}),
		ok(check{name: "externalip-tcp", from: "client", src: clientA4, proto: "tcp", target: hp("172.19.0.10", 80), n: 20, ids: []string{"pod1", "pod3"}, all: true, seen: "masq"}),
		// LoadBalancer IP with loadBalancerSourceRanges.
		ok(check{name: "lb-source-allowed", from: "client", src: clientA4, proto: "tcp", target: hp("172.20.0.10", 80), n: 20, ids: []string{"pod2", "pod3"}, all: true, seen: "masq"}),
		drop(check{name: "lb-source-denied", from: "client", src: clientB4, proto: "tcp", target: hp("172.20.0.10", 80)}),
		// externalTrafficPolicy Local.
		ok(check{name: "etp-local-nodeport-keeps-client-ip", from: "client", src: clientA4, proto: "tcp", target: hp(nodeIP4, 30082), n: 20, ids: []string{"pod2"}, all: true, seen: "client"}),
		ok(check{name: "etp-local-lb-keeps-client-ip", from: "client", src: clientA4, proto: "tcp", target: hp("172.20.0.20", 80), n: 10, ids: []string{"pod2"}, all: true, seen: "client"}),
		ok(check{name: "etp-local-clusterip-uses-all", from: "pod1", proto: "tcp", target: hp("10.96.0.40", 80), n: 20, ids: []string{"pod2", "pod3"}, all: true, seen: "self"}),
		drop(check{name: "etp-local-no-local-endpoint-nodeport", from: "client", src: clientA4, proto: "tcp", target: hp(nodeIP4, 30083)}),
		ok(check{name: "etp-local-no-local-endpoint-clusterip", from: "pod1", proto: "tcp", target: hp("10.96.0.50", 80), n: 5, ids: []string{"pod3"}, all: true, seen: "self"}),
		// sessionAffinity ClientIP.
		ok(check{name: "affinity-clusterip", from: "pod2", proto: "tcp", target: hp("10.96.0.60", 80), n: 20, ids: p123, sticky: true, seen: "self"}),
		ok(check{name: "affinity-nodeport", from: "client", src: clientA4, proto: "tcp", target: hp(nodeIP4, 30084), n: 20, ids: p123, sticky: true, seen: "masq"}),
		// No endpoints: rejected at once.
		refused(check{name: "no-endpoints-clusterip-tcp", from: "pod1", proto: "tcp", target: hp("10.96.0.70", 80)}),
		refused(check{name: "no-endpoints-clusterip-udp", from: "pod1", proto: "udp", target: hp("10.96.0.70", 53)}),
		refused(check{name: "no-endpoints-nodeport-tcp", from: "client", src: clientA4, proto: "tcp", target: hp(nodeIP4, 30085)}),
		refused(check{name: "no-endpoints-nodeport-udp", from: "client", src: clientA4, proto: "udp", target: hp(nodeIP4, 30086)}),
		// IPv6.
		ok(check{name: "ipv6-clusterip-tcp", from: "pod1", proto: "tcp", target: hp("fd00:96::10", 80), n: 60, ids: p123, all: true, seen: "self"}),
		ok(check{name: "ipv6-clusterip-udp", from: "pod1", proto: "udp", target: hp("fd00:96::10", 53), n: 60, ids: p123, all: true, seen: "self"}),
		ok(check{name: "ipv6-nodeport-tcp", from: "client", src: clientA6, proto: "tcp", target: hp(nodeIP6, 30090), n: 20, ids: p123, all: true, seen: "masq"}),
		ok(check{name: "ipv6-nodeport-udp", from: "client", src: clientA6, proto: "udp", target: hp(nodeIP6, 30091), n: 20, ids: p123, all: true, seen: "masq"}),
		ok(check{name: "ipv6-lb-etp-local-source-allowed", from: "client", src: clientA6, proto: "tcp", target: hp("fd00:20::10", 80), n: 10, ids: []string{"pod2"}, all: true, seen: "client"}),
		drop(check{name: "ipv6-lb-source-denied", from: "client", src: clientB6, proto: "tcp", target: hp("fd00:20::10", 80)}),
		refused(check{name: "ipv6-no-endpoints-clusterip-tcp", from: "pod1", proto: "tcp", target: hp("fd00:96::70", 80)}),
	}
}

// sanityChecks run before any rule is loaded: every server answers on its
// own address from the node, so later failures are the rules'.
func sanityChecks(tp *topology) []check {
	var cs []check
	for n := 1; n <= 4; n++ {
		p := tp.pods[fmt.Sprintf("pod%d", n)]
		for _, ip := range []string{p.ip4, p.ip6} {
			cs = append(cs,
				check{name: "direct-tcp-" + ip, from: "node", proto: "tcp", target: hp(ip, tcpTarget), n: 1, want: "ok", ids: []string{p.id}},
				check{name: "direct-udp-" + ip, from: "node", proto: "udp", target: hp(ip, udpTarget), n: 1, want: "ok", ids: []string{p.id}})
		}
	}
	return cs
}

func (tp *topology) nsOf(from string) string {
	switch from {
	case "client":
		return tp.client
	case "node":
		return tp.node
	}
	return tp.pods[from].ns
}

func isV6(hostport string) bool {
	h, _, _ := net.SplitHostPort(hostport)
	return strings.Contains(h, ":")
}

// expectedSrc is the source address the server id must have seen.
func (c check) expectedSrc(tp *topology, id string) string {
	v6 := isV6(c.target)
	pick := func(p *pod, gw bool) string {
		switch {
		case gw && v6:
			return p.gw6
		case gw:
			return p.gw4
		case v6:
			return p.ip6
		}
		return p.ip4
	}
	switch c.seen {
	case "client":
		return c.src
	case "masq":
		return pick(tp.pods[id], true)
	case "self":
		if id == c.from { // hairpin: masqueraded to the node's address
			return pick(tp.pods[id], true)
		}
		return pick(tp.pods[c.from], false)
	}
	return ""
}

// runCheck sends the connections and reports every deviation.
func runCheck(t *testing.T, tp *topology, c check) {
	t.Helper()
	spec := clientSpec{Proto: c.proto, Target: c.target, Source: c.src, Count: c.n, Parallel: 4, TimeoutMs: 3000, StopAfter: 8}
	switch c.want {
	case "drop":
		spec.Parallel, spec.TimeoutMs = c.n, 2000
	case "refused":
		spec.Parallel, spec.TimeoutMs = 1, 2000
	}
	if c.sticky {
		spec.Parallel = 1
	}
	res, err := runClientIn(tp.nsOf(c.from), spec)
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	seen := map[string]int{}
	outcomes := map[string]int{}
	for _, a := range res {
		outcomes[a.Outcome]++
		want := c.want
		if want == "drop" {
			want = "timeout"
		}
		if a.Outcome != want {
			problems = append(problems, fmt.Sprintf("got %s (id=%s src=%s %s) after %dms, want %s", a.Outcome, a.ID, a.Src, a.Err, a.Ms, c.want))
			continue
		}
		if a.Outcome != "ok" {
			continue
		}
		seen[a.ID]++
		if !slices.Contains(c.ids, a.ID) {
			problems = append(problems, fmt.Sprintf("reached %s (src %s), only %v may answer", a.ID, a.Src, c.ids))
			continue
		}
		if want := c.expectedSrc(tp, a.ID); want != "" && a.Src != want {
			problems = append(problems, fmt.Sprintf("%s saw source %s, want %s (%s)", a.ID, a.Src, want, c.seen))
		}
	}
	if c.want == "ok" && c.all && len(problems) == 0 {
		for _, id := range c.ids {
			if seen[id] == 0 {
				problems = append(problems, fmt.Sprintf("%s never reached in %d connections (spread %v)", id, c.n, seen))
			}
		}
	}
	if c.sticky && len(seen) > 1 {
		problems = append(problems, fmt.Sprintf("session affinity broken: spread %v", seen))
	}
	if len(problems) > 0 {
		if len(problems) > 5 {
			problems = append(problems[:5], fmt.Sprintf("... %d more", len(problems)-5))
		}
		t.Errorf("%s %s %s -> %s: %d connections, outcomes %v, servers %v:\n  %s",
			c.name, c.proto, c.from, c.target, c.n, outcomes, seen, strings.Join(problems, "\n  "))
		if os.Getenv("SVC2RULES_E2E_DUMP") != "" {
			dumpNode(t, tp)
		}
		return
	}
	var slowest int64
	for _, a := range res {
		slowest = max(slowest, a.Ms)
	}
	t.Logf("%s: %d %s connections %s -> %s: outcomes %v servers %v, slowest %dms", c.name, c.n, c.proto, c.from, c.target, outcomes, seen, slowest)
	if c.after != nil {
		c.after(t, tp)
	}
}

// dumpNode logs the node's rules with counters (SVC2RULES_E2E_DUMP=1).
func dumpNode(t *testing.T, tp *topology) {
	for _, cmd := range [][]string{{"iptables-save", "-c"}, {"ip6tables-save", "-c"}, {"nft", "list", "ruleset"}, {"conntrack", "-L"}, {"conntrack", "-L", "-f", "ipv6"}} {
		out, err := inNS(tp.node, "", cmd[0], cmd[1:]...)
		t.Logf("%s (%v):\n%s", strings.Join(cmd, " "), err, out)
	}
}

// nfacctReady creates kube-proxy's two nfacct counters in ns (kube-proxy's
// -m nfacct matches do not load without them); false if nfacct is not
// available, in which case the rules are compiled with --nfacct=false.
func nfacctReady(t *testing.T, ns string) bool {
	for _, name := range []string{"ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts"} {
		if _, err := inNS(ns, "", "nfacct", "add", name); err != nil {
			t.Logf("nfacct unavailable (%v): compiling with NFAcct=false", err)
			return false
		}
	}
	return true
}

var nfacctPkts = regexp.MustCompile(`pkts = 0*(\d+)`)

// checkLocalhostNFAcct: localhost NodePort connections are counted by
// kube-proxy's nfacct counter localhost_nps_accepted_pkts.
func checkLocalhostNFAcct(t *testing.T, tp *topology) {
	out, err := inNS(tp.node, "", "nfacct", "get", "localhost_nps_accepted_pkts")
	if err != nil {
		t.Logf("nfacct counter not checked: %v", err)
		return
	}
	m := nfacctPkts.FindStringSubmatch(out)
	if m == nil || m[1] == "0" {
		t.Errorf("nfacct localhost_nps_accepted_pkts did not count the localhost NodePort packets: %q", out)
	}
}

func compileOpts(backend, family string) cli.CompileOptions {
	o := cli.DefaultCompileOptions()
	o.Files = []string{servicesFile}
	o.Backend = backend
	o.IPFamily = family
	o.NodeName = "node1"
	if family == "ipv6" {
		o.NodeIPs = []string{nodeIP6}
		o.ClusterCIDRs = []string{clusterCIDR6}
		o.ServiceCIDRs = []string{serviceCIDR6}
	} else {
		o.NodeIPs = []string{nodeIP4}
		o.ClusterCIDRs = []string{clusterCIDR4}
		o.ServiceCIDRs = []string{serviceCIDR4}
	}
	return o
}

// compileOrSkip compiles; a backend that does not exist yet skips the test.
func compileOrSkip(t *testing.T, o cli.CompileOptions) string {
	t.Helper()
	res, err := cli.Compile(o, nil)
	if err != nil {
		if strings.Contains(err.Error(), "not implemented") {
			t.Skipf("%s backend not implemented yet (%v)", o.Backend, err)
		}
		t.Fatalf("compile %s %s: %v", o.Backend, o.IPFamily, err)
	}
	return res.Output
}

type trafficBackend struct {
	name     string
	load     func(t *testing.T, tp *topology) (localhost bool)
	loadOnly string // reason no traffic is sent
}

var trafficBackends = []trafficBackend{
	{name: "iptables", load: loadIPTables},
	{name: "nft", load: loadNFT},
	{name: "ipvs", load: loadIPVS, loadOnly: "no IPVS in this kernel: the ipvs backend's ipset and iptables parts are loaded, no traffic is sent"},
}

func loadIPTables(t *testing.T, tp *topology) bool {
	nfacct := nfacctReady(t, tp.node)
	for _, fam := range []string{"ipv4", "ipv6"} {
		o := compileOpts("iptables", fam)
		o.NFAcct = nfacct
		rules := compileOrSkip(t, o)
		tool := map[string]string{"ipv4": "iptables-restore", "ipv6": "ip6tables-restore"}[fam]
		mustInNS(t, tp.node, rules, tool)
	}
	return true
}

func loadNFT(t *testing.T, tp *topology) bool {
	for _, fam := range []string{"ipv4", "ipv6"} {
		rules := compileOrSkip(t, compileOpts("nft", fam))
		mustInNS(t, tp.node, rules, "nft", "-f", "-")
	}
	return false // kube-proxy's nft mode has no localhost NodePorts by default
}

func loadIPVS(t *testing.T, tp *topology) bool {
	nfacct := nfacctReady(t, tp.node)
	for _, fam := range []string{"ipv4", "ipv6"} {
		o := compileOpts("ipvs", fam)
		o.NFAcct = nfacct
		o.IPVSSection = "ipset"
		sets := compileOrSkip(t, o)
		o.IPVSSection = "iptables"
		rules := compileOrSkip(t, o)
		mustInNS(t, tp.node, sets, "ipset", "restore")
		tool := map[string]string{"ipv4": "iptables-restore", "ipv6": "ip6tables-restore"}[fam]
		loadIPVSRules(t, tp.node, rules, tool)
	}
	return false
}

// loadIPVSRules loads the ipvs backend's iptables part. Where the kernel has
// no IPVS, the xt_ipvs match ("-m ipvs", kube-proxy's KUBE-IPVS-OUT-FILTER
// rules) cannot load: those rules are then left out and counted in the log;
// every other rule must load.
func loadIPVSRules(t *testing.T, ns, rules, tool string, extra ...string) {
	t.Helper()
	_, err := inNS(ns, rules, tool, extra...)
	if err == nil {
		return
	}
	if !strings.Contains(err.Error(), "Extension ipvs") {
		t.Fatal(err)
	}
	var kept []string
	dropped := 0
	for _, line := range strings.Split(rules, "\n") {
		if strings.HasPrefix(line, "-A ") && strings.Contains(line, " -m ipvs ") {
			dropped++
			continue
		}
		kept = append(kept, line)
	}
	t.Logf("no xt_ipvs in this kernel: %d -m ipvs rule(s) left out of %s", dropped, tool)
	mustInNS(t, ns, strings.Join(kept, "\n"), tool, extra...)
}

func testTraffic(t *testing.T) {
	for _, b := range trafficBackends {
		t.Run(b.name, func(t *testing.T) {
			start := time.Now()
			tp := buildTopology(t)
			for _, c := range sanityChecks(tp) {
				runCheck(t, tp, c)
			}
			if t.Failed() {
				t.Fatal("topology sanity checks failed; rules not loaded")
			}
			localhost := b.load(t, tp)
			if b.loadOnly != "" {
				t.Logf("%s; loaded in %v", b.loadOnly, time.Since(start).Round(time.Millisecond))
				return
			}
			total, behaviours := 0, 0
			for _, c := range checks() {
				if c.localhost && !localhost {
					continue
				}
				t.Run(c.name, func(t *testing.T) { runCheck(t, tp, c) })
				behaviours++
				total += c.n
			}
			t.Logf("%s: %d behaviours, %d connections, %v", b.name, behaviours, total, time.Since(start).Round(time.Millisecond))
		})
	}
}
