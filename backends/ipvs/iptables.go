package ipvs

import (
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/svc2rules/svc2rules/backends/iptables"
)

// Chains of IPVS mode (pkg/proxy/ipvs/proxier.go).
const (
	kubeServicesChain             = "KUBE-SERVICES"
	kubeProxyFirewallChain        = "KUBE-PROXY-FIREWALL"
	kubeSourceRangesFirewallChain = "KUBE-SOURCE-RANGES-FIREWALL"
	kubePostroutingChain          = "KUBE-POSTROUTING"
	kubeMarkMasqChain             = "KUBE-MARK-MASQ"
	kubeNodePortChain             = "KUBE-NODE-PORT"
	kubeForwardChain              = "KUBE-FORWARD"
	kubeLoadBalancerChain         = "KUBE-LOAD-BALANCER"
	kubeIPVSFilterChain           = "KUBE-IPVS-FILTER"
	kubeIPVSOutFilterChain        = "KUBE-IPVS-OUT-FILTER"
)

// kubeChains is iptablesChains: every chain kube-proxy declares (and so
// flushes) in its restore payload, per table, in declaration order.
var kubeChains = map[string][]string{
	"nat":    {kubeServicesChain, kubePostroutingChain, kubeNodePortChain, kubeLoadBalancerChain, kubeMarkMasqChain},
	"filter": {kubeForwardChain, kubeNodePortChain, kubeProxyFirewallChain, kubeSourceRangesFirewallChain, kubeIPVSFilterChain, kubeIPVSOutFilterChain},
}

// jumpRule is one row of iptablesJumpChain: a rule kube-proxy ensures
// (EnsureRule(Prepend): -C, else -I at position 1) in a built-in chain.
type jumpRule struct {
	table, from, to, comment string
}

var jumpRules = []jumpRule{
	{"nat", "OUTPUT", kubeServicesChain, "kubernetes service portals"},
	{"nat", "PREROUTING", kubeServicesChain, "kubernetes service portals"},
	{"nat", "POSTROUTING", kubePostroutingChain, "kubernetes postrouting rules"},
	{"filter", "FORWARD", kubeForwardChain, "kubernetes forwarding rules"},
	{"filter", "INPUT", kubeNodePortChain, "kubernetes health check rules"},
	{"filter", "INPUT", kubeProxyFirewallChain, "kube-proxy firewall rules"},
	{"filter", "FORWARD", kubeProxyFirewallChain, "kube-proxy firewall rules"},
	{"filter", "INPUT", kubeIPVSFilterChain, "kubernetes ipvs access filter"},
	{"filter", "OUTPUT", kubeIPVSOutFilterChain, "kubernetes ipvs access filter"},
}

func (j jumpRule) args() string {
	return `-m comment --comment "` + j.comment + `" -j ` + j.to
}

// builtinChains are the built-in chains of the tables kube-proxy touches.
var builtinChains = map[string][]string{
	"filter": {"FORWARD", "INPUT", "OUTPUT"},
	"nat":    {"INPUT", "OUTPUT", "POSTROUTING", "PREROUTING"},
}

// setChainRule is a row of ipsetWithIptablesChain: a rule written when its
// set is not empty.
type setChainRule struct {
	set                  int
	table, from, to      string
	matchType, protoName string
}

var setChainRules = []setChainRule{
	{setLoopBack, "nat", kubePostroutingChain, "MASQUERADE", "dst,dst,src", ""},
	{setLoadBalancer, "nat", kubeServicesChain, kubeLoadBalancerChain, "dst,dst", ""},
	{setLoadBalancerLocal, "nat", kubeLoadBalancerChain, "RETURN", "dst,dst", ""},
	{setNodePortLocalTCP, "nat", kubeNodePortChain, "RETURN", "dst", "tcp"},
	{setNodePortTCP, "nat", kubeNodePortChain, kubeMarkMasqChain, "dst", "tcp"},
	{setNodePortLocalUDP, "nat", kubeNodePortChain, "RETURN", "dst", "udp"},
	{setNodePortUDP, "nat", kubeNodePortChain, kubeMarkMasqChain, "dst", "udp"},
	{setNodePortLocalSCTP, "nat", kubeNodePortChain, "RETURN", "dst,dst", "sctp"},
	{setNodePortSCTP, "nat", kubeNodePortChain, kubeMarkMasqChain, "dst,dst", "sctp"},
	{setLoadBalancerFW, "filter", kubeProxyFirewallChain, kubeSourceRangesFirewallChain, "dst,dst", ""},
	{setLoadBalancerSourceCIDR, "filter", kubeSourceRangesFirewallChain, "RETURN", "dst,dst,src", ""},
	{setLoadBalancerSourceIP, "filter", kubeSourceRangesFirewallChain, "RETURN", "dst,dst,src", ""},
}

func (st *state) nat(chain string, args ...string) {
	st.natRules = append(st.natRules, rule{chain, "-A " + chain + " " + strings.Join(args, " ")})
}

func (st *state) filter(chain string, args ...string) {
	st.filtRules = append(st.filtRules, rule{chain, "-A " + chain + " " + strings.Join(args, " ")})
}

func quote(s string) string { return `"` + s + `"` }

// writeIPTables is writeIptablesRules (plus the KUBE-FORWARD, health-check,
// KUBE-IPVS-FILTER, postrouting and mark rules it writes), in generation order.
func (st *state) writeIPTables(s Settings) {
	lo := "127.0.0.0/8"
	if st.family == v1.IPv6Protocol {
		lo = "::1/128"
	}
	mark := iptables.MasqueradeMark(s.MasqueradeBit)
	set := func(i int) *ipset { return st.sets[i] }

	st.nat(kubeServicesChain, "-s", lo, "-j", "RETURN")

	for _, r := range setChainRules {
		if set(r.set).empty() {
			continue
		}
		args := []string{}
		if r.protoName != "" {
			args = append(args, "-p", r.protoName)
		}
		args = append(args, "-m", "comment", "--comment", quote(set(r.set).comment),
			"-m", "set", "--match-set", set(r.set).name, r.matchType, "-j", r.to)
		if r.table == "filter" {
			st.filter(r.from, args...)
		} else {
			st.nat(r.from, args...)
		}
	}

	if cip := set(setClusterIP); !cip.empty() {
		args := []string{"-m", "comment", "--comment", quote(cip.comment), "-m", "set", "--match-set", cip.name}
		switch {
		case s.MasqueradeAll:
			args = append(args, "dst,dst", "-j", kubeMarkMasqChain)
		case s.LocalDetector.IsImplemented():
			args = append(append(args, "dst,dst"), s.LocalDetector.IfNotLocal()...)
			args = append(args, "-j", kubeMarkMasqChain)
		default:
			args = append(args, "src,dst", "-j", kubeMarkMasqChain)
		}
		st.nat(kubeServicesChain, args...)
	}

	externalIPRules := func(args []string) {
		st.nat(kubeServicesChain, append(append([]string(nil), args...),
			"-m", "physdev", "!", "--physdev-is-in", "-m", "addrtype", "!", "--src-type", "LOCAL", "-j", "ACCEPT")...)
		st.nat(kubeServicesChain, append(append([]string(nil), args...),
			"-m", "addrtype", "--dst-type", "LOCAL", "-j", "ACCEPT")...)
	}
	if ext := set(setExternalIP); !ext.empty() {
		args := []string{"-m", "comment", "--comment", quote(ext.comment), "-m", "set", "--match-set", ext.name, "dst,dst"}
		st.nat(kubeServicesChain, append(append([]string(nil), args...), "-j", kubeMarkMasqChain)...)
		externalIPRules(args)
	}
	if ext := set(setExternalIPLocal); !ext.empty() {
		externalIPRules([]string{"-m", "comment", "--comment", quote(ext.comment), "-m", "set", "--match-set", ext.name, "dst,dst"})
	}

	st.nat(kubeServicesChain, "-m", "addrtype", "--dst-type", "LOCAL", "-j", kubeNodePortChain)
	st.nat(kubeLoadBalancerChain, "-j", kubeMarkMasqChain)
	st.filter(kubeSourceRangesFirewallChain, "-j", "DROP")

	for _, e := range st.outFilter {
		st.filter(kubeIPVSOutFilterChain, "-s", e.ip, "-m", "ipvs", "--vaddr", e.ip, "--vproto", e.proto, "--vport", strconv.Itoa(int(e.port)), "-j", "DROP")
	}

	// acceptIPVSTraffic
	for _, i := range []int{setClusterIP, setLoadBalancer} {
		if !set(i).empty() {
			st.nat(kubeServicesChain, "-m", "set", "--match-set", set(i).name, "dst,dst", "-j", "ACCEPT")
		}
	}

	st.filter(kubeForwardChain, "-m", "comment", "--comment", `"kubernetes forwarding rules"`, "-m", "mark", "--mark", mark+"/"+mark, "-j", "ACCEPT")
	st.filter(kubeForwardChain, "-m", "comment", "--comment", `"kubernetes forwarding conntrack rule"`, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
	hc := set(setHealthCheckNodePort)
	st.filter(kubeNodePortChain, "-m", "comment", "--comment", quote(hc.comment), "-m", "set", "--match-set", hc.name, "dst", "-j", "ACCEPT")

	st.filter(kubeIPVSFilterChain, "-m", "set", "--match-set", set(setLoadBalancer).name, "dst,dst", "-j", "RETURN")
	st.filter(kubeIPVSFilterChain, "-m", "set", "--match-set", set(setClusterIP).name, "dst,dst", "-j", "RETURN")
	st.filter(kubeIPVSFilterChain, "-m", "set", "--match-set", set(setExternalIP).name, "dst,dst", "-j", "RETURN")
	st.filter(kubeIPVSFilterChain, "-m", "set", "--match-set", set(setExternalIPLocal).name, "dst,dst", "-j", "RETURN")
	st.filter(kubeIPVSFilterChain, "-m", "set", "--match-set", hc.name, "dst", "-j", "RETURN")
	st.filter(kubeIPVSFilterChain, "-m", "conntrack", "--ctstate", "NEW", "-m", "set", "--match-set", set(setIPVSIPs).name, "dst", "-j", "REJECT")

	st.nat(kubePostroutingChain, "-m", "mark", "!", "--mark", mark+"/"+mark, "-j", "RETURN")
	st.nat(kubePostroutingChain, "-j", "MARK", "--xor-mark", mark)
	st.nat(kubePostroutingChain, "-m", "comment", "--comment", `"kubernetes service traffic requiring SNAT"`, "-j", "MASQUERADE", "--random-fully")
	st.nat(kubeMarkMasqChain, "-j", "MARK", "--or-mark", mark)
}

// restoreText is exactly kube-proxy's iptablesData: nat chains and rules,
// then filter chains and rules.
func (st *state) restoreText() string {
	var b strings.Builder
	for _, table := range []string{"nat", "filter"} {
		b.WriteString("*" + table + "\n")
		for _, c := range kubeChains[table] {
			b.WriteString(":" + c + " - [0:0]\n")
		}
		rules := st.natRules
		if table == "filter" {
			rules = st.filtRules
		}
		for _, r := range rules {
			b.WriteString(r.text)
			b.WriteByte('\n')
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

// saveText is the node's filter and nat tables after the sync, as kporacle
// prints iptables-save: tables by name; chains KUBE-SERVICES, the other
// KUBE-* chains by name, then the built-in chains by name; every chain's
// rules in kube-proxy's order (the jump rules as EnsureRule(Prepend) leaves
// them), except KUBE-IPVS-OUT-FILTER, sorted by text (kube-proxy writes it
// in Go map order).
func (st *state) saveText() string {
	var b strings.Builder
	for _, table := range []string{"filter", "nat"} {
		chains := map[string][]string{}
		for _, c := range builtinChains[table] {
			chains[c] = nil
		}
		for _, c := range kubeChains[table] {
			chains[c] = nil
		}
		for i := len(jumpRules) - 1; i >= 0; i-- {
			j := jumpRules[i]
			if j.table == table {
				chains[j.from] = append(chains[j.from], "-A "+j.from+" "+j.args())
			}
		}
		rules := st.natRules
		if table == "filter" {
			rules = st.filtRules
		}
		for _, r := range rules {
			chains[r.chain] = append(chains[r.chain], r.text)
		}
		if out := chains[kubeIPVSOutFilterChain]; len(out) > 0 {
			sort.Strings(out)
		}
		names := make([]string, 0, len(chains))
		for c := range chains {
			names = append(names, c)
		}
		sort.Slice(names, func(i, j int) bool { return chainLess(names[i], names[j]) })
		b.WriteString("*" + table + "\n")
		for _, c := range names {
			b.WriteString(":" + c + " - [0:0]\n")
		}
		for _, c := range names {
			for _, l := range chains[c] {
				b.WriteString(l)
				b.WriteByte('\n')
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

func chainLess(a, b string) bool {
	rank := func(c string) int {
		switch {
		case c == kubeServicesChain:
			return 0
		case strings.HasPrefix(c, "KUBE-"):
			return 1
		}
		return 2
	}
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra < rb
	}
	return a < b
}
