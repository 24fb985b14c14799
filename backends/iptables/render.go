package iptables

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/svc2rules/svc2rules/compiler"
)

// View selects the form of the output.
type View string

const (
	// ViewSave is the iptables-save form: every table kube-proxy touches with
	// its built-in chains (policy ACCEPT) carrying kube-proxy's jump rules,
	// then all KUBE-* chains, rules grouped per chain in a canonical order.
	// Loading it with iptables-restore into an empty namespace gives the
	// node's service data path.
	ViewSave View = "save"
	// ViewRestore is exactly the payload kube-proxy passes to
	// "iptables-restore --noflush --counters" on a full sync of a fresh node.
	ViewRestore View = "restore"
)

// Settings are the kube-proxy settings that change iptables-mode rules.
type Settings struct {
	// MasqueradeAll is --masquerade-all.
	MasqueradeAll bool
	// MasqueradeBit is --iptables-masquerade-bit (0..31; 14 by default).
	MasqueradeBit int
	// LocalDetector is the local-traffic detector of the plan's family.
	LocalDetector compiler.LocalDetector
	// NodePortAddresses is --nodeport-addresses resolved for the family.
	NodePortAddresses compiler.NodePortAddresses
	// LocalhostNodePorts is --iptables-localhost-nodeports (the flag; the
	// effective value also needs IPv4 and a loopback-containing
	// nodePortAddresses).
	LocalhostNodePorts bool
	// NFAcct says the host supports nfacct, so kube-proxy's counters exist and
	// the "-m nfacct" matches are written.
	NFAcct bool
	// ConntrackTCPBeLiberal is nf_conntrack_tcp_be_liberal=1 on the host
	// (kube-proxy then leaves out the INVALID-state DROP rule).
	ConntrackTCPBeLiberal bool
	// View is the output form (ViewSave when empty).
	View View
}

// largeClusterEndpointsThreshold: above this many endpoints kube-proxy drops
// the per-endpoint comments (pkg/proxy/iptables/proxier.go).
const largeClusterEndpointsThreshold = 1000

// Fixed chain names.
const (
	kubeServicesChain         = "KUBE-SERVICES"
	kubeExternalServicesChain = "KUBE-EXTERNAL-SERVICES"
	kubeNodePortsChain        = "KUBE-NODEPORTS"
	kubePostroutingChain      = "KUBE-POSTROUTING"
	kubeMarkMasqChain         = "KUBE-MARK-MASQ"
	kubeForwardChain          = "KUBE-FORWARD"
	kubeProxyFirewallChain    = "KUBE-PROXY-FIREWALL"
	kubeletFirewallChain      = "KUBE-FIREWALL"
)

// nfacct counter names kube-proxy creates (pkg/proxy/metrics).
const (
	localhostNodePortAcceptedCounter = "localhost_nps_accepted_pkts"
	ctStateInvalidDroppedCounter     = "ct_state_invalid_dropped_pkts"
)

// Render is the iptables backend: a pure function from a plan and settings to
// the text kube-proxy v1.37.2 programs.
func Render(plan *compiler.Plan, s Settings) (string, error) {
	if plan == nil {
		return "", errors.New("iptables: nil plan")
	}
	if s.MasqueradeBit < 0 || s.MasqueradeBit > 31 {
		return "", fmt.Errorf("iptables: masquerade bit %d out of range 0..31", s.MasqueradeBit)
	}
	p := buildPayload(plan, s)
	switch s.View {
	case ViewRestore:
		return p.restoreText(), nil
	case ViewSave, "":
		return p.saveText(plan.Family), nil
	}
	return "", fmt.Errorf("iptables: unknown view %q (save or restore)", s.View)
}

// rule is one "-A CHAIN ..." line of the payload, and the service port it
// belongs to (for the canonical ordering of the save view).
type rule struct {
	chain string
	text  string // the whole line, starting with "-A "
}

// payload is kube-proxy's four line buffers.
type payload struct {
	filterChains, natChains []string
	filterRules, natRules   []rule
}

func (p *payload) filter(chain string, args ...string) {
	p.filterRules = append(p.filterRules, rule{chain, join(chain, args)})
}

func (p *payload) nat(chain string, args ...string) {
	p.natRules = append(p.natRules, rule{chain, join(chain, args)})
}

func join(chain string, args []string) string {
	var b strings.Builder
	b.WriteString("-A ")
	b.WriteString(chain)
	for _, a := range args {
		if a == "" {
			continue
		}
		b.WriteByte(' ')
		b.WriteString(a)
	}
	return b.String()
}

// cat concatenates argument groups.
func cat(groups ...[]string) []string {
	n := 0
	for _, g := range groups {
		n += len(g)
	}
	out := make([]string, 0, n)
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

func comment(text string) []string { return []string{"-m", "comment", "--comment", text} }

// buildPayload follows syncProxyRules of pkg/proxy/iptables/proxier.go (v1.37.2)
// for a full sync on a fresh node, iterating service ports in plan order.
func buildPayload(plan *compiler.Plan, s Settings) *payload {
	p := &payload{}
	isIPv6 := plan.Family == v1.IPv6Protocol
	mark := MasqueradeMark(s.MasqueradeBit)
	localhostNodePorts := s.LocalhostNodePorts && s.NodePortAddresses.ContainsIPv4Loopback
	largeCluster := plan.TotalEndpoints > largeClusterEndpointsThreshold
	det := s.LocalDetector

	p.filterChains = []string{kubeServicesChain, kubeExternalServicesChain, kubeForwardChain, kubeNodePortsChain, kubeProxyFirewallChain}
	p.natChains = []string{kubeServicesChain, kubeNodePortsChain, kubePostroutingChain, kubeMarkMasqChain}

	p.nat(kubePostroutingChain, "-m", "mark", "!", "--mark", mark+"/"+mark, "-j", "RETURN")
	p.nat(kubePostroutingChain, "-j", "MARK", "--xor-mark", mark)
	p.nat(kubePostroutingChain, "-m", "comment", "--comment", `"kubernetes service traffic requiring SNAT"`, "-j", "MASQUERADE", "--random-fully")
	p.nat(kubeMarkMasqChain, "-j", "MARK", "--or-mark", mark)

	if !isIPv6 && localhostNodePorts {
		p.filterChains = append(p.filterChains, kubeletFirewallChain)
		p.filter(kubeletFirewallChain, "-m", "comment", "--comment", `"block incoming localnet connections"`,
			"-d", "127.0.0.0/8", "!", "-s", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP")
	}

	nodeIP := plan.Node.PrimaryIPOrLoopback(plan.Family)

	for _, sp := range plan.ServicePorts {
		proto := strings.ToLower(string(sp.Protocol))
		spn := sp.SPN
		ch := chainsFor(spn, proto)
		port := strconv.Itoa(int(sp.Port))
		match := func(dst, dport string) []string {
			return []string{"-m", proto, "-p", proto, "-d", dst, "--dport", dport}
		}

		hasEndpoints := sp.HasEndpoints
		hasInternal := sp.HasInternalEndpoints()
		hasExternal := sp.HasExternalEndpoints()
		internalChain := ch.cluster
		if sp.InternalPolicyLocal {
			internalChain = ch.local
		}
		externalPolicyChain := ch.cluster
		if sp.ExternalPolicyLocal {
			externalPolicyChain = ch.local
		}
		usesExternal := sp.UsesExternalChain()
		usesFW := hasEndpoints && len(sp.LoadBalancerVIPs) > 0 && len(sp.LoadBalancerSourceRanges) > 0
		lbChain := ch.external
		if usesFW {
			lbChain = ch.firewall
		}

		var internalTarget, internalComment, externalTarget, externalComment string
		if !hasEndpoints {
			internalTarget = "REJECT"
			internalComment = fmt.Sprintf(`"%s has no endpoints"`, spn)
			externalTarget, externalComment = internalTarget, internalComment
		} else {
			if !hasInternal {
				internalTarget = "DROP"
				internalComment = fmt.Sprintf(`"%s has no local endpoints"`, spn)
			}
			if !hasExternal {
				externalTarget = "DROP"
				externalComment = fmt.Sprintf(`"%s has no local endpoints"`, spn)
			}
		}

		if hasInternal {
			p.nat(kubeServicesChain, cat(comment(fmt.Sprintf(`"%s cluster IP"`, spn)), match(sp.ClusterIP, port), []string{"-j", internalChain})...)
		} else {
			p.filter(kubeServicesChain, cat(comment(internalComment), match(sp.ClusterIP, port), []string{"-j", internalTarget})...)
		}

		if plan.FeatureGates.AllowServiceExternalIPs {
			for _, extIP := range sp.ExternalIPs {
				if hasEndpoints {
					p.nat(kubeServicesChain, cat(comment(fmt.Sprintf(`"%s external IP"`, spn)), match(extIP, port), []string{"-j", ch.external})...)
				}
				if !hasExternal {
					p.filter(kubeExternalServicesChain, cat(comment(externalComment), match(extIP, port), []string{"-j", externalTarget})...)
				}
			}
		}

		for _, lbIP := range sp.LoadBalancerVIPs {
			if hasEndpoints {
				p.nat(kubeServicesChain, cat(comment(fmt.Sprintf(`"%s loadbalancer IP"`, spn)), match(lbIP, port), []string{"-j", lbChain})...)
			}
			if usesFW {
				p.filter(kubeProxyFirewallChain, cat(comment(fmt.Sprintf(`"%s traffic not accepted by %s"`, spn, ch.firewall)), match(lbIP, port), []string{"-j", "DROP"})...)
			}
		}
		if !hasExternal {
			for _, lbIP := range sp.LoadBalancerVIPs {
				p.filter(kubeExternalServicesChain, cat(comment(externalComment), match(lbIP, port), []string{"-j", externalTarget})...)
			}
		}

		if sp.NodePort != 0 {
			np := strconv.Itoa(int(sp.NodePort))
			if hasEndpoints {
				if localhostNodePorts && !isIPv6 && s.NFAcct {
					p.nat(kubeNodePortsChain, "-m", "comment", "--comment", spn, "-m", proto, "-p", proto, "-d", "127.0.0.0/8", "--dport", np,
						"-m", "nfacct", "--nfacct-name", localhostNodePortAcceptedCounter, "-j", ch.external)
				}
				p.nat(kubeNodePortsChain, "-m", "comment", "--comment", spn, "-m", proto, "-p", proto, "--dport", np, "-j", ch.external)
			}
			if !hasExternal {
				p.filter(kubeExternalServicesChain, cat(comment(externalComment), []string{"-m", "addrtype", "--dst-type", "LOCAL", "-m", proto, "-p", proto, "--dport", np, "-j", externalTarget})...)
			}
		}

		if sp.HealthCheckNodePort != 0 {
			p.filter(kubeNodePortsChain, cat(comment(fmt.Sprintf(`"%s health check node port"`, spn)), []string{"-m", "tcp", "-p", "tcp", "--dport", strconv.Itoa(int(sp.HealthCheckNodePort)), "-j", "ACCEPT"})...)
		}

		if hasInternal {
			base := cat(comment(fmt.Sprintf(`"%s cluster IP"`, spn)), match(sp.ClusterIP, port))
			if s.MasqueradeAll {
				p.nat(internalChain, cat(base, []string{"-j", kubeMarkMasqChain})...)
			} else if det.IsImplemented() {
				p.nat(internalChain, cat(base, det.IfNotLocal(), []string{"-j", kubeMarkMasqChain})...)
			}
		}

		if usesExternal {
			p.natChains = append(p.natChains, ch.external)
			if !sp.ExternalPolicyLocal {
				p.nat(ch.external, cat(comment(fmt.Sprintf(`"masquerade traffic for %s external destinations"`, spn)), []string{"-j", kubeMarkMasqChain})...)
			} else {
				if det.IsImplemented() {
					p.nat(ch.external, cat(comment(fmt.Sprintf(`"pod traffic for %s external destinations"`, spn)), det.IfLocal(), []string{"-j", ch.cluster})...)
				}
				p.nat(ch.external, cat(comment(fmt.Sprintf(`"masquerade LOCAL traffic for %s external destinations"`, spn)), []string{"-m", "addrtype", "--src-type", "LOCAL", "-j", kubeMarkMasqChain})...)
				p.nat(ch.external, cat(comment(fmt.Sprintf(`"route LOCAL traffic for %s external destinations"`, spn)), []string{"-m", "addrtype", "--src-type", "LOCAL", "-j", ch.cluster})...)
			}
			if hasExternal {
				p.nat(ch.external, "-j", externalPolicyChain)
			}
		}

		if usesFW {
			p.natChains = append(p.natChains, ch.firewall)
			fwComment := comment(fmt.Sprintf(`"%s loadbalancer IP"`, spn))
			allowFromNode := false
			for _, cidr := range sp.LoadBalancerSourceRanges {
				p.nat(ch.firewall, cat(fwComment, []string{"-s", cidr, "-j", ch.external})...)
				if compiler.CIDRContains(cidr, nodeIP) {
					allowFromNode = true
				}
			}
			if allowFromNode {
				for _, lbIP := range sp.LoadBalancerVIPs {
					p.nat(ch.firewall, cat(fwComment, []string{"-s", lbIP, "-j", ch.external})...)
				}
			}
			p.nat(ch.firewall, comment(fmt.Sprintf(`"other traffic to %s will be dropped by KUBE-PROXY-FIREWALL"`, spn))...)
		}

		if sp.UsesClusterChain() {
			p.natChains = append(p.natChains, ch.cluster)
			writeServiceToEndpointRules(p, sp, proto, ch.cluster, sp.ClusterEndpoints, largeCluster)
		}
		if sp.UsesLocalChain() {
			p.natChains = append(p.natChains, ch.local)
			writeServiceToEndpointRules(p, sp, proto, ch.local, sp.LocalEndpoints, largeCluster)
		}

		for _, ep := range sp.ReachableEndpoints {
			epStr := ep.String()
			epChain := endpointChainName(spn, proto, epStr)
			p.natChains = append(p.natChains, epChain)
			var svcComment []string
			if !largeCluster {
				svcComment = comment(spn)
			}
			p.nat(epChain, cat(svcComment, []string{"-s", ep.IP, "-j", kubeMarkMasqChain})...)
			var affinity []string
			if sp.SessionAffinityClientIP {
				affinity = []string{"-m", "recent", "--name", epChain, "--set"}
			}
			p.nat(epChain, cat(svcComment, affinity, []string{"-m", proto, "-p", proto, "-j", "DNAT", "--to-destination", epStr})...)
		}
	}

	const lastRuleComment = `"kubernetes service nodeports; NOTE: this must be the last rule in this chain"`
	if s.NodePortAddresses.MatchAll {
		dst := []string{"-m", "addrtype", "--dst-type", "LOCAL"}
		if isIPv6 {
			dst = append(dst, "!", "-d", "::1/128")
		} else if !localhostNodePorts {
			dst = append(dst, "!", "-d", "127.0.0.0/8")
		}
		p.nat(kubeServicesChain, cat(comment(lastRuleComment), dst, []string{"-j", kubeNodePortsChain})...)
	} else {
		for _, ip := range s.NodePortAddresses.NodeIPs(plan.Node.Addresses) {
			if compiler.IsLoopback(ip) && (isIPv6 || !localhostNodePorts) {
				continue
			}
			p.nat(kubeServicesChain, cat(comment(lastRuleComment), []string{"-d", ip, "-j", kubeNodePortsChain})...)
		}
	}

	if !s.ConntrackTCPBeLiberal {
		r := []string{"-m", "conntrack", "--ctstate", "INVALID"}
		if s.NFAcct {
			r = append(r, "-m", "nfacct", "--nfacct-name", ctStateInvalidDroppedCounter)
		}
		p.filter(kubeForwardChain, append(r, "-j", "DROP")...)
	}
	p.filter(kubeForwardChain, "-m", "comment", "--comment", `"kubernetes forwarding rules"`, "-m", "mark", "--mark", mark+"/"+mark, "-j", "ACCEPT")
	p.filter(kubeForwardChain, "-m", "comment", "--comment", `"kubernetes forwarding conntrack rule"`, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
	return p
}

// writeServiceToEndpointRules writes the affinity and load-balancing rules of
// a policy chain (KUBE-SVC-* or KUBE-SVL-*).
func writeServiceToEndpointRules(p *payload, sp *compiler.ServicePort, proto, chain string, eps []*compiler.Endpoint, largeCluster bool) {
	epComment := func(ep *compiler.Endpoint) []string {
		if largeCluster {
			return nil
		}
		return comment(fmt.Sprintf(`"%s -> %s"`, sp.SPN, ep.String()))
	}
	if sp.SessionAffinityClientIP {
		for _, ep := range eps {
			epChain := endpointChainName(sp.SPN, proto, ep.String())
			p.nat(chain, cat(epComment(ep), []string{"-m", "recent", "--name", epChain, "--rcheck", "--seconds", strconv.Itoa(int(sp.StickyMaxAgeSeconds)), "--reap", "-j", epChain})...)
		}
	}
	n := len(eps)
	for i, ep := range eps {
		epChain := endpointChainName(sp.SPN, proto, ep.String())
		var stat []string
		if i < n-1 {
			stat = []string{"-m", "statistic", "--mode", "random", "--probability", probability(n - i)}
		}
		p.nat(chain, cat(epComment(ep), stat, []string{"-j", epChain})...)
	}
}

// restoreText is the iptables-restore payload, exactly as kube-proxy writes it.
func (p *payload) restoreText() string {
	var b strings.Builder
	b.Grow(64 * (len(p.filterRules) + len(p.natRules) + len(p.natChains) + 16))
	b.WriteString("*filter\n")
	for _, c := range p.filterChains {
		b.WriteString(":" + c + " - [0:0]\n")
	}
	for _, r := range p.filterRules {
		b.WriteString(r.text)
		b.WriteByte('\n')
	}
	b.WriteString("COMMIT\n*nat\n")
	for _, c := range p.natChains {
		b.WriteString(":" + c + " - [0:0]\n")
	}
	for _, r := range p.natRules {
		b.WriteString(r.text)
		b.WriteByte('\n')
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// jumpChain is one of the jump rules kube-proxy installs in a built-in chain
// with "iptables -I" outside its restore payload (iptablesJumpChains and
// iptablesKubeletJumpChains in pkg/proxy/iptables/proxier.go, in call order).
type jumpChain struct {
	table, dst, src, comment string
	extra                    []string
}

var ctNew = []string{"-m", "conntrack", "--ctstate", "NEW"}

var jumpChains = []jumpChain{
	{"filter", kubeExternalServicesChain, "INPUT", "kubernetes externally-visible service portals", ctNew},
	{"filter", kubeExternalServicesChain, "FORWARD", "kubernetes externally-visible service portals", ctNew},
	{"filter", kubeNodePortsChain, "INPUT", "kubernetes health check service ports", nil},
	{"filter", kubeServicesChain, "FORWARD", "kubernetes service portals", ctNew},
	{"filter", kubeServicesChain, "OUTPUT", "kubernetes service portals", ctNew},
	{"filter", kubeForwardChain, "FORWARD", "kubernetes forwarding rules", nil},
	{"filter", kubeProxyFirewallChain, "INPUT", "kubernetes load balancer firewall", ctNew},
	{"filter", kubeProxyFirewallChain, "OUTPUT", "kubernetes load balancer firewall", ctNew},
	{"filter", kubeProxyFirewallChain, "FORWARD", "kubernetes load balancer firewall", ctNew},
	{"nat", kubeServicesChain, "OUTPUT", "kubernetes service portals", nil},
	{"nat", kubeServicesChain, "PREROUTING", "kubernetes service portals", nil},
	{"nat", kubePostroutingChain, "POSTROUTING", "kubernetes postrouting rules", nil},
	{"filter", kubeletFirewallChain, "INPUT", "", nil},
	{"filter", kubeletFirewallChain, "OUTPUT", "", nil},
}

var builtinChains = map[string][]string{
	"filter": {"FORWARD", "INPUT", "OUTPUT"},
	"nat":    {"INPUT", "OUTPUT", "POSTROUTING", "PREROUTING"},
}

// saveText renders the node's state after kube-proxy's setup and full sync as
// iptables-save would list it: kube-proxy's text for every rule, chains in
// the order of upstream's sortIPTablesRules (KUBE-NODEPORTS, KUBE-SERVICES,
// other KUBE-* chains, then built-in chains), rules grouped per chain, and the
// per-service chains' rules ordered by service (the order kube-proxy itself
// leaves to Go map iteration).
func (p *payload) saveText(family v1.IPFamily) string {
	var b strings.Builder
	b.Grow(80 * (len(p.filterRules) + len(p.natRules) + len(p.natChains) + 32))
	for _, table := range []string{"filter", "nat"} {
		chains := map[string][]string{}
		declared := map[string]bool{}
		declare := func(c string) {
			if !declared[c] {
				declared[c] = true
				chains[c] = chains[c][:0:0]
			}
		}
		for _, c := range builtinChains[table] {
			declare(c)
		}
		// Jump rules: EnsureChain then EnsureRule(Prepend), so the last call
		// ends up first in its built-in chain.
		for i := len(jumpChains) - 1; i >= 0; i-- {
			j := jumpChains[i]
			if j.table != table {
				continue
			}
			declare(j.dst)
			args := append([]string(nil), j.extra...)
			if j.comment != "" {
				args = append(args, "-m", "comment", "--comment", `"`+j.comment+`"`)
			}
			args = append(args, "-j", j.dst)
			chains[j.src] = append(chains[j.src], join(j.src, args))
		}
		decl, rules := p.filterChains, p.filterRules
		if table == "nat" {
			decl, rules = p.natChains, p.natRules
		}
		for _, c := range decl {
			declare(c)
		}
		for _, r := range rules {
			chains[r.chain] = append(chains[r.chain], r.text)
		}
		names := make([]string, 0, len(chains))
		for c := range chains {
			names = append(names, c)
		}
		sort.Slice(names, func(i, j int) bool { return chainLess(names[i], names[j]) })
		b.WriteString("*" + table + "\n")
		isBuiltin := map[string]bool{}
		for _, c := range builtinChains[table] {
			isBuiltin[c] = true
		}
		for _, c := range names {
			if isBuiltin[c] {
				b.WriteString(":" + c + " ACCEPT [0:0]\n")
			} else {
				b.WriteString(":" + c + " - [0:0]\n")
			}
		}
		for _, c := range names {
			lines := chains[c]
			if sortsByService(table, c) {
				lines = sortByService(lines, table == "nat" && c == kubeServicesChain)
			}
			for _, l := range lines {
				b.WriteString(l)
				b.WriteByte('\n')
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

// chainLess is the chain order of upstream's sortIPTablesRules.
func chainLess(a, b string) bool {
	rank := func(c string) int {
		switch {
		case c == kubeNodePortsChain:
			return 0
		case c == kubeServicesChain:
			return 1
		case strings.HasPrefix(c, "KUBE-"):
			return 2
		}
		return 3
	}
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra < rb
	}
	return a < b
}

// sortsByService lists the chains into which kube-proxy writes rules of every
// service port in its (random) service order.
func sortsByService(table, chain string) bool {
	switch chain {
	case kubeNodePortsChain, kubeServicesChain:
		return true
	case kubeExternalServicesChain, kubeProxyFirewallChain:
		return table == "filter"
	}
	return false
}

// serviceKey returns ("ns/name", "port") from a rule's comment, as upstream's
// test helper reads it ("ns1/svc1:p80 cluster IP" → "ns1/svc1", "p80").
func serviceKey(line string) (name, port string, ok bool) {
	i := strings.Index(line, "--comment ")
	if i < 0 {
		return "", "", false
	}
	c := strings.TrimPrefix(line[i+len("--comment "):], `"`)
	if j := strings.IndexAny(c, ` "`); j >= 0 {
		c = c[:j]
	}
	name = c
	if j := strings.IndexByte(c, ':'); j >= 0 {
		name, port = c[:j], c[j+1:]
	}
	return name, port, true
}

func sortByService(lines []string, lastRulesLast bool) []string {
	out := append([]string(nil), lines...)
	isLast := func(l string) bool { return lastRulesLast && strings.Contains(l, "must be the last rule") }
	sort.SliceStable(out, func(i, j int) bool {
		li, lj := isLast(out[i]), isLast(out[j])
		switch {
		case li && lj:
			return out[i] < out[j]
		case li:
			return false
		case lj:
			return true
		}
		ni, pi, oki := serviceKey(out[i])
		nj, pj, okj := serviceKey(out[j])
		if !oki || !okj {
			return false
		}
		if ni != nj {
			return ni < nj
		}
		return pi < pj
	})
	return out
}
