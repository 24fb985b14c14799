package userspace

import (
	"fmt"

	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/svc2rules/svc2rules/compiler"
)

// Section selects what Render prints.
type Section string

const (
	// SectionRules (the default) is the iptables-save script of the mode's
	// rules, loadable with iptables-restore (ip6tables-restore for IPv6).
	SectionRules Section = "rules"
	// SectionTable is the proxy's own state, which no rule shows: per
	// service port its proxy port, portals, backends, affinity and what the
	// mode ignores.
	SectionTable Section = "table"
)

// DefaultProxyPortRange is where svc2rules takes proxy ports from when
// --proxy-port-range is unset. kube-proxy then binds port 0 and the kernel
// picks an ephemeral port (net.ipv4.ip_local_port_range, 32768-60999 by
// default); this range lies inside it and above the NodePort range, and its
// numbers are placeholders.
const DefaultProxyPortRange = "40000-60999"

// Settings are the kube-proxy v1.25 settings and node facts that change the
// userspace mode's rules.
type Settings struct {
	// Ports is the userspace view of the input (compiler.BuildUserspace).
	// Nil: derived from the plan with compiler.UserspacePortsFromPlan, an
	// approximation (family-filtered addresses, EndpointSlice endpoints).
	Ports []*compiler.UserspacePort
	// ProxyPortRange is kube-proxy's --proxy-port-range ("a-b", "a+n",
	// "a"; "", "0" or "0-0" = unset: DefaultProxyPortRange, placeholders).
	// Proxy ports are assigned from its start in service-port order.
	ProxyPortRange string
	// BindAddress is kube-proxy's --bind-address ("" = 0.0.0.0 / ::). With
	// the unspecified address container traffic is REDIRECTed and host
	// traffic DNATed to the node IP; with a specific address both are
	// DNATed to it.
	BindAddress string
	// Section selects the output (SectionRules when empty).
	Section Section
}

// portRange is a parsed --proxy-port-range.
type portRange struct {
	text        string // as printed in the header
	base, size  int
	placeholder bool // the flag was unset
}

// parsePortRange reads --proxy-port-range like kube-proxy
// (apimachinery's utilnet.ParsePortRange).
func parsePortRange(s string) (portRange, error) {
	pr, err := utilnet.ParsePortRange(s)
	if err != nil {
		return portRange{}, fmt.Errorf("userspace: --proxy-port-range %q: %v", s, err)
	}
	if pr.Base == 0 {
		def, _ := utilnet.ParsePortRange(DefaultProxyPortRange)
		return portRange{text: DefaultProxyPortRange, base: def.Base, size: def.Size, placeholder: true}, nil
	}
	return portRange{text: pr.String(), base: pr.Base, size: pr.Size}, nil
}

// ValidatePortRange checks a --proxy-port-range value.
func ValidatePortRange(s string) error {
	_, err := parsePortRange(s)
	return err
}
