package oracle

import (
	"fmt"
	"net"
	"strings"

	v1 "k8s.io/api/core/v1"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
	utilnode "k8s.io/kubernetes/pkg/util/node"
	netutils "k8s.io/utils/net"
)

// Config is the resolved kube-proxy configuration of one single-stack proxier:
// what cmd/kube-proxy would hand to NewProxier for the given svc2rules settings.
type Config struct {
	Mode   string // kube-proxy mode: iptables | nftables | ipvs
	Family v1.IPFamily

	NodeName string
	// NodeIP is the proxier's node IP of Family (loopback when unknown, as
	// cmd/kube-proxy's detectNodeIPs).
	NodeIP net.IP
	// NodeAddresses are the addresses of the (fake) host interface "eth0": the
	// node IPs (both families, unless loopback) and --node-addresses. The fake
	// "lo" interface has 127.0.0.1/8 and ::1/128.
	NodeAddresses []net.IP

	// Detector is the local-traffic detector of Family (getLocalDetectors).
	Detector proxyutil.LocalTrafficDetector

	MasqueradeAll  bool
	MasqueradeMark string // what the proxier gets; NewProxier computes fmt.Sprintf("%#08x", 1<<bit)

	// NodePortAddresses after keyword expansion (primary/localhost/all), as CIDRs.
	NodePortAddresses []string

	// iptables only
	LocalhostNodePorts  bool
	NFAcct              bool
	ConntrackTCPLiberal bool

	// ipvs only
	IPVSScheduler    string
	IPVSExcludeCIDRs []string

	// ServiceCIDRs from the settings (added to those from ServiceCIDR objects).
	ServiceCIDRs []string

	// Zone is the node's topology.kubernetes.io/zone label (a Node object named
	// NodeName in the input overrides it).
	Zone string

	FeatureGates string

	// UpstreamFakeRestore makes the fake iptables use the upstream (quadratic)
	// FakeIPTables.RestoreAll/ParseIPTablesDump instead of the indexed copies.
	UpstreamFakeRestore bool

	// UpstreamFixture reproduces the proxier that the upstream unit tests'
	// NewFakeProxier() builds (only used by the cross-checks against upstream's
	// own expected output; see upstream_test.go).
	UpstreamFixture bool
}

// masqueradeMarkForBit is what NewProxier does in all three backends.
func masqueradeMarkForBit(bit int) string {
	return fmt.Sprintf("%#08x", 1<<uint(bit))
}

// expandNodePortAddresses is cmd/kube-proxy/app.expandNodePortAddressKeywords
// (unexported upstream; copied from v1.37.2).
func expandNodePortAddresses(raw []string, nodeIPs map[v1.IPFamily]net.IP) []string {
	var expanded []string
	for _, addr := range raw {
		switch addr {
		case "primary":
			if ip := nodeIPs[v1.IPv4Protocol]; ip != nil && !ip.IsLoopback() {
				expanded = append(expanded, fmt.Sprintf("%s/32", ip.String()))
			}
			if ip := nodeIPs[v1.IPv6Protocol]; ip != nil && !ip.IsLoopback() {
				expanded = append(expanded, fmt.Sprintf("%s/128", ip.String()))
			}
		case "localhost":
			expanded = append(expanded, "127.0.0.0/8", "::1/128")
		case "all":
			expanded = append(expanded, proxyutil.IPv4ZeroCIDR, proxyutil.IPv6ZeroCIDR)
		default:
			expanded = append(expanded, addr)
		}
	}
	return expanded
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// detectNodeIPs is cmd/kube-proxy/app.detectNodeIPs without a bind address:
// loopback for every family, overridden by the node's IPs (the first gives the
// primary family, a second one the other family).
func detectNodeIPs(rawNodeIPs []net.IP) map[v1.IPFamily]net.IP {
	nodeIPs := map[v1.IPFamily]net.IP{
		v1.IPv4Protocol: net.IPv4(127, 0, 0, 1),
		v1.IPv6Protocol: net.IPv6loopback,
	}
	for _, ip := range rawNodeIPs {
		if netutils.IsIPv4(ip) {
			nodeIPs[v1.IPv4Protocol] = ip
		} else {
			nodeIPs[v1.IPv6Protocol] = ip
		}
	}
	return nodeIPs
}

// resolveConfig turns svc2rules settings for one backend into the kube-proxy
// configuration, using the input's Node object (named --node-name) where
// kube-proxy would: its addresses give the node IPs when --node-ip is not set
// (NodeManager.NodeIPs), its spec.podCIDRs drive detect-local-mode NodeCIDR.
func resolveConfig(backend string, s *Settings, in *Inputs) (*Config, error) {
	mode, err := kubeProxyMode(backend)
	if err != nil {
		return nil, err
	}
	c := &Config{
		Mode:                mode,
		NodeName:            s.NodeName,
		MasqueradeAll:       s.MasqueradeAll,
		LocalhostNodePorts:  s.LocalhostNodePorts,
		NFAcct:              s.NFAcct,
		ConntrackTCPLiberal: s.ConntrackTCPBeLiberal,
		IPVSScheduler:       s.IPVSScheduler,
		IPVSExcludeCIDRs:    splitList(s.IPVSExcludeCIDRs),
		ServiceCIDRs:        splitList(s.ServiceCIDRs),
		Zone:                s.Zone,
		FeatureGates:        s.FeatureGates,
	}
	switch strings.ToLower(s.IPFamily) {
	case "ipv4", "4":
		c.Family = v1.IPv4Protocol
	case "ipv6", "6":
		c.Family = v1.IPv6Protocol
	default:
		return nil, fmt.Errorf("--ip-family must be ipv4 or ipv6 (got %q)", s.IPFamily)
	}
	if s.MasqueradeBit < 0 || s.MasqueradeBit > 31 {
		return nil, fmt.Errorf("--masquerade-bit must be within 0..31 (got %d)", s.MasqueradeBit)
	}
	c.MasqueradeMark = masqueradeMarkForBit(s.MasqueradeBit)

	// Node IPs.
	var rawNodeIPs []net.IP
	seenFamily := map[bool]bool{}
	for _, a := range splitList(s.NodeIP) {
		ip := netutils.ParseIPSloppy(a)
		if ip == nil {
			return nil, fmt.Errorf("invalid --node-ip %q", a)
		}
		if seenFamily[netutils.IsIPv4(ip)] {
			return nil, fmt.Errorf("--node-ip %q: at most one IP per family", s.NodeIP)
		}
		seenFamily[netutils.IsIPv4(ip)] = true
		rawNodeIPs = append(rawNodeIPs, ip)
	}
	node := in.node(s.NodeName)
	if len(rawNodeIPs) == 0 && node != nil {
		// NodeManager: utilnode.GetNodeHostIPs(node) (InternalIP, then ExternalIP;
		// at most one per family). An error means "no IPs".
		if ips, err := utilnode.GetNodeHostIPs(node); err == nil {
			rawNodeIPs = ips
		}
	}
	nodeIPs := detectNodeIPs(rawNodeIPs)
	c.NodeIP = nodeIPs[c.Family]

	// Interface addresses: eth0 carries the (non-loopback) node IPs and the
	// further --node-addresses.
	seen := map[string]bool{}
	addAddr := func(ip net.IP) {
		if ip == nil || ip.IsLoopback() || seen[ip.String()] {
			return
		}
		seen[ip.String()] = true
		c.NodeAddresses = append(c.NodeAddresses, ip)
	}
	addAddr(nodeIPs[v1.IPv4Protocol])
	addAddr(nodeIPs[v1.IPv6Protocol])
	for _, a := range splitList(s.NodeAddresses) {
		ip := netutils.ParseIPSloppy(a)
		if ip == nil {
			return nil, fmt.Errorf("invalid --node-addresses entry %q", a)
		}
		addAddr(ip)
	}

	// --nodeport-addresses; nftables defaults to "primary"
	// (cmd/kube-proxy/app/server_linux.go platformApplyDefaults).
	npa := splitList(s.NodePortAddresses)
	if len(npa) == 0 && c.Mode == "nftables" {
		npa = []string{"primary"}
	}
	c.NodePortAddresses = expandNodePortAddresses(npa, nodeIPs)
	for _, cidr := range c.NodePortAddresses {
		if _, _, err := netutils.ParseCIDRSloppy(cidr); err != nil {
			return nil, fmt.Errorf("invalid --nodeport-addresses entry %q: %v", cidr, err)
		}
	}

	// Local-traffic detector (getLocalDetectors).
	c.Detector = proxyutil.NewNoOpLocalDetector()
	byCIDR := func(cidrs []string) error {
		for _, cidr := range cidrs {
			if _, _, err := netutils.ParseCIDRSloppy(cidr); err != nil {
				return fmt.Errorf("invalid CIDR %q: %v", cidr, err)
			}
		}
		for family, cs := range proxyutil.MapCIDRsByIPFamily(cidrs) {
			if family == c.Family && len(cs) > 0 {
				c.Detector = proxyutil.NewDetectLocalByCIDR(cs[0].String())
			}
		}
		return nil
	}
	switch s.DetectLocalMode {
	case "", "ClusterCIDR":
		if err := byCIDR(splitList(s.ClusterCIDR)); err != nil {
			return nil, fmt.Errorf("--cluster-cidr: %v", err)
		}
	case "NodeCIDR":
		// kube-proxy uses the Node's spec.podCIDRs; without a Node object in the
		// input, --cluster-cidr stands in for them.
		cidrs := splitList(s.ClusterCIDR)
		if node != nil && len(node.Spec.PodCIDRs) > 0 {
			cidrs = node.Spec.PodCIDRs // NodeManager.PodCIDRs()
		}
		if err := byCIDR(cidrs); err != nil {
			return nil, fmt.Errorf("detect-local-mode NodeCIDR: %v", err)
		}
	case "BridgeInterface":
		if s.PodBridgeInterface == "" {
			return nil, fmt.Errorf("--detect-local-mode=BridgeInterface needs --pod-bridge-interface")
		}
		c.Detector = proxyutil.NewDetectLocalByBridgeInterface(s.PodBridgeInterface)
	case "InterfaceNamePrefix":
		if s.PodInterfaceNamePrefix == "" {
			return nil, fmt.Errorf("--detect-local-mode=InterfaceNamePrefix needs --pod-interface-name-prefix")
		}
		c.Detector = proxyutil.NewDetectLocalByInterfaceNamePrefix(s.PodInterfaceNamePrefix)
	case "None":
	default:
		return nil, fmt.Errorf("unknown --detect-local-mode %q (ClusterCIDR, NodeCIDR, BridgeInterface, InterfaceNamePrefix or None)", s.DetectLocalMode)
	}
	return c, nil
}
