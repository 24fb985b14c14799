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

// TestTraceKernelDumps (root): the rules are loaded into the kernel topology
// as TestKernel does, dumped back with the kernel's own tools (iptables-save
// and ip6tables-save, nft list ruleset: "-p tcp -m tcp", "/32", "0x4000",
// priorities by name, sorted and merged elements), traced from those dumps,
// and then every prediction is checked against real packets: the check the
// kernel runs is built from the trace (verdict, the pods reached, the source
// they see, stickiness), not from the check table.
func TestTraceKernelDumps(t *testing.T) {
	needKernel(t)
	sweepStaleNamespaces(t)
	dumpers := map[string]func(t *testing.T, tp *topology) map[string]*trace.Ruleset{
		"iptables": func(t *testing.T, tp *topology) map[string]*trace.Ruleset {
			out := map[string]*trace.Ruleset{}
			for fam, tool := range map[string]string{"ipv4": "iptables-save", "ipv6": "ip6tables-save"} {
				text := mustInNS(t, tp.node, "", tool)
				rs := trace.NewRuleset()
				if err := rs.Parse(tool, text); err != nil {
					t.Fatalf("trace cannot read %s output: %v\n%s", tool, err, text)
				}
				out[fam] = rs
			}
			return out
		},
		"nft": func(t *testing.T, tp *topology) map[string]*trace.Ruleset {
			text := mustInNS(t, tp.node, "", "nft", "list", "ruleset")
			rs := trace.NewRuleset()
			if err := rs.Parse("nft list ruleset", text); err != nil {
				t.Fatalf("trace cannot read nft list ruleset output: %v\n%s", err, text)
			}
			return map[string]*trace.Ruleset{"ipv4": rs, "ipv6": rs}
		},
	}
	for _, b := range trafficBackends {
		dump := dumpers[b.name]
		if dump == nil || b.loadOnly != "" {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			tp := buildTopology(t)
			localhost := b.load(t, tp)
			rules := dump(t, tp)
			for _, c := range checks() {
				if c.localhost && !localhost {
					continue
				}
				t.Run(c.name, func(t *testing.T) {
					r, err := trace.Trace(rules[familyOf(c)], traceQuery(c), traceEnv())
					if err != nil {
						t.Fatal(err)
					}
					for _, w := range r.Warnings {
						t.Errorf("warning: %s", w)
					}
					p := predict(c, r)
					if msg := p.agrees(c); msg != "" {
						t.Errorf("from the kernel's dump: %s\n%s", msg, trace.Text(r))
					}
					// The kernel judges the prediction.
					k := c
					k.want, k.ids, k.seen, k.sticky = p.want, p.ids, p.seen, p.sticky
					// Every predicted pod must answer, except with affinity: the first
					// connection picks one and the others follow it.
					k.all = p.want == "ok" && !p.sticky
					switch k.want {
					case "drop":
						k.n = 3
					case "refused":
						k.n = 5
					}
					if k.seen == "mixed" {
						k.seen = ""
					}
					runCheck(t, tp, k)
				})
			}
		})
	}
}
