package compiler

import (
	"fmt"
	"net"
	"regexp"
	"strings"

	v1 "k8s.io/api/core/v1"
	netutils "k8s.io/utils/net"
)

// Options are the node facts and cluster settings that shape the plan. They
// mirror kube-proxy's flags (see cmd/svc2rules for the flag names).
type Options struct {
	// Family selects the proxier: v1.IPv4Protocol or v1.IPv6Protocol.
	Family v1.IPFamily
	// NodeName is --hostname-override.
	NodeName string
	// NodeIPs are the node's primary IPs, at most one per family (kube-proxy's
	// --bind-address / Node addresses). Empty: taken from the InternalIP
	// addresses of the Node object named NodeName, if the input has one.
	NodeIPs []string
	// NodeAddresses are further addresses on the node's interfaces.
	NodeAddresses []string
	// Zone is the node's topology.kubernetes.io/zone label; a Node object named
	// NodeName in the input overrides it (as kube-proxy's node informer does).
	Zone string
	// ServiceCIDRs are added to the spec.cidrs of ServiceCIDR objects.
	ServiceCIDRs []string
	// FeatureGates as kube-proxy's --feature-gates "A=true,B=false".
	FeatureGates string
}

// ParseFeatureGates reads a --feature-gates value over kube-proxy v1.37's
// defaults. Unknown gates are an error, as in kube-proxy; gates that do not
// change rules are accepted and ignored.
func ParseFeatureGates(s string) (FeatureGates, error) {
	fg := FeatureGates{AllowServiceExternalIPs: true}
	for _, kv := range splitList(s) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fg, fmt.Errorf("feature gate %q: want Name=true|false", kv)
		}
		var b bool
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true":
			b = true
		case "false":
			b = false
		default:
			return fg, fmt.Errorf("feature gate %q: value must be true or false", kv)
		}
		switch strings.TrimSpace(k) {
		case "AllowServiceExternalIPs":
			fg.AllowServiceExternalIPs = b
		case "KubeProxyNFTablesLocalhostNodePorts":
			fg.KubeProxyNFTablesLocalhostNodePorts = b
		case "PreferSameTrafficDistribution":
			if !b {
				return fg, fmt.Errorf("feature gate PreferSameTrafficDistribution is GA and locked to true in v1.37")
			}
		default:
			return fg, fmt.Errorf("unknown feature gate %q (svc2rules knows AllowServiceExternalIPs, KubeProxyNFTablesLocalhostNodePorts, PreferSameTrafficDistribution)", k)
		}
	}
	return fg, nil
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// SplitList splits a comma-separated flag value, dropping blank entries.
func SplitList(s string) []string { return splitList(s) }

// NodePortAddresses is kube-proxy's resolved --nodeport-addresses for one family
// (pkg/proxy/util.NodePortAddresses).
type NodePortAddresses struct {
	// MatchAll: no CIDR of the family was given, or one of them is a zero CIDR.
	MatchAll bool
	// CIDRs of the family (normalised), in flag order; a single zero CIDR when MatchAll.
	CIDRs []string
	// ContainsIPv4Loopback: an IPv4 CIDR that is loopback or contains 127.0.0.0.
	ContainsIPv4Loopback bool
	// ContainsExplicitLoopback: a CIDR whose network address is loopback.
	ContainsExplicitLoopback bool

	nets []*net.IPNet
}

// ExpandNodePortAddressKeywords replaces the keywords primary, localhost and all
// as cmd/kube-proxy does. nodeIPs holds the node's primary IP per family
// ("" when unknown; primary then contributes nothing for that family).
func ExpandNodePortAddressKeywords(entries []string, nodeIPv4, nodeIPv6 string) []string {
	var out []string
	for _, e := range entries {
		switch e {
		case "primary":
			if ip := netutils.ParseIPSloppy(nodeIPv4); ip != nil && !ip.IsLoopback() {
				out = append(out, ip.String()+"/32")
			}
			if ip := netutils.ParseIPSloppy(nodeIPv6); ip != nil && !ip.IsLoopback() {
				out = append(out, ip.String()+"/128")
			}
		case "localhost":
			out = append(out, "127.0.0.0/8", "::1/128")
		case "all":
			out = append(out, "0.0.0.0/0", "::/0")
		default:
			out = append(out, e)
		}
	}
	return out
}

// ResolveNodePortAddresses builds the family's NodePortAddresses from expanded
// CIDR strings (already validated), following NewNodePortAddresses.
func ResolveNodePortAddresses(family v1.IPFamily, cidrStrings []string) NodePortAddresses {
	var npa NodePortAddresses
	var mine []string
	for _, s := range cidrStrings {
		if (family == v1.IPv4Protocol) == netutils.IsIPv4CIDRString(s) {
			mine = append(mine, s)
		}
	}
	if len(mine) == 0 {
		if family == v1.IPv4Protocol {
			mine = []string{"0.0.0.0/0"}
		} else {
			mine = []string{"::/0"}
		}
	}
	for _, s := range mine {
		if _, cidr, err := netutils.ParseCIDRSloppy(s); err == nil && cidr.IP.IsLoopback() {
			npa.ContainsExplicitLoopback = true
			break
		}
	}
	ipv4LoopbackStart := net.IPv4(127, 0, 0, 0)
	for _, s := range mine {
		_, cidr, err := netutils.ParseCIDRSloppy(s)
		if err != nil {
			continue
		}
		if netutils.IsIPv4CIDR(cidr) && (cidr.IP.IsLoopback() || cidr.Contains(ipv4LoopbackStart)) {
			npa.ContainsIPv4Loopback = true
		}
		if ones, _ := cidr.Mask.Size(); ones == 0 {
			npa.nets = []*net.IPNet{cidr}
			npa.CIDRs = []string{cidr.String()}
			npa.MatchAll = true
			break
		}
		npa.nets = append(npa.nets, cidr)
		npa.CIDRs = append(npa.CIDRs, cidr.String())
	}
	return npa
}

// NodeIPs returns the node addresses inside any of the CIDRs, de-duplicated,
// sorted by string (kube-proxy iterates a map here; sorting is one of its orders).
func (npa NodePortAddresses) NodeIPs(addresses []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range addresses {
		ip := netutils.ParseIPSloppy(a)
		if ip == nil {
			continue
		}
		for _, cidr := range npa.nets {
			if cidr.Contains(ip) && !seen[ip.String()] {
				seen[ip.String()] = true
				out = append(out, ip.String())
			}
		}
	}
	sortStrings(out)
	return out
}

// interfaceNameRE is what svc2rules accepts as a local-detector interface
// name (Linux allows more, but nothing a rule could be broken with).
var interfaceNameRE = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,15}$`)

// LocalDetector is kube-proxy's local-traffic detector for one family.
type LocalDetector struct {
	// Mode: "" (none), "ClusterCIDR", "NodeCIDR", "BridgeInterface" or "InterfaceNamePrefix".
	Mode string
	// Value: the CIDR (normalised) or the interface name / prefix.
	Value string
}

// IsImplemented reports whether a detector is configured.
func (d LocalDetector) IsImplemented() bool { return d.Mode != "" && d.Value != "" }

// IfLocal returns the iptables match for "traffic comes from a local pod".
func (d LocalDetector) IfLocal() []string {
	switch d.Mode {
	case "ClusterCIDR", "NodeCIDR":
		return []string{"-s", d.Value}
	case "BridgeInterface":
		return []string{"-i", d.Value}
	case "InterfaceNamePrefix":
		return []string{"-i", d.Value + "+"}
	}
	return nil
}

// IfNotLocal returns the iptables match for "traffic does not come from a local pod".
func (d LocalDetector) IfNotLocal() []string {
	switch d.Mode {
	case "ClusterCIDR", "NodeCIDR":
		return []string{"!", "-s", d.Value}
	case "BridgeInterface":
		return []string{"!", "-i", d.Value}
	case "InterfaceNamePrefix":
		return []string{"!", "-i", d.Value + "+"}
	}
	return nil
}

// NewLocalDetector resolves kube-proxy's --detect-local-mode for a family.
// mode "" means ClusterCIDR (kube-proxy's default); with ClusterCIDR/NodeCIDR the
// first CIDR of the family from cidrs is used, and none means no detector.
func NewLocalDetector(family v1.IPFamily, mode string, cidrs []string, iface string) (LocalDetector, error) {
	switch mode {
	case "", "ClusterCIDR", "NodeCIDR":
		if mode == "" {
			mode = "ClusterCIDR"
		}
		for _, c := range cidrs {
			_, n, err := netutils.ParseCIDRSloppy(c)
			if err != nil {
				return LocalDetector{}, fmt.Errorf("invalid CIDR %q: %v", c, err)
			}
			if netutils.IsIPv6CIDR(n) == (family == v1.IPv6Protocol) {
				return LocalDetector{Mode: mode, Value: n.String()}, nil
			}
		}
		return LocalDetector{}, nil
	case "BridgeInterface", "InterfaceNamePrefix":
		if iface == "" {
			return LocalDetector{}, fmt.Errorf("--detect-local-mode %s needs an interface name", mode)
		}
		if !interfaceNameRE.MatchString(iface) {
			// It is written into rules (-i NAME, iifname NAME): only what a
			// Linux interface name may hold, and no quote, space or newline.
			return LocalDetector{}, fmt.Errorf("--detect-local-mode %s: invalid interface name %q (1 to 15 of A-Z a-z 0-9 . _ @ -)", mode, iface)
		}
		return LocalDetector{Mode: mode, Value: iface}, nil
	case "None":
		return LocalDetector{}, nil
	}
	return LocalDetector{}, fmt.Errorf("unknown --detect-local-mode %q (ClusterCIDR, NodeCIDR, BridgeInterface, InterfaceNamePrefix or None)", mode)
}
