package iptables

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
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

// rule is one "-A CHAIN ..." line of the payload: the id of its chain in its
// table's chainIDs (the save view groups rules per chain) and where its text
// is in the payload's chunks (chunk[off:end], followed there by a newline). It holds no pointer, so the garbage collector
// never scans the half million of them a large cluster has.
type rule struct {
	id              int32
	chunk, off, end int32
}

// payload is kube-proxy's four line buffers, plus a scratch argument list
// reused for every line (as kube-proxy reuses its args slice), so that
// writing a rule allocates only the line itself.
type payload struct {
	filterChains, natChains []string
	filterRules, natRules   []rule
	args                    []string
	// filterIDs and natIDs number each table's chains (the save view).
	filterIDs, natIDs chainIDs
	// The lines are written one after the other into chunks of text (a
	// few large allocations instead of one per line); setTexts points each
	// rule's text into them.
	cur    strings.Builder
	chunks []string
	// probabilities caches probability(n) by n.
	probabilities []string
}

// probability is probability(n), formatted once per n.
func (p *payload) probability(n int) string {
	for len(p.probabilities) <= n {
		p.probabilities = append(p.probabilities, probability(len(p.probabilities)))
	}
	return p.probabilities[n]
}

// line starts a new rule's arguments.
func (p *payload) line(args ...string) *payload {
	p.args = append(p.args[:0], args...)
	return p
}

// with appends arguments to the rule being written.
func (p *payload) with(args ...string) *payload {
	p.args = append(p.args, args...)
	return p
}

// comment appends "-m comment --comment TEXT".
func (p *payload) comment(text string) *payload {
	p.args = append(p.args, "-m", "comment", "--comment", text)
	return p
}

func (p *payload) filter(chain string) {
	p.filterRules = append(p.filterRules, p.rule(chain, p.filterIDs.id(chain)))
}

func (p *payload) nat(chain string) {
	p.natRules = append(p.natRules, p.rule(chain, p.natIDs.id(chain)))
}

// textChunk is the size of the payload's text chunks.
const textChunk = 1 << 20

// rule writes "-A CHAIN ARGS..." into the current chunk.
func (p *payload) rule(chain string, id int32) rule {
	n := 3 + len(chain) + 1
	for _, a := range p.args {
		n += 1 + len(a)
	}
	if p.cur.Len()+n > p.cur.Cap() {
		p.endChunk()
		p.cur.Grow(max(n, textChunk))
	}
	off := p.cur.Len()
	p.cur.WriteString("-A ")
	p.cur.WriteString(chain)
	for _, a := range p.args {
		p.cur.WriteByte(' ')
		p.cur.WriteString(a)
	}
	end := p.cur.Len()
	// The newline lets the save view copy a run of consecutive rules of
	// one chain at once.
	p.cur.WriteByte('\n')
	return rule{id: id, chunk: int32(len(p.chunks)), off: int32(off), end: int32(end)}
}

// endChunk closes the current chunk.
func (p *payload) endChunk() {
	if p.cur.Len() > 0 {
		p.chunks = append(p.chunks, p.cur.String())
	}
	p.cur = strings.Builder{}
}

// text is a rule's line (without its newline).
func (p *payload) text(r rule) string { return p.chunks[r.chunk][r.off:r.end] }

// declareNat and declareFilter declare chains of the payload (":CHAIN - [0:0]").
func (p *payload) declareNat(chains ...string) {
	for _, c := range chains {
		p.natChains = append(p.natChains, c)
		p.natIDs.id(c)
	}
}

func (p *payload) declareFilter(chains ...string) {
	for _, c := range chains {
		p.filterChains = append(p.filterChains, c)
		p.filterIDs.id(c)
	}
}

func join(chain string, args []string) string {
	n := 3 + len(chain)
	for _, a := range args {
		n += 1 + len(a)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString("-A ")
	b.WriteString(chain)
	for _, a := range args {
		b.WriteByte(' ')
		b.WriteString(a)
	}
	return b.String()
}

// quote wraps text in double quotes, as kube-proxy's format strings do for
// every comment that holds spaces.
func quote(parts ...string) string {
	return `"` + strings.Join(parts, "") + `"`
}

// buildPayload follows syncProxyRules of pkg/proxy/iptables/proxier.go (v1.37.2)
// for a full sync on a fresh node, iterating service ports in plan order.
func buildPayload(plan *compiler.Plan, s Settings) *payload {
	return buildPayloadWith(plan, s, runtime.GOMAXPROCS(0))
}

// buildPayloadWith is buildPayload using at most procs goroutines.
func buildPayloadWith(plan *compiler.Plan, s Settings, procs int) *payload {
	p := &payload{args: make([]string, 0, 64)}
	isIPv6 := plan.Family == v1.IPv6Protocol
	mark := MasqueradeMark(s.MasqueradeBit)
	localhostNodePorts := s.LocalhostNodePorts && s.NodePortAddresses.ContainsIPv4Loopback
	largeCluster := plan.TotalEndpoints > largeClusterEndpointsThreshold
	det := s.LocalDetector
	var ifLocal, ifNotLocal []string
	if det.IsImplemented() {
		ifLocal, ifNotLocal = det.IfLocal(), det.IfNotLocal()
	}

	nRules := 8
	for _, sp := range plan.ServicePorts {
		nRules += 8 + 4*len(sp.ReachableEndpoints)
	}
	p.natRules = make([]rule, 0, nRules)
	p.natChains = make([]string, 0, nRules/2)

	p.declareFilter(kubeServicesChain, kubeExternalServicesChain, kubeForwardChain, kubeNodePortsChain, kubeProxyFirewallChain)
	p.declareNat(kubeServicesChain, kubeNodePortsChain, kubePostroutingChain, kubeMarkMasqChain)

	p.line("-m", "mark", "!", "--mark", mark+"/"+mark, "-j", "RETURN").nat(kubePostroutingChain)
	p.line("-j", "MARK", "--xor-mark", mark).nat(kubePostroutingChain)
	p.line().comment(`"kubernetes service traffic requiring SNAT"`).with("-j", "MASQUERADE", "--random-fully").nat(kubePostroutingChain)
	p.line("-j", "MARK", "--or-mark", mark).nat(kubeMarkMasqChain)

	if !isIPv6 && localhostNodePorts {
		p.declareFilter(kubeletFirewallChain)
		p.line().comment(`"block incoming localnet connections"`).
			with("-d", "127.0.0.0/8", "!", "-s", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP").
			filter(kubeletFirewallChain)
	}

	env := &loopEnv{plan: plan, s: s, isIPv6: isIPv6, localhostNodePorts: localhostNodePorts, largeCluster: largeCluster,
		ifLocal: ifLocal, ifNotLocal: ifNotLocal, nodeIP: plan.Node.PrimaryIPOrLoopback(plan.Family)}
	p.servicePortsInParallel(env, plan.ServicePorts, procs)

	p.natIDs.endServicePorts()
	p.filterIDs.endServicePorts()

	const lastRuleComment = `"kubernetes service nodeports; NOTE: this must be the last rule in this chain"`
	if s.NodePortAddresses.MatchAll {
		p.line().comment(lastRuleComment).with("-m", "addrtype", "--dst-type", "LOCAL")
		if isIPv6 {
			p.with("!", "-d", "::1/128")
		} else if !localhostNodePorts {
			p.with("!", "-d", "127.0.0.0/8")
		}
		p.with("-j", kubeNodePortsChain).nat(kubeServicesChain)
	} else {
		for _, ip := range s.NodePortAddresses.NodeIPs(plan.Node.Addresses) {
			if compiler.IsLoopback(ip) && (isIPv6 || !localhostNodePorts) {
				continue
			}
			p.line().comment(lastRuleComment).with("-d", ip, "-j", kubeNodePortsChain).nat(kubeServicesChain)
		}
	}

	if !s.ConntrackTCPBeLiberal {
		p.line("-m", "conntrack", "--ctstate", "INVALID")
		if s.NFAcct {
			p.with("-m", "nfacct", "--nfacct-name", ctStateInvalidDroppedCounter)
		}
		p.with("-j", "DROP").filter(kubeForwardChain)
	}
	p.line().comment(`"kubernetes forwarding rules"`).with("-m", "mark", "--mark", mark+"/"+mark, "-j", "ACCEPT").filter(kubeForwardChain)
	p.line().comment(`"kubernetes forwarding conntrack rule"`).with("-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT").filter(kubeForwardChain)
	p.endChunk()
	return p
}

// parallelServicePorts is the number of service ports from which the loop
// over them is split between two goroutines.
const parallelServicePorts = 1000

// servicePortsInParallel writes the rules of the service ports, in order.
// With two or more cores and many service ports, the second half is
// written by a second goroutine into a payload of its own, joined after
// the first: every line of a service port depends on the service port and
// loopEnv only, so the joined payload holds the lines, chains and chain ids
// the loop writes in one go (tested by TestParallelPayloadIsSequential).
func (p *payload) servicePortsInParallel(env *loopEnv, sps []*compiler.ServicePort, procs int) {
	if procs < 2 || len(sps) < parallelServicePorts {
		for _, sp := range sps {
			p.servicePort(env, sp)
		}
		return
	}
	mid := len(sps) / 2
	p.endChunk()
	second := p.fork(cap(p.natRules) / 2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, sp := range sps[mid:] {
			second.servicePort(env, sp)
		}
		second.endChunk()
	}()
	for _, sp := range sps[:mid] {
		p.servicePort(env, sp)
	}
	p.endChunk()
	<-done
	p.join(second)
}

// fork is an empty payload that numbers chains after p's (as p would next),
// for the second half of the service-port loop.
func (p *payload) fork(natRules int) *payload {
	return &payload{
		args:      make([]string, 0, 64),
		natRules:  make([]rule, 0, natRules),
		natIDs:    p.natIDs.fork(),
		filterIDs: p.filterIDs.fork(),
	}
}

// join appends q, a fork of p filled after p's current end, to p: its chain
// declarations, its rules (their text chunks and the chain ids q numbered
// moved after p's) and those chain ids.
func (p *payload) join(q *payload) {
	chunkBase := int32(len(p.chunks))
	p.chunks = append(p.chunks, q.chunks...)
	p.filterChains = append(p.filterChains, q.filterChains...)
	p.natChains = append(p.natChains, q.natChains...)
	for _, t := range []struct {
		rules   *[]rule
		add     []rule
		ids, in *chainIDs
	}{{&p.filterRules, q.filterRules, &p.filterIDs, &q.filterIDs}, {&p.natRules, q.natRules, &p.natIDs, &q.natIDs}} {
		base := int32(t.in.forkedAt)
		shift := int32(len(t.ids.names)) - base
		for _, r := range t.add {
			r.chunk += chunkBase
			if r.id >= base {
				r.id += shift
			}
			*t.rules = append(*t.rules, r)
		}
		t.ids.names = append(t.ids.names, t.in.names[base:]...)
	}
}

// loopEnv is what the rules of every service port depend on besides the
// service port itself (computed once by buildPayload).
type loopEnv struct {
	plan                       *compiler.Plan
	s                          Settings
	isIPv6, localhostNodePorts bool
	largeCluster               bool
	ifLocal, ifNotLocal        []string
	nodeIP                     string
}

// servicePort writes the rules of one service port: the body of
// syncProxyRules' loop over the service map.
func (p *payload) servicePort(env *loopEnv, sp *compiler.ServicePort) {
	plan, s := env.plan, env.s
	isIPv6, localhostNodePorts, largeCluster := env.isIPv6, env.localhostNodePorts, env.largeCluster
	ifLocal, ifNotLocal, nodeIP := env.ifLocal, env.ifNotLocal, env.nodeIP
	p.natIDs.beginServicePort()
	p.filterIDs.beginServicePort()
	proto := compiler.LowerProtocol(sp.Protocol)
	spn := sp.SPN
	ch := chainsFor(spn, proto)
	port := strconv.Itoa(int(sp.Port))
	match := func(dst, dport string) *payload {
		return p.with("-m", proto, "-p", proto, "-d", dst, "--dport", dport)
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
		internalComment = quote(spn, " has no endpoints")
		externalTarget, externalComment = internalTarget, internalComment
	} else {
		if !hasInternal {
			internalTarget = "DROP"
			internalComment = quote(spn, " has no local endpoints")
		}
		if !hasExternal {
			externalTarget = "DROP"
			externalComment = quote(spn, " has no local endpoints")
		}
	}

	clusterIPComment := quote(spn, " cluster IP")
	if hasInternal {
		p.line().comment(clusterIPComment)
		match(sp.ClusterIP, port).with("-j", internalChain).nat(kubeServicesChain)
	} else {
		p.line().comment(internalComment)
		match(sp.ClusterIP, port).with("-j", internalTarget).filter(kubeServicesChain)
	}

	if plan.FeatureGates.AllowServiceExternalIPs {
		for _, extIP := range sp.ExternalIPs {
			if hasEndpoints {
				p.line().comment(quote(spn, " external IP"))
				match(extIP, port).with("-j", ch.external).nat(kubeServicesChain)
			}
			if !hasExternal {
				p.line().comment(externalComment)
				match(extIP, port).with("-j", externalTarget).filter(kubeExternalServicesChain)
			}
		}
	}

	for _, lbIP := range sp.LoadBalancerVIPs {
		if hasEndpoints {
			p.line().comment(quote(spn, " loadbalancer IP"))
			match(lbIP, port).with("-j", lbChain).nat(kubeServicesChain)
		}
		if usesFW {
			p.line().comment(quote(spn, " traffic not accepted by ", ch.firewall))
			match(lbIP, port).with("-j", "DROP").filter(kubeProxyFirewallChain)
		}
	}
	if !hasExternal {
		for _, lbIP := range sp.LoadBalancerVIPs {
			p.line().comment(externalComment)
			match(lbIP, port).with("-j", externalTarget).filter(kubeExternalServicesChain)
		}
	}

	if sp.NodePort != 0 {
		np := strconv.Itoa(int(sp.NodePort))
		if hasEndpoints {
			if localhostNodePorts && !isIPv6 && s.NFAcct {
				p.line().comment(spn).with("-m", proto, "-p", proto, "-d", "127.0.0.0/8", "--dport", np,
					"-m", "nfacct", "--nfacct-name", localhostNodePortAcceptedCounter, "-j", ch.external).nat(kubeNodePortsChain)
			}
			p.line().comment(spn).with("-m", proto, "-p", proto, "--dport", np, "-j", ch.external).nat(kubeNodePortsChain)
		}
		if !hasExternal {
			p.line().comment(externalComment).
				with("-m", "addrtype", "--dst-type", "LOCAL", "-m", proto, "-p", proto, "--dport", np, "-j", externalTarget).
				filter(kubeExternalServicesChain)
		}
	}

	if sp.HealthCheckNodePort != 0 {
		p.line().comment(quote(spn, " health check node port")).
			with("-m", "tcp", "-p", "tcp", "--dport", strconv.Itoa(int(sp.HealthCheckNodePort)), "-j", "ACCEPT").
			filter(kubeNodePortsChain)
	}

	if hasInternal {
		if s.MasqueradeAll {
			p.line().comment(clusterIPComment)
			match(sp.ClusterIP, port).with("-j", kubeMarkMasqChain).nat(internalChain)
		} else if ifNotLocal != nil {
			p.line().comment(clusterIPComment)
			match(sp.ClusterIP, port).with(ifNotLocal...).with("-j", kubeMarkMasqChain).nat(internalChain)
		}
	}

	if usesExternal {
		p.declareNat(ch.external)
		if !sp.ExternalPolicyLocal {
			p.line().comment(quote("masquerade traffic for ", spn, " external destinations")).with("-j", kubeMarkMasqChain).nat(ch.external)
		} else {
			if ifLocal != nil {
				p.line().comment(quote("pod traffic for ", spn, " external destinations")).with(ifLocal...).with("-j", ch.cluster).nat(ch.external)
			}
			p.line().comment(quote("masquerade LOCAL traffic for ", spn, " external destinations")).
				with("-m", "addrtype", "--src-type", "LOCAL", "-j", kubeMarkMasqChain).nat(ch.external)
			p.line().comment(quote("route LOCAL traffic for ", spn, " external destinations")).
				with("-m", "addrtype", "--src-type", "LOCAL", "-j", ch.cluster).nat(ch.external)
		}
		if hasExternal {
			p.line("-j", externalPolicyChain).nat(ch.external)
		}
	}

	if usesFW {
		p.declareNat(ch.firewall)
		fwComment := quote(spn, " loadbalancer IP")
		allowFromNode := false
		for _, cidr := range sp.LoadBalancerSourceRanges {
			p.line().comment(fwComment).with("-s", cidr, "-j", ch.external).nat(ch.firewall)
			if compiler.CIDRContains(cidr, nodeIP) {
				allowFromNode = true
			}
		}
		if allowFromNode {
			for _, lbIP := range sp.LoadBalancerVIPs {
				p.line().comment(fwComment).with("-s", lbIP, "-j", ch.external).nat(ch.firewall)
			}
		}
		p.line().comment(quote("other traffic to ", spn, " will be dropped by KUBE-PROXY-FIREWALL")).nat(ch.firewall)
	}

	// Endpoint chain names, computed once per endpoint of this service port.
	epChains := make(map[*compiler.Endpoint]string, len(sp.Endpoints))
	epChain := func(ep *compiler.Endpoint) string {
		c, ok := epChains[ep]
		if !ok {
			c = endpointChainName(spn, proto, ep.String())
			epChains[ep] = c
		}
		return c
	}
	if sp.UsesClusterChain() {
		p.declareNat(ch.cluster)
		writeServiceToEndpointRules(p, sp, ch.cluster, sp.ClusterEndpoints, largeCluster, epChain)
	}
	if sp.UsesLocalChain() {
		p.declareNat(ch.local)
		writeServiceToEndpointRules(p, sp, ch.local, sp.LocalEndpoints, largeCluster, epChain)
	}

	for _, ep := range sp.ReachableEndpoints {
		c := epChain(ep)
		p.declareNat(c)
		p.line()
		if !largeCluster {
			p.comment(spn)
		}
		p.with("-s", ep.IP, "-j", kubeMarkMasqChain).nat(c)
		p.line()
		if !largeCluster {
			p.comment(spn)
		}
		if sp.SessionAffinityClientIP {
			p.with("-m", "recent", "--name", c, "--set")
		}
		p.with("-m", proto, "-p", proto, "-j", "DNAT", "--to-destination", ep.String()).nat(c)
	}
}

// writeServiceToEndpointRules writes the affinity and load-balancing rules of
// a policy chain (KUBE-SVC-* or KUBE-SVL-*).
func writeServiceToEndpointRules(p *payload, sp *compiler.ServicePort, chain string, eps []*compiler.Endpoint, largeCluster bool, epChain func(*compiler.Endpoint) string) {
	epComment := func(ep *compiler.Endpoint) {
		if !largeCluster {
			p.comment(quote(sp.SPN, " -> ", ep.String()))
		}
	}
	if sp.SessionAffinityClientIP {
		timeout := strconv.Itoa(int(sp.StickyMaxAgeSeconds))
		for _, ep := range eps {
			c := epChain(ep)
			p.line()
			epComment(ep)
			p.with("-m", "recent", "--name", c, "--rcheck", "--seconds", timeout, "--reap", "-j", c).nat(chain)
		}
	}
	n := len(eps)
	for i, ep := range eps {
		p.line()
		epComment(ep)
		if i < n-1 {
			p.with("-m", "statistic", "--mode", "random", "--probability", p.probability(n-i))
		}
		p.with("-j", epChain(ep)).nat(chain)
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
		b.WriteString(p.text(r))
		b.WriteByte('\n')
	}
	b.WriteString("COMMIT\n*nat\n")
	for _, c := range p.natChains {
		b.WriteString(":" + c + " - [0:0]\n")
	}
	for _, r := range p.natRules {
		b.WriteString(p.text(r))
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
	return p.saveTextWith(true)
}

// saveTextWith is saveText grouping rules by chain id (byID) or by name (the
// reference the ids are tested against).
func (p *payload) saveTextWith(byID bool) string {
	var tables [2]saveTable
	if byID {
		tables = [2]saveTable{p.saveTable("filter", p.filterChains, p.filterRules, &p.filterIDs, true), p.saveTable("nat", p.natChains, p.natRules, &p.natIDs, true)}
	} else {
		tables = [2]saveTable{p.saveTable("filter", p.filterChains, p.filterRules, &p.filterIDs, false), p.saveTable("nat", p.natChains, p.natRules, &p.natIDs, false)}
	}
	size := 0
	for i := range tables {
		size += tables[i].size
	}
	var b strings.Builder
	b.Grow(size)
	for i := range tables {
		tables[i].write(&b)
	}
	return b.String()
}

// saveTable is one table of the save view: its chains in upstream's order,
// each with its lines.
type saveTable struct {
	name    string
	chains  []saveChain
	builtin map[string]bool
	size    int      // bytes of the table's text
	chunks  []string // the payload's text chunks (saveChain.spans)
}

type saveChain struct {
	name string
	// lines are the chain's jump rules, and for the chains sorted by
	// service all its rules; spans are its other rules, as runs of
	// consecutive lines in the payload's chunks, newlines included.
	lines []string
	spans []span
}

// span is chunks[chunk][off:end].
type span struct{ chunk, off, end int32 }

// nameKeys are the first 16 bytes of s as two big-endian numbers, zero-
// padded: they order chains without comparing whole names (names hold no
// NUL byte, so the padded order is the names' order; ties compare names).
func nameKeys(s string) (k1, k2 uint64) {
	var b [16]byte
	copy(b[:], s)
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

// saveTable groups a table's jump rules and rules per chain, orders the
// chains as upstream's sortIPTablesRules does (chainRank, then name) and
// sorts the per-service chains' rules by service. byID groups by the ids
// ids numbered while building, with no chain name looked up; otherwise (and
// when a name has two ids) chains are found by name, one lookup per run of
// rules of the same chain.
func (p *payload) saveTable(table string, decl []string, rules []rule, ids *chainIDs, byID bool) saveTable {
	t := saveTable{name: table, builtin: map[string]bool{}, chunks: p.chunks}
	var names []string
	var get func(c string) int
	if byID {
		get = func(c string) int { return int(ids.id(c)) }
	} else {
		index := make(map[string]int, len(decl)+16)
		get = func(c string) int {
			if i, ok := index[c]; ok {
				return i
			}
			i := len(names)
			index[c] = i
			names = append(names, c)
			return i
		}
	}
	for _, c := range builtinChains[table] {
		get(c)
		t.builtin[c] = true
	}
	// Jump rules: EnsureChain then EnsureRule(Prepend), so the last call
	// ends up first in its built-in chain.
	jumps := map[int][]string{}
	for i := len(jumpChains) - 1; i >= 0; i-- {
		j := jumpChains[i]
		if j.table != table {
			continue
		}
		get(j.dst)
		args := append([]string(nil), j.extra...)
		if j.comment != "" {
			args = append(args, "-m", "comment", "--comment", `"`+j.comment+`"`)
		}
		args = append(args, "-j", j.dst)
		src := get(j.src)
		jumps[src] = append(jumps[src], join(j.src, args))
	}
	// Each rule's chain.
	of := make([]int32, len(rules))
	if byID {
		for i := range rules {
			of[i] = rules[i].id
		}
		names = ids.names
	} else {
		for _, c := range decl {
			get(c)
		}
		last, lastIdx := "", -1
		for i := range rules {
			if c := ids.names[rules[i].id]; lastIdx < 0 || c != last {
				last, lastIdx = c, get(c)
			}
			of[i] = int32(lastIdx)
		}
	}
	chains := make([]saveChain, len(names))
	keys := make([]chainKey, len(names))
	for i, c := range names {
		k1, k2 := nameKeys(c)
		chains[i] = saveChain{name: c, lines: jumps[i]}
		keys[i] = chainKey{key1: k1, key2: k2, rank: int32(chainRank(c)), idx: int32(i)}
	}
	// Rules per chain in input order: count, then fill one backing array
	// of lines (the chains sorted by service) and one of spans (the others,
	// a run of rules that follow each other in a chunk as one span).
	count := make([]int, len(chains))
	for _, c := range of {
		count[c]++
	}
	byService := make([]bool, len(chains))
	nLines, nSpans := 0, 0
	for i := range chains {
		byService[i] = sortsByService(table, chains[i].name)
		nLines += len(chains[i].lines)
		if byService[i] {
			nLines += count[i]
		} else {
			nSpans += count[i]
		}
	}
	lineBacking := make([]string, 0, nLines)
	spanBacking := make([]span, 0, nSpans)
	for i := range chains {
		n := len(chains[i].lines)
		if byService[i] {
			n += count[i]
		} else {
			chains[i].spans = spanBacking[len(spanBacking) : len(spanBacking) : len(spanBacking)+count[i]]
			spanBacking = spanBacking[:len(spanBacking)+count[i]]
		}
		seg := lineBacking[len(lineBacking) : len(lineBacking) : len(lineBacking)+n]
		seg = append(seg, chains[i].lines...)
		chains[i].lines = seg
		lineBacking = lineBacking[:len(lineBacking)+n]
	}
	for i := range rules {
		r := rules[i]
		c := &chains[of[i]]
		if byService[of[i]] {
			c.lines = append(c.lines, p.text(r))
			continue
		}
		if n := len(c.spans); n > 0 && c.spans[n-1].chunk == r.chunk && c.spans[n-1].end == r.off {
			c.spans[n-1].end = r.end + 1
		} else {
			c.spans = append(c.spans, span{r.chunk, r.off, r.end + 1})
		}
	}
	slices.SortFunc(keys, func(a, b chainKey) int {
		if a.rank != b.rank {
			return int(a.rank - b.rank)
		}
		if a.key1 != b.key1 {
			return cmp.Compare(a.key1, b.key1)
		}
		if a.key2 != b.key2 {
			return cmp.Compare(a.key2, b.key2)
		}
		return strings.Compare(chains[a.idx].name, chains[b.idx].name)
	})
	sorted := make([]saveChain, len(chains))
	for i, k := range keys {
		sorted[i] = chains[k.idx]
		if byID && i > 0 && k.key1 == keys[i-1].key1 && k.key2 == keys[i-1].key2 && sorted[i].name == sorted[i-1].name {
			// One chain numbered twice: group by name instead.
			return p.saveTable(table, decl, rules, ids, false)
		}
	}
	chains = sorted
	t.size = len("*") + len(table) + len("\nCOMMIT\n") + 1
	for i := range chains {
		c := &chains[i]
		if sortsByService(table, c.name) {
			c.lines = sortByService(c.lines, table == "nat" && c.name == kubeServicesChain)
		}
		t.size += len(":") + len(c.name) + len(" ACCEPT [0:0]\n")
		for _, l := range c.lines {
			t.size += len(l) + 1
		}
		for _, sp := range c.spans {
			t.size += int(sp.end - sp.off)
		}
	}
	t.chains = chains
	return t
}

// chainKey orders a chain (saveTable): rank, the first 16 bytes of the
// name, then (on a tie) the name.
type chainKey struct {
	key1, key2 uint64
	rank, idx  int32
}

func (t *saveTable) write(b *strings.Builder) {
	b.WriteString("*")
	b.WriteString(t.name)
	b.WriteString("\n")
	for i := range t.chains {
		c := t.chains[i].name
		b.WriteString(":")
		b.WriteString(c)
		if t.builtin[c] {
			b.WriteString(" ACCEPT [0:0]\n")
		} else {
			b.WriteString(" - [0:0]\n")
		}
	}
	for i := range t.chains {
		for _, l := range t.chains[i].lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
		for _, sp := range t.chains[i].spans {
			b.WriteString(t.chunks[sp.chunk][sp.off:sp.end])
		}
	}
	b.WriteString("COMMIT\n")
}

// chainRank is the rank of a chain in upstream's sortIPTablesRules order.
func chainRank(c string) int {
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
	type keyed struct {
		line       string
		name, port string
		hasKey     bool
		last       bool
	}
	ks := make([]keyed, len(lines))
	for i, l := range lines {
		ks[i].line = l
		ks[i].last = lastRulesLast && strings.Contains(l, "must be the last rule")
		ks[i].name, ks[i].port, ks[i].hasKey = serviceKey(l)
	}
	sort.SliceStable(ks, func(i, j int) bool {
		a, b := &ks[i], &ks[j]
		switch {
		case a.last && b.last:
			return a.line < b.line
		case a.last:
			return false
		case b.last:
			return true
		}
		if !a.hasKey || !b.hasKey {
			return false
		}
		if a.name != b.name {
			return a.name < b.name
		}
		return a.port < b.port
	})
	out := make([]string, len(ks))
	for i := range ks {
		out[i] = ks[i].line
	}
	return out
}
