package userspace

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	netutils "k8s.io/utils/net"

	"github.com/svc2rules/svc2rules/compiler"
)

// Chains of the mode (pkg/proxy/userspace/proxier.go).
const (
	chainPortalsContainer  = "KUBE-PORTALS-CONTAINER"
	chainPortalsHost       = "KUBE-PORTALS-HOST"
	chainNodePortContainer = "KUBE-NODEPORT-CONTAINER"
	chainNodePortHost      = "KUBE-NODEPORT-HOST"
	chainNodePortNonLocal  = "KUBE-NODEPORT-NON-LOCAL"
)

// The comments of iptablesInit's jump rules.
const (
	commentPortals  = "handle ClusterIPs; NOTE: this must be before the NodePort rules"
	commentNodePort = "handle service NodePorts; NOTE: this must be the last rule in the chain"
	commentNonLocal = "Ensure that non-local NodePort traffic can flow"
)

// KubeProxyVersion is the kube-proxy whose userspace mode this backend reproduces.
const KubeProxyVersion = "v1.25.16"

// Render is the userspace backend: a pure, deterministic function from a
// plan and settings to the rules (or, with SectionTable, the proxy state) of
// kube-proxy v1.25.16's userspace mode on a freshly started node.
func Render(plan *compiler.Plan, s Settings) (string, error) {
	st, err := build(plan, s)
	if err != nil {
		return "", err
	}
	switch s.Section {
	case SectionRules, "":
		return st.rulesText(), nil
	case SectionTable:
		return st.tableText(), nil
	}
	return "", fmt.Errorf("userspace: unknown section %q (rules or table)", s.Section)
}

// portal is one address kube-proxy redirects for a service port.
type portal struct {
	ip   string
	port int32
	kind string // clusterIP, externalIP, loadBalancerIP
}

// portState is what kube-proxy holds for one service port.
type portState struct {
	*compiler.UserspacePort
	proxyPort int // 0: no proxy socket
	portals   []portal
	nodePort  bool // the NodePort rules were written
	claims    []string
	problems  []string // why some rules are missing
}

// state is the whole node after kube-proxy's first sync.
type state struct {
	family     v1.IPFamily
	bindIP     string // --bind-address, canonical
	anyBind    bool   // 0.0.0.0 or ::
	hostIP     string // DNAT target of host traffic
	pr         portRange
	localAddrs map[string]bool
	ports      []*portState

	filterRules []string
	natRules    map[string][]string
	seen        map[string]bool

	claims      map[claimKey]string // owner
	claimsByNum map[numKey][]claimKey
}

type claimKey struct {
	ip    string // "" = all addresses (a NodePort)
	port  int
	proto v1.Protocol
}

type numKey struct {
	port  int
	proto v1.Protocol
}

func (k claimKey) String() string {
	ip := k.ip
	if ip == "" {
		ip = "*"
	} else if strings.Contains(ip, ":") {
		ip = "[" + ip + "]"
	}
	return fmt.Sprintf("%s:%d/%s", ip, k.port, k.proto)
}

func familyOf(ip string) v1.IPFamily {
	if netutils.IsIPv6String(ip) {
		return v1.IPv6Protocol
	}
	return v1.IPv4Protocol
}

func familyName(f v1.IPFamily) string {
	if f == v1.IPv6Protocol {
		return "IPv6"
	}
	return "IPv4"
}

func build(plan *compiler.Plan, s Settings) (*state, error) {
	if plan == nil {
		return nil, errors.New("userspace: nil plan")
	}
	if s.Section != "" && s.Section != SectionRules && s.Section != SectionTable {
		return nil, fmt.Errorf("userspace: unknown section %q (rules or table)", s.Section)
	}
	family := plan.Family
	if family == "" {
		family = v1.IPv4Protocol
	}
	st := &state{
		family:      family,
		localAddrs:  map[string]bool{},
		natRules:    map[string][]string{},
		seen:        map[string]bool{},
		claims:      map[claimKey]string{},
		claimsByNum: map[numKey][]claimKey{},
	}
	bind := s.BindAddress
	if bind == "" {
		bind = "0.0.0.0"
		if family == v1.IPv6Protocol {
			bind = "::"
		}
	}
	ip := netutils.ParseIPSloppy(bind)
	if ip == nil {
		return nil, fmt.Errorf("userspace: --bind-address %q is not an IP", s.BindAddress)
	}
	if ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback) {
		return nil, errors.New("userspace: cannot proxy on localhost (kube-proxy refuses --bind-address " + ip.String() + ")")
	}
	st.bindIP = ip.String()
	st.anyBind = ip.Equal(net.IPv4zero) || ip.Equal(net.IPv6zero)
	if st.anyBind {
		st.hostIP = plan.Node.IP
		if st.hostIP == "" {
			return nil, fmt.Errorf("userspace: the node's %s address is needed (--node-ip, or a Node object named --node-name): kube-proxy DNATs host traffic to it", familyName(family))
		}
	} else {
		if familyOf(st.bindIP) != family {
			return nil, fmt.Errorf("userspace: --bind-address %s is not %s", st.bindIP, familyName(family))
		}
		st.hostIP = st.bindIP
	}
	for _, a := range plan.Node.Addresses {
		st.localAddrs[a] = true
	}
	pr, err := parsePortRange(s.ProxyPortRange)
	if err != nil {
		return nil, err
	}
	st.pr = pr

	ports := s.Ports
	if ports == nil {
		ports = compiler.UserspacePortsFromPlan(plan)
	}
	if err := st.assignProxyPorts(ports); err != nil {
		return nil, err
	}
	for _, ps := range st.ports {
		st.openPortals(ps)
	}
	return st, nil
}

// assignProxyPorts gives every TCP and UDP service port a proxy port, in
// order, from the start of the range. Numbers that a NodePort or a portal on
// a node address of the input also uses are skipped (kube-proxy would fail
// to bind one of the two).
func (st *state) assignProxyPorts(ports []*compiler.UserspacePort) error {
	taken := map[int]bool{}
	for _, p := range ports {
		if p.NodePort != 0 {
			taken[int(p.NodePort)] = true
		}
		for _, ip := range append(append([]string{p.ClusterIP}, p.ExternalIPs...), p.LoadBalancerIPs...) {
			if st.localAddrs[ip] {
				taken[int(p.Port)] = true
			}
		}
	}
	next := st.pr.base
	end := st.pr.base + st.pr.size // exclusive
	need := 0
	for _, p := range ports {
		if p.Protocol == v1.ProtocolTCP || p.Protocol == v1.ProtocolUDP {
			need++
		}
	}
	for _, p := range ports {
		ps := &portState{UserspacePort: p}
		st.ports = append(st.ports, ps)
		if p.Protocol != v1.ProtocolTCP && p.Protocol != v1.ProtocolUDP {
			ps.problems = append(ps.problems, fmt.Sprintf("%s is not supported for user space proxy: no proxy socket, no rules", p.Protocol))
			continue
		}
		for next < end && taken[next] {
			next++
		}
		if next >= end {
			return fmt.Errorf("userspace: --proxy-port-range %s has too few free ports for the %d TCP and UDP service ports of the input (kube-proxy would leave the rest unproxied)", st.pr.text, need)
		}
		ps.proxyPort = next
		next++
	}
	return nil
}

// claim is Proxier.claimNodePort: hold ip:port open (ip "" = all
// addresses). Reclaiming by the same owner succeeds; another owner's exact
// key is a "Port conflict"; an all-addresses socket and a one-address socket
// on the same port and protocol cannot both be bound.
func (st *state) claim(ip string, port int32, proto v1.Protocol, owner string) error {
	k := claimKey{ip: ip, port: int(port), proto: proto}
	if o, ok := st.claims[k]; ok {
		if o == owner {
			return nil
		}
		return fmt.Errorf("port conflict on %s with %s", k, o)
	}
	nk := numKey{int(port), proto}
	for _, other := range st.claimsByNum[nk] {
		if other.ip == "" || ip == "" {
			return fmt.Errorf("can't open %s: %s is held for %s", k, other, st.claims[other])
		}
	}
	st.claims[k] = owner
	st.claimsByNum[nk] = append(st.claimsByNum[nk], k)
	return nil
}

// openPortals is Proxier.openPortal for one service port: the ClusterIP,
// each external IP, each load-balancer IP, then the NodePort. Like
// kube-proxy it stops at the first failure (an address iptables of this
// family rejects, a port it cannot hold open).
func (st *state) openPortals(ps *portState) {
	if ps.proxyPort == 0 {
		return
	}
	if familyOf(ps.ClusterIP) != st.family {
		ps.problems = append(ps.problems, fmt.Sprintf("clusterIP %s is not %s: iptables rejects the first rule, so kube-proxy writes none for this port (its proxy socket still listens)", ps.ClusterIP, familyName(st.family)))
		return
	}
	if !st.openOnePortal(ps, portal{ps.ClusterIP, ps.Port, "clusterIP"}, false) {
		return
	}
	for _, ip := range ps.ExternalIPs {
		if familyOf(ip) != st.family {
			ps.problems = append(ps.problems, fmt.Sprintf("externalIP %s is not %s: iptables rejects it and kube-proxy opens no later portal (external IPs after it, load-balancer IPs, NodePort) for this port", ip, familyName(st.family)))
			return
		}
		if !st.openOnePortal(ps, portal{ip, ps.Port, "externalIP"}, true) {
			return
		}
	}
	for _, ip := range ps.LoadBalancerIPs {
		if familyOf(ip) != st.family {
			ps.problems = append(ps.problems, fmt.Sprintf("load-balancer IP %s is not %s: iptables rejects it and kube-proxy opens no later portal (load-balancer IPs after it, NodePort) for this port", ip, familyName(st.family)))
			return
		}
		if !st.openOnePortal(ps, portal{ip, ps.Port, "loadBalancerIP"}, false) {
			return
		}
	}
	if ps.NodePort != 0 {
		if err := st.claim("", ps.NodePort, ps.Protocol, ps.SPN); err != nil {
			ps.problems = append(ps.problems, fmt.Sprintf("NodePort %d: %v: kube-proxy writes no NodePort rule for this port", ps.NodePort, err))
			return
		}
		ps.claims = append(ps.claims, claimKey{"", int(ps.NodePort), ps.Protocol}.String())
		st.nat(chainNodePortContainer, st.ruleArgs("", false, false, ps.NodePort, ps, st.containerTarget(ps.proxyPort)))
		st.nat(chainNodePortHost, st.ruleArgs("", false, false, ps.NodePort, ps, st.hostTarget(ps.proxyPort)))
		st.filter(chainNodePortNonLocal, st.ruleArgs("", false, false, int32(ps.proxyPort), ps, "-m state --state NEW -j ACCEPT"))
		ps.nodePort = true
	}
}

// openOnePortal writes the rules of one portal (two, or three for an
// external IP), after holding the portal open if its IP is the node's.
func (st *state) openOnePortal(ps *portState, p portal, external bool) bool {
	if st.localAddrs[p.ip] {
		if err := st.claim(p.ip, p.port, ps.Protocol, ps.SPN); err != nil {
			ps.problems = append(ps.problems, fmt.Sprintf("%s %s: %v: kube-proxy opens neither it nor any later portal of this port", p.kind, p.ip, err))
			return false
		}
		ps.claims = append(ps.claims, claimKey{p.ip, int(p.port), ps.Protocol}.String())
	}
	ct, ht := st.containerTarget(ps.proxyPort), st.hostTarget(ps.proxyPort)
	st.nat(chainPortalsContainer, st.ruleArgs(p.ip, external, false, p.port, ps, ct))
	if external {
		st.nat(chainPortalsContainer, st.ruleArgs(p.ip, false, true, p.port, ps, ct))
		st.nat(chainPortalsHost, st.ruleArgs(p.ip, false, true, p.port, ps, ht))
	} else {
		st.nat(chainPortalsHost, st.ruleArgs(p.ip, false, false, p.port, ps, ht))
	}
	ps.portals = append(ps.portals, p)
	return true
}

// containerTarget is the target of iptablesContainerPortalArgs.
func (st *state) containerTarget(proxyPort int) string {
	if st.anyBind {
		return "-j REDIRECT --to-ports " + strconv.Itoa(proxyPort)
	}
	return "-j DNAT --to-destination " + net.JoinHostPort(st.bindIP, strconv.Itoa(proxyPort))
}

// hostTarget is the target of iptablesHostPortalArgs and iptablesHostNodePortArgs.
func (st *state) hostTarget(proxyPort int) string {
	return "-j DNAT --to-destination " + net.JoinHostPort(st.hostIP, strconv.Itoa(proxyPort))
}

// ruleArgs renders iptablesCommonPortalArgs plus a target the way
// iptables-save prints it: -d with its prefix length and -p first, the
// comment quoted.
func (st *state) ruleArgs(dst string, physdev, dstLocal bool, dport int32, ps *portState, target string) string {
	proto := strings.ToLower(string(ps.Protocol))
	var b strings.Builder
	if dst != "" {
		b.WriteString(" -d ")
		b.WriteString(dst)
		if st.family == v1.IPv6Protocol {
			b.WriteString("/128")
		} else {
			b.WriteString("/32")
		}
	}
	b.WriteString(" -p ")
	b.WriteString(proto)
	b.WriteString(` -m comment --comment "`)
	b.WriteString(ps.SPN)
	b.WriteString(`" -m `)
	b.WriteString(proto)
	b.WriteString(" --dport ")
	b.WriteString(strconv.Itoa(int(dport)))
	if physdev {
		b.WriteString(" -m physdev ! --physdev-is-in")
	}
	if dstLocal {
		b.WriteString(" -m addrtype --dst-type LOCAL")
	}
	b.WriteByte(' ')
	b.WriteString(target)
	return b.String()
}

// nat appends a rule unless the chain has it already (EnsureRule).
func (st *state) nat(chain, args string) {
	line := "-A " + chain + args
	if st.seen[line] {
		return
	}
	st.seen[line] = true
	st.natRules[chain] = append(st.natRules[chain], line)
}

func (st *state) filter(chain, args string) {
	line := "-A " + chain + args
	if st.seen[line] {
		return
	}
	st.seen[line] = true
	st.filterRules = append(st.filterRules, line)
}

// rulesText is the iptables-save view: filter, then nat, built-in chains
// first and the mode's chains sorted, as iptables-save prints them; within a
// chain the service ports' blocks in service-port order, each block in
// kube-proxy's order.
func (st *state) rulesText() string {
	var b strings.Builder
	st.header(&b)
	b.WriteString("*filter\n")
	b.WriteString(":INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n")
	b.WriteString(":" + chainNodePortNonLocal + " - [0:0]\n")
	fmt.Fprintf(&b, "-A INPUT -m comment --comment %q -j %s\n", commentNonLocal, chainNodePortNonLocal)
	for _, l := range st.filterRules {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteString("COMMIT\n")
	b.WriteString("*nat\n")
	b.WriteString(":PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n")
	chains := []string{chainNodePortContainer, chainNodePortHost, chainPortalsContainer, chainPortalsHost}
	for _, c := range chains {
		b.WriteString(":" + c + " - [0:0]\n")
	}
	fmt.Fprintf(&b, "-A PREROUTING -m comment --comment %q -j %s\n", commentPortals, chainPortalsContainer)
	fmt.Fprintf(&b, "-A PREROUTING -m addrtype --dst-type LOCAL -m comment --comment %q -j %s\n", commentNodePort, chainNodePortContainer)
	fmt.Fprintf(&b, "-A OUTPUT -m comment --comment %q -j %s\n", commentPortals, chainPortalsHost)
	fmt.Fprintf(&b, "-A OUTPUT -m addrtype --dst-type LOCAL -m comment --comment %q -j %s\n", commentNodePort, chainNodePortHost)
	for _, c := range chains {
		for _, l := range st.natRules[c] {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// header is the comment block on top of the rules: what this is and which
// proxy port svc2rules gave each service port.
func (st *state) header(b *strings.Builder) {
	fmt.Fprintf(b, "# svc2rules: kube-proxy %s userspace mode (--proxy-mode=userspace), %s, bind address %s", KubeProxyVersion, familyName(st.family), st.bindIP)
	if st.anyBind {
		fmt.Fprintf(b, ", host IP %s", st.hostIP)
	}
	b.WriteString("\n")
	load := "iptables-restore"
	if st.family == v1.IPv6Protocol {
		load = "ip6tables-restore"
	}
	fmt.Fprintf(b, "# Load with %s; the chains are kube-proxy's KUBE-PORTALS-*, KUBE-NODEPORT-*.\n", load)
	b.WriteString("# Proxy ports are not kube-proxy's: kube-proxy draws each at random from --proxy-port-range\n")
	b.WriteString("# (unset: the kernel picks an ephemeral port) and again after every restart. svc2rules assigns\n")
	if st.pr.placeholder {
		fmt.Fprintf(b, "# them in service-port order from %s; --proxy-port-range is unset, so they are placeholders.\n", st.pr.text)
	} else {
		fmt.Fprintf(b, "# them in service-port order from the start of --proxy-port-range %s.\n", st.pr.text)
	}
	for _, ps := range st.ports {
		if ps.proxyPort != 0 {
			fmt.Fprintf(b, "#   proxy port %d/%s: %s\n", ps.proxyPort, strings.ToLower(string(ps.Protocol)), ps.SPN)
		} else {
			fmt.Fprintf(b, "#   no proxy port: %s (%s)\n", ps.SPN, ps.Protocol)
		}
	}
	for _, ps := range st.ports {
		for _, p := range ps.problems {
			fmt.Fprintf(b, "# warning: %s: %s\n", ps.SPN, p)
		}
	}
}
