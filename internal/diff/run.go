package diff

import (
	"errors"
	"fmt"
	"io"
	"strings"

	v1 "k8s.io/api/core/v1"
	netutils "k8s.io/utils/net"

	"github.com/svc2rules/svc2rules/compiler"
	"github.com/svc2rules/svc2rules/internal/cli"
)

// Options say what to compare.
type Options struct {
	// Compile holds the backend and node settings (compile's flags); its
	// Files are ignored.
	Compile cli.CompileOptions
	// Old and New are the two manifest sets (files, directories or "-").
	// With VsBackend, only Old is used.
	Old, New []string
	// VsBackend, when set, compares Compile.Backend with this backend on
	// the manifests Old.
	VsBackend string
	Stdin     io.Reader
}

// Run compiles both sides and compares them.
func Run(o Options) (*Report, error) {
	if o.VsBackend != "" {
		if o.VsBackend == o.Compile.Backend {
			return nil, &cli.UsageError{Err: fmt.Errorf("--vs-backend %s is the --backend itself", o.VsBackend)}
		}
		a, err := compileSide(o.Compile, o.Old, o.Compile.Backend, o.Stdin)
		if err != nil {
			return nil, err
		}
		b, err := compileSide(o.Compile, o.Old, o.VsBackend, o.Stdin)
		if err != nil {
			return nil, err
		}
		return Compare(a, b, "backends"), nil
	}
	if sameStdin(o.Old, o.New) {
		return nil, &cli.UsageError{Err: errors.New("OLD and NEW cannot both read stdin")}
	}
	a, err := compileSide(o.Compile, o.Old, o.Compile.Backend, o.Stdin)
	if err != nil {
		return nil, fmt.Errorf("OLD: %w", err)
	}
	b, err := compileSide(o.Compile, o.New, o.Compile.Backend, o.Stdin)
	if err != nil {
		return nil, fmt.Errorf("NEW: %w", err)
	}
	a.Label, b.Label = label(o.Old), label(o.New)
	return Compare(a, b, "manifests"), nil
}

func sameStdin(a, b []string) bool {
	has := func(l []string) bool {
		for _, p := range l {
			if p == "-" {
				return true
			}
		}
		return false
	}
	return has(a) && has(b)
}

func label(paths []string) string { return strings.Join(paths, ",") }

// compileSide compiles paths with backend. An unknown or unimplemented
// backend is a clear error.
func compileSide(o cli.CompileOptions, paths []string, backend string, stdin io.Reader) (Side, error) {
	o.Files = paths
	o.Backend = backend
	o.Output = ""
	res, err := cli.Compile(o, stdin)
	if err != nil {
		if strings.Contains(err.Error(), "not implemented") {
			return Side{}, &cli.UsageError{Err: fmt.Errorf("backend %s: %v (diff needs both backends)", backend, err)}
		}
		return Side{}, err
	}
	return Side{Label: backend, Backend: backend, Plan: res.Plan, Output: res.Output, NodePorts: nodePorts(o, res.Plan)}, nil
}

// nodePorts says where NodePorts are accepted on the node with the
// options' backend, as the backends resolve --nodeport-addresses.
func nodePorts(o cli.CompileOptions, plan *compiler.Plan) string {
	if plan == nil {
		return ""
	}
	family := plan.Family
	var v4, v6 string
	for _, s := range o.NodeIPs {
		ip := netutils.ParseIPSloppy(s)
		if ip == nil {
			continue
		}
		if ip.To4() != nil && v4 == "" {
			v4 = ip.String()
		} else if ip.To4() == nil && v6 == "" {
			v6 = ip.String()
		}
	}
	if family == v1.IPv4Protocol && v4 == "" {
		v4 = plan.Node.IP
	}
	if family == v1.IPv6Protocol && v6 == "" {
		v6 = plan.Node.IP
	}
	raw := o.NodePortAddresses
	if len(raw) == 0 && o.Backend == "nft" {
		raw = []string{"primary"}
	}
	npa := compiler.ResolveNodePortAddresses(family, compiler.ExpandNodePortAddressKeywords(raw, v4, v6))
	localhost := false
	switch o.Backend {
	case "iptables":
		localhost = family == v1.IPv4Protocol && o.LocalhostNodePorts && npa.ContainsIPv4Loopback
	case "nft":
		localhost = plan.FeatureGates.KubeProxyNFTablesLocalhostNodePorts && npa.ContainsExplicitLoopback
	}
	if npa.MatchAll {
		if localhost {
			return "every local address, localhost included"
		}
		return "every local address except localhost"
	}
	var ips []string
	for _, ip := range npa.NodeIPs(plan.Node.Addresses) {
		if compiler.IsLoopback(ip) && !localhost {
			continue
		}
		ips = append(ips, ip)
	}
	if len(ips) == 0 {
		return "no address"
	}
	return strings.Join(ips, ", ")
}
