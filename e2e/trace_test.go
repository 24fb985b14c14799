package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/svc2rules/svc2rules/internal/cli"
	"github.com/svc2rules/svc2rules/internal/trace"
)

// The tracer must predict what the kernel does with the same rules: for every
// traffic check of TestKernel (checks() in traffic_test.go), trace the
// check's first packet through the rules the kernel test loads and assert
// the outcome the kernel check asserts (which endpoints answer, refused,
// dropped, masqueraded or not, sticky). TestTraceAgreesWithE2E needs no
// root; TestTraceKernelDumps (root) traces what the kernel itself prints
// back (iptables-save, nft list table) and then sends the real packets.

// traceEnv is the node of the kernel topology: its address on the client
// link and on every pod link (buildTopology).
func traceEnv() trace.Env {
	var env trace.Env
	add := func(s string) {
		a := netip.MustParseAddr(s)
		env.Local = append(env.Local, netip.PrefixFrom(a, a.BitLen()))
	}
	add(nodeIP4)
	add(nodeIP6)
	for n := 1; n <= 4; n++ {
		p := podAddrs(n)
		add(p.gw4)
		add(p.gw6)
	}
	env.PrimaryIP = netip.MustParseAddr(nodeIP4)
	return env
}

// traceQuery is the first packet of a check's connections.
func traceQuery(c check) trace.Query {
	host, port, _ := net.SplitHostPort(c.target)
	dst := netip.MustParseAddr(host)
	dport, _ := strconv.Atoi(port)
	q := trace.Query{Dst: dst, DstPort: uint16(dport), Proto: c.proto}
	v6 := dst.Is6()
	switch {
	case c.from == "client":
		q.From = trace.FromExternal
		q.Src = netip.MustParseAddr(c.src)
	case c.from == "node":
		q.From = trace.FromNode
		switch {
		case dst.IsLoopback():
			q.Src = dst
		case v6:
			q.Src = netip.MustParseAddr(nodeIP6)
		default:
			q.Src = netip.MustParseAddr(nodeIP4) // the service routes carry "src" the node IP
		}
	default:
		q.From = trace.FromPod
		n, _ := strconv.Atoi(strings.TrimPrefix(c.from, "pod"))
		p := podAddrs(n)
		q.Src = netip.MustParseAddr(p.ip4)
		if v6 {
			q.Src = netip.MustParseAddr(p.ip6)
		}
		q.InIface = "eth0"
	}
	return q
}

// podOf maps an endpoint "IP:port" to the pod that serves it.
func podOf(endpoint string) string {
	ap, err := netip.ParseAddrPort(endpoint)
	if err != nil {
		return ""
	}
	for n := 1; n <= 4; n++ {
		p := podAddrs(n)
		if ap.Addr().String() == p.ip4 || ap.Addr().String() == p.ip6 {
			return p.id
		}
	}
	return ""
}

// predicted is what a trace says the kernel will do with a check's traffic.
type predicted struct {
	want   string   // ok, drop, refused, or "mixed: ..." when the trace has no single answer
	ids    []string // pods reached
	seen   string   // client, masq, self ("" when it varies in another way)
	sticky bool
}

func predict(c check, r *trace.Result) predicted {
	var p predicted
	switch r.Verdict() {
	case trace.VerdictDNAT:
		p.want = "ok"
	case trace.VerdictDrop:
		p.want = "drop"
		return p
	case trace.VerdictReject:
		p.want = "refused"
		return p
	default:
		p.want = "other: " + r.Verdict()
		return p
	}
	masq, kept, selfOK := 0, 0, true
	wantPort := map[string]string{"tcp": strconv.Itoa(tcpTarget), "udp": strconv.Itoa(udpTarget)}[c.proto]
	sticky := true
	for _, o := range r.Outcomes {
		id := podOf(o.Endpoint)
		if id == "" || !strings.HasSuffix(o.Endpoint, ":"+wantPort) {
			p.want = "other: DNAT to " + o.Endpoint
			return p
		}
		if !slices.Contains(p.ids, id) {
			p.ids = append(p.ids, id)
		}
		if o.Masquerade {
			masq++
		} else {
			kept++
		}
		// "self": the pod sees the sender's address, except when it
		// reaches itself (hairpin, masqueraded).
		if o.Masquerade != (id == c.from) {
			selfOK = false
		}
		if o.Affinity == "" {
			sticky = false
		}
	}
	sort.Strings(p.ids)
	switch {
	case c.from != "client" && c.from != "node" && selfOK:
		p.seen = "self"
	case kept == 0:
		p.seen = "masq"
	case masq == 0:
		p.seen = "client"
	default:
		p.seen = "mixed"
	}
	p.sticky = sticky
	return p
}

// agrees compares a prediction with the check's expectation.
func (p predicted) agrees(c check) string {
	if p.want != c.want {
		return fmt.Sprintf("trace predicts %s, the kernel check expects %s", p.want, c.want)
	}
	if c.want != "ok" {
		return ""
	}
	for _, id := range p.ids {
		if !slices.Contains(c.ids, id) {
			return fmt.Sprintf("trace predicts %s may answer, only %v may", id, c.ids)
		}
	}
	if c.all {
		for _, id := range c.ids {
			if !slices.Contains(p.ids, id) {
				return fmt.Sprintf("trace never reaches %s (reaches %v)", id, p.ids)
			}
		}
	}
	if c.seen != "" && p.seen != c.seen {
		return fmt.Sprintf("trace predicts the server sees %q, the check expects %q", p.seen, c.seen)
	}
	if c.sticky && !p.sticky {
		return "trace shows no session affinity"
	}
	return ""
}

// e2eRules compiles the kernel test's rules (compileOpts, as loadIPTables
// and loadNFT do) for the family of a check.
func e2eRules(t *testing.T, backend, family string) *trace.Ruleset {
	t.Helper()
	o := compileOpts(backend, family)
	res, err := cli.Compile(o, nil)
	if err != nil {
		t.Fatalf("compile %s %s: %v", backend, family, err)
	}
	rs := trace.NewRuleset()
	if err := rs.Parse(backend+"-"+family, res.Output); err != nil {
		t.Fatalf("trace cannot read svc2rules' %s %s output: %v", backend, family, err)
	}
	return rs
}

func familyOf(c check) string {
	if isV6(c.target) {
		return "ipv6"
	}
	return "ipv4"
}

// TestTraceAgreesWithE2E: no root needed.
func TestTraceAgreesWithE2E(t *testing.T) {
	for _, backend := range []string{"iptables", "nft"} {
		t.Run(backend, func(t *testing.T) {
			rules := map[string]*trace.Ruleset{}
			for _, c := range checks() {
				if c.localhost && backend != "iptables" {
					continue // kube-proxy's nft mode has no localhost NodePorts
				}
				t.Run(c.name, func(t *testing.T) {
					fam := familyOf(c)
					if rules[fam] == nil {
						rules[fam] = e2eRules(t, backend, fam)
					}
					r, err := trace.Trace(rules[fam], traceQuery(c), traceEnv())
					if err != nil {
						t.Fatal(err)
					}
					if msg := predict(c, r).agrees(c); msg != "" {
						t.Errorf("%s: %s\n%s", c.name, msg, trace.Text(r))
					}
					for _, w := range r.Warnings {
						t.Errorf("warning: %s", w)
					}
				})
			}
		})
	}
}
