package trace

import (
	"math"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/svc2rules/svc2rules/internal/cli"
)

// baseFlags are the node of testdata/services.yaml.
var baseFlags = []string{
	"-f", "testdata/services.yaml", "--node-name", "node1", "--node-ip", "192.168.0.2,fd00:192::2",
	"--cluster-cidr", "10.244.0.0/16,fd00:10:244::/48", "--service-cidrs", "10.96.0.0/16,fd00:96::/112",
}

func compileOptions(t testing.TB, backend string, extra ...string) cli.CompileOptions {
	t.Helper()
	o := cli.DefaultCompileOptions()
	fs := pflag.NewFlagSet("compile", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(append(append([]string{"--backend", backend}, baseFlags...), extra...)); err != nil {
		t.Fatal(err)
	}
	return o
}

// query reads "tcp SRC -> DST:PORT from [iif]".
func query(t testing.TB, s string) Query {
	t.Helper()
	f := strings.Fields(s)
	if len(f) < 5 || f[2] != "->" {
		t.Fatalf("bad query %q", s)
	}
	src := netip.MustParseAddr(f[1])
	dst, port, err := ParseHostPort(f[3])
	if err != nil {
		t.Fatal(err)
	}
	q := Query{Proto: f[0], Src: src, Dst: dst, DstPort: port, From: f[4]}
	if len(f) > 5 {
		q.InIface = f[5]
	}
	return q
}

func runTrace(t testing.TB, backend, q string, extra ...string) *Result {
	t.Helper()
	r, err := Run(RunOptions{Query: query(t, q), Compile: compileOptions(t, backend, extra...)})
	if err != nil {
		t.Fatalf("%s: %s: %v", backend, q, err)
	}
	return r
}

// want describes the expected outcome of a trace.
type want struct {
	verdict string
	// endpoints reached, each with an equal share unless probs is set.
	endpoints []string
	probs     []float64
	// masq: "all", "none", or "hairpin:ENDPOINT" (only that endpoint).
	masq     string
	by       string // a substring of every outcome's By
	affinity bool
}

func check(t *testing.T, r *Result, w want) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format+"\n%s", append(args, Text(r))...)
	}
	if v := r.Verdict(); v != w.verdict {
		fail("verdict %s, want %s", v, w.verdict)
		return
	}
	total := 0.0
	for _, o := range r.Outcomes {
		total += o.Probability
		if w.by != "" && !strings.Contains(o.By, w.by) {
			fail("outcome by %q, want it to mention %q", o.By, w.by)
		}
		if w.affinity != (o.Affinity != "") {
			fail("affinity %q, want affinity=%v", o.Affinity, w.affinity)
		}
	}
	if math.Abs(total-1) > 1e-9 {
		fail("probabilities sum to %v", total)
	}
	if w.endpoints != nil {
		got := r.Endpoints()
		var keys []string
		for k := range got {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		want := append([]string(nil), w.endpoints...)
		sort.Strings(want)
		if strings.Join(keys, " ") != strings.Join(want, " ") {
			fail("endpoints %v, want %v", keys, want)
			return
		}
		for i, e := range w.endpoints {
			p := 1 / float64(len(w.endpoints))
			if w.probs != nil {
				p = w.probs[i]
			}
			if math.Abs(got[e]-p) > 1e-6 {
				fail("endpoint %s has probability %v, want %v", e, got[e], p)
			}
		}
	}
	for _, o := range r.Outcomes {
		switch {
		case w.masq == "all" && !o.Masquerade, w.masq == "none" && o.Masquerade:
			fail("outcome %+v: masquerade %v, want %s", o, o.Masquerade, w.masq)
		case strings.HasPrefix(w.masq, "hairpin:"):
			if o.Masquerade != (o.Endpoint == strings.TrimPrefix(w.masq, "hairpin:")) {
				fail("outcome %s: masquerade %v, want only %s masqueraded", o.Endpoint, o.Masquerade, w.masq)
			}
		}
	}
}

var web3 = []string{"10.244.1.10:8080", "10.244.1.11:8080", "10.244.2.10:8080"}

type tcase struct {
	name  string
	q     string
	extra []string
	w     want
}

// common are the cases on which iptables and nftables agree.
var common = []tcase{
	{"clusterip from pod, hairpin masqueraded", "tcp 10.244.1.10 -> 10.96.0.10:80 pod", nil, want{verdict: VerdictDNAT, endpoints: web3, masq: "hairpin:10.244.1.10:8080"}},
	{"clusterip from another pod", "tcp 10.244.1.77 -> 10.96.0.10:80 pod", nil, want{verdict: VerdictDNAT, endpoints: web3, masq: "none"}},
	{"clusterip from the node is masqueraded", "tcp 192.168.0.2 -> 10.96.0.10:80 node", nil, want{verdict: VerdictDNAT, endpoints: web3, masq: "all"}},
	{"clusterip udp", "udp 10.244.1.77 -> 10.96.0.10:53 pod", nil, want{verdict: VerdictDNAT, endpoints: []string{"10.244.1.10:5353", "10.244.1.11:5353", "10.244.2.10:5353"}, masq: "none"}},
	{"clusterip sctp", "sctp 10.244.1.77 -> 10.96.0.10:3868 pod", nil, want{verdict: VerdictDNAT, endpoints: []string{"10.244.1.10:3868", "10.244.1.11:3868", "10.244.2.10:3868"}}},
	{"clusterip from outside the cluster CIDR", "tcp 172.16.5.5 -> 10.96.0.10:80 external", nil, want{verdict: VerdictDNAT, endpoints: web3, masq: "all"}},
	{"nodeport", "tcp 198.51.100.7 -> 192.168.0.2:30020 external", nil, want{verdict: VerdictDNAT, endpoints: []string{"10.244.1.20:8080", "10.244.2.20:8080"}, masq: "all"}},
	{"external IP", "tcp 198.51.100.7 -> 203.0.113.20:80 external", nil, want{verdict: VerdictDNAT, endpoints: []string{"10.244.1.20:8080", "10.244.2.20:8080"}, masq: "all"}},
	{"LB IP, allowed source, ETP Local", "tcp 198.51.100.7 -> 203.0.113.30:80 external", nil, want{verdict: VerdictDNAT, endpoints: []string{"10.244.1.30:8080"}, masq: "none"}},
	{"LB IP, blocked source", "tcp 203.0.113.99 -> 203.0.113.30:80 external", nil, want{verdict: VerdictDrop}},
	{"LB nodeport, ETP Local", "tcp 203.0.113.99 -> 192.168.0.2:30030 external", nil, want{verdict: VerdictDNAT, endpoints: []string{"10.244.1.30:8080"}, masq: "none"}},
	{"ETP Local nodeport, no local endpoint, from outside", "tcp 198.51.100.7 -> 192.168.0.2:30040 external", nil, want{verdict: VerdictDrop}},
	{"ETP Local nodeport, no local endpoint, from a pod", "tcp 10.244.1.77 -> 192.168.0.2:30040 pod", nil, want{verdict: VerdictDNAT, endpoints: []string{"10.244.2.40:8080"}, masq: "none"}},
	{"ETP Local nodeport, no local endpoint, from the node", "tcp 192.168.0.2 -> 192.168.0.2:30040 node", nil, want{verdict: VerdictDNAT, endpoints: []string{"10.244.2.40:8080"}, masq: "all"}},
	{"ETP Local clusterip uses every endpoint", "tcp 10.244.1.77 -> 10.96.0.30:80 pod", nil, want{verdict: VerdictDNAT, endpoints: []string{"10.244.1.30:8080", "10.244.2.30:8080"}}},
	{"ITP Local, no local endpoint", "tcp 10.244.1.77 -> 10.96.0.50:80 pod", nil, want{verdict: VerdictDrop}},
	{"session affinity", "tcp 10.244.1.77 -> 10.96.0.60:80 pod", nil, want{verdict: VerdictDNAT, endpoints: []string{"10.244.1.60:8080", "10.244.2.60:8080"}, affinity: true}},
	{"no endpoints: clusterip", "tcp 10.244.1.77 -> 10.96.0.70:80 pod", nil, want{verdict: VerdictReject}},
	{"no endpoints: clusterip from the node", "tcp 192.168.0.2 -> 10.96.0.70:80 node", nil, want{verdict: VerdictReject}},
	{"no endpoints: nodeport", "tcp 198.51.100.7 -> 192.168.0.2:30070 external", nil, want{verdict: VerdictReject}},
	{"terminating fallback", "tcp 10.244.1.77 -> 10.96.0.80:80 pod", nil, want{verdict: VerdictDNAT, endpoints: []string{"10.244.1.80:8080"}}},
	{"zone hints", "tcp 10.244.1.77 -> 10.96.0.90:80 pod", nil, want{verdict: VerdictDNAT, endpoints: []string{"10.244.1.90:8080", "10.244.2.91:8080"}}},
	{"ipv6 clusterip", "tcp fd00:10:244:1::77 -> [fd00:96::10]:80 pod", nil, want{verdict: VerdictDNAT, endpoints: []string{"[fd00:10:244:1::10]:8080", "[fd00:10:244:2::10]:8080"}, masq: "none"}},
	{"ipv6 clusterip from the node", "tcp fd00:192::2 -> [fd00:96::10]:80 node", nil, want{verdict: VerdictDNAT, endpoints: []string{"[fd00:10:244:1::10]:8080", "[fd00:10:244:2::10]:8080"}, masq: "all"}},
	{"not a service", "tcp 10.244.1.77 -> 8.8.8.8:53 pod", nil, want{verdict: VerdictNoMatch, endpoints: []string{}}},
	{"masquerade-all", "tcp 10.244.1.77 -> 10.96.0.10:80 pod", []string{"--masquerade-all"}, want{verdict: VerdictDNAT, endpoints: web3, masq: "all"}},
	{"no local-traffic detector: a pod is not masqueraded", "tcp 10.244.1.77 -> 10.96.0.10:80 pod", []string{"--cluster-cidr", ""}, want{verdict: VerdictDNAT, endpoints: web3, masq: "none"}},
	{"no local-traffic detector: the node is not masqueraded", "tcp 192.168.0.2 -> 10.96.0.10:80 node", []string{"--cluster-cidr", ""}, want{verdict: VerdictDNAT, endpoints: web3, masq: "none"}},
	{"interface detector: from a pod interface", "tcp 10.244.1.77 -> 10.96.0.10:80 pod veth1234", []string{"--detect-local-mode", "InterfaceNamePrefix", "--pod-interface-name-prefix", "veth"}, want{verdict: VerdictDNAT, endpoints: web3, masq: "none"}},
	{"interface detector: from another interface", "tcp 10.244.1.77 -> 10.96.0.10:80 external eth0", []string{"--detect-local-mode", "InterfaceNamePrefix", "--pod-interface-name-prefix", "veth"}, want{verdict: VerdictDNAT, endpoints: web3, masq: "all"}},
	{"bridge detector", "tcp 10.244.1.77 -> 10.96.0.10:80 pod cbr0", []string{"--detect-local-mode", "BridgeInterface", "--pod-bridge-interface", "cbr0"}, want{verdict: VerdictDNAT, endpoints: web3, masq: "none"}},
	{"masquerade bit 0", "tcp 192.168.0.2 -> 10.96.0.10:80 node", []string{"--masquerade-bit", "0"}, want{verdict: VerdictDNAT, endpoints: web3, masq: "all"}},
}

func TestTraceIPTables(t *testing.T) {
	cases := append([]tcase(nil), common...)
	cases = append(cases,
		tcase{"wrong port of a cluster IP: no rule", "tcp 10.244.1.77 -> 10.96.0.10:81 pod", nil, want{verdict: VerdictNoMatch}},
		tcase{"health check node port", "tcp 198.51.100.7 -> 192.168.0.2:32030 external", nil, want{verdict: VerdictAccept, by: "KUBE-NODEPORTS"}},
		tcase{"localhost nodeport", "tcp 127.0.0.1 -> 127.0.0.1:30020 node", nil, want{verdict: VerdictDNAT, endpoints: []string{"10.244.1.20:8080", "10.244.2.20:8080"}, masq: "all"}},
		tcase{"localhost nodeport disabled", "tcp 127.0.0.1 -> 127.0.0.1:30020 node", []string{"--localhost-nodeports=false"}, want{verdict: VerdictNoMatch}},
		tcase{"nodeport-addresses: another node address is not a NodePort", "tcp 198.51.100.7 -> 10.0.0.5:30020 external", []string{"--nodeport-addresses", "192.168.0.0/24", "--node-addresses", "10.0.0.5"}, want{verdict: VerdictNoMatch}},
		tcase{"localhost nodeport from outside: dropped", "tcp 198.51.100.7 -> 127.0.0.1:30099 external", nil, want{verdict: VerdictDrop, by: "KUBE-FIREWALL"}},
		tcase{"nodeport-addresses: the node IP", "tcp 198.51.100.7 -> 192.168.0.2:30020 external", []string{"--nodeport-addresses", "192.168.0.0/24"}, want{verdict: VerdictDNAT, endpoints: []string{"10.244.1.20:8080", "10.244.2.20:8080"}, masq: "all"}},
		tcase{"restore view has no jumps from built-in chains", "tcp 10.244.1.77 -> 10.96.0.10:80 pod", []string{"--iptables-view", "restore"}, want{verdict: VerdictDNAT, endpoints: web3}},
		tcase{"no-endpoint external IP", "tcp 10.244.1.77 -> 10.96.0.40:80 pod", nil, want{verdict: VerdictDNAT, endpoints: []string{"10.244.2.40:8080"}}},
		tcase{"without nfacct", "tcp 127.0.0.1 -> 127.0.0.1:30020 node", []string{"--nfacct=false"}, want{verdict: VerdictDNAT, endpoints: []string{"10.244.1.20:8080", "10.244.2.20:8080"}, masq: "all"}},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runTrace(t, "iptables", c.q, c.extra...)
			check(t, r, c.w)
			if len(r.Warnings) > 0 {
				t.Errorf("warnings: %v", r.Warnings)
			}
		})
	}
}

func TestTraceNFT(t *testing.T) {
	cases := append([]tcase(nil), common...)
	cases = append(cases,
		tcase{"wrong port of a cluster IP: rejected", "tcp 10.244.1.77 -> 10.96.0.10:81 pod", nil, want{verdict: VerdictReject, by: "cluster-ips-check"}},
		tcase{"unallocated cluster IP: dropped", "tcp 10.244.1.77 -> 10.96.0.99:80 pod", nil, want{verdict: VerdictDrop, by: "cluster-ips-check"}},
		tcase{"no localhost nodeports", "tcp 127.0.0.1 -> 127.0.0.1:30020 node", nil, want{verdict: VerdictNoMatch}},
		tcase{"localhost nodeport rejected (alpha gate)", "udp 127.0.0.1 -> 127.0.0.1:30020 node", []string{"--feature-gates", "KubeProxyNFTablesLocalhostNodePorts=true"}, want{verdict: VerdictNoMatch}},
		tcase{"nodeport on all addresses", "tcp 198.51.100.7 -> 192.168.0.2:30020 external", []string{"--nodeport-addresses", "0.0.0.0/0"}, want{verdict: VerdictDNAT, endpoints: []string{"10.244.1.20:8080", "10.244.2.20:8080"}, masq: "all"}},
		tcase{"transaction view", "tcp 10.244.1.10 -> 10.96.0.10:80 pod", []string{"--nft-view", "transaction"}, want{verdict: VerdictDNAT, endpoints: web3, masq: "hairpin:10.244.1.10:8080"}},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runTrace(t, "nft", c.q, c.extra...)
			check(t, r, c.w)
			if len(r.Warnings) > 0 {
				t.Errorf("warnings: %v", r.Warnings)
			}
		})
	}
}

func TestTraceIPVS(t *testing.T) {
	cases := []tcase{
		{"clusterip from pod, hairpin masqueraded (KUBE-LOOP-BACK)", "tcp 10.244.1.10 -> 10.96.0.10:80 pod", nil, want{verdict: VerdictDNAT, endpoints: web3, masq: "hairpin:10.244.1.10:8080", by: "IPVS"}},
		{"clusterip from the node", "tcp 192.168.0.2 -> 10.96.0.10:80 node", nil, want{verdict: VerdictDNAT, endpoints: web3, masq: "all"}},
		{"clusterip udp", "udp 10.244.1.77 -> 10.96.0.10:53 pod", nil, want{verdict: VerdictDNAT, endpoints: []string{"10.244.1.10:5353", "10.244.1.11:5353", "10.244.2.10:5353"}, masq: "none"}},
		{"wrong port of a cluster IP: rejected by KUBE-IPVS-FILTER", "tcp 10.244.1.77 -> 10.96.0.10:81 pod", nil, want{verdict: VerdictReject, by: "KUBE-IPVS-FILTER"}},
		{"nodeport", "tcp 198.51.100.7 -> 192.168.0.2:30020 external", nil, want{verdict: VerdictDNAT, endpoints: []string{"10.244.1.20:8080", "10.244.2.20:8080"}, masq: "all"}},
		{"external IP", "tcp 198.51.100.7 -> 203.0.113.20:80 external", nil, want{verdict: VerdictDNAT, endpoints: []string{"10.244.1.20:8080", "10.244.2.20:8080"}, masq: "all"}},
		{"LB IP, allowed source, ETP Local", "tcp 198.51.100.7 -> 203.0.113.30:80 external", nil, want{verdict: VerdictDNAT, endpoints: []string{"10.244.1.30:8080"}, masq: "none"}},
		{"LB IP, blocked source", "tcp 203.0.113.99 -> 203.0.113.30:80 external", nil, want{verdict: VerdictDrop, by: "KUBE-SOURCE-RANGES-FIREWALL"}},
		{"ETP Local nodeport without local endpoint falls back to the cluster's", "tcp 198.51.100.7 -> 192.168.0.2:30040 external", nil, want{verdict: VerdictDNAT, endpoints: []string{"10.244.2.40:8080"}, masq: "none"}},
		{"ITP Local without local endpoint: no real server", "tcp 10.244.1.77 -> 10.96.0.50:80 pod", nil, want{verdict: VerdictReject, by: "no real server"}},
		{"no endpoints: no real server", "tcp 10.244.1.77 -> 10.96.0.70:80 pod", nil, want{verdict: VerdictReject, by: "no real server"}},
		{"session affinity: persistent", "tcp 10.244.1.77 -> 10.96.0.60:80 pod", nil, want{verdict: VerdictDNAT, endpoints: []string{"10.244.1.60:8080", "10.244.2.60:8080"}, affinity: true}},
		{"terminating fallback", "tcp 10.244.1.77 -> 10.96.0.80:80 pod", nil, want{verdict: VerdictDNAT, endpoints: []string{"10.244.1.80:8080"}}},
		{"health check node port", "tcp 198.51.100.7 -> 192.168.0.2:32030 external", nil, want{verdict: VerdictAccept, by: "KUBE-NODE-PORT"}},
		{"ipv6 clusterip", "tcp fd00:10:244:1::77 -> [fd00:96::10]:80 pod", nil, want{verdict: VerdictDNAT, endpoints: []string{"[fd00:10:244:1::10]:8080", "[fd00:10:244:2::10]:8080"}, masq: "none"}},
		{"masquerade-all", "tcp 10.244.1.77 -> 10.96.0.10:80 pod", []string{"--masquerade-all"}, want{verdict: VerdictDNAT, endpoints: web3, masq: "all"}},
		{"weighted scheduler", "tcp 10.244.1.77 -> 10.96.0.10:80 pod", []string{"--ipvs-scheduler", "wrr"}, want{verdict: VerdictDNAT, endpoints: web3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runTrace(t, "ipvs", c.q, c.extra...)
			check(t, r, c.w)
			for _, w := range r.Warnings {
				t.Errorf("warning: %s", w)
			}
		})
	}
}

func TestTraceUserspace(t *testing.T) {
	cases := []tcase{
		{"clusterip from pod: proxied", "tcp 10.244.1.77 -> 10.96.0.10:80 pod", nil, want{verdict: VerdictProxy, endpoints: web3, masq: "all"}},
		{"clusterip from the node: proxied", "tcp 192.168.0.2 -> 10.96.0.10:80 node", nil, want{verdict: VerdictProxy, endpoints: web3, masq: "all"}},
		{"nodeport", "tcp 198.51.100.7 -> 192.168.0.2:30020 external", nil, want{verdict: VerdictProxy, endpoints: []string{"10.244.1.20:8080", "10.244.2.20:8080"}, masq: "all"}},
		{"LB source ranges are ignored", "tcp 203.0.113.99 -> 203.0.113.30:80 external", nil, want{verdict: VerdictProxy, endpoints: []string{"10.244.1.30:8080", "10.244.2.30:8080"}}},
		{"no endpoints: accepted and closed", "tcp 10.244.1.77 -> 10.96.0.70:80 pod", nil, want{verdict: VerdictReject}},
		{"fixed proxy ports", "tcp 10.244.1.77 -> 10.96.0.10:80 pod", []string{"--proxy-port-range", "36000-36100"}, want{verdict: VerdictProxy, endpoints: web3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runTrace(t, "userspace", c.q, c.extra...)
			check(t, r, c.w)
			for _, w := range r.Warnings {
				t.Errorf("warning: %s", w)
			}
		})
	}
}
