package oracle

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// Backends are the svc2rules backends (-b/--backend values) and the kube-proxy
// mode each one reproduces.
var Backends = []string{"iptables", "nft", "ipvs"}

// kubeProxyMode maps an svc2rules backend name to kube-proxy's --proxy-mode.
func kubeProxyMode(backend string) (string, error) {
	switch backend {
	case "iptables":
		return "iptables", nil
	case "nft", "nftables":
		return "nftables", nil
	case "ipvs":
		return "ipvs", nil
	}
	return "", fmt.Errorf("unknown backend %q (iptables, nft or ipvs)", backend)
}

// Settings are svc2rules' compile settings: exactly the flags of
// `svc2rules compile` that change rules, with svc2rules' defaults. A golden
// scenario's `args` file holds them one per line (see ParseArgsFile).
type Settings struct {
	IPFamily               string // --ip-family ipv4|ipv6
	NodeName               string // --node-name
	NodeIP                 string // --node-ip: comma list, at most one per family
	NodeAddresses          string // --node-addresses: comma list of further local IPs
	ClusterCIDR            string // --cluster-cidr: comma list, at most one per family used
	DetectLocalMode        string // --detect-local-mode
	PodInterfaceNamePrefix string // --pod-interface-name-prefix
	PodBridgeInterface     string // --pod-bridge-interface
	MasqueradeAll          bool   // --masquerade-all
	MasqueradeBit          int    // --masquerade-bit
	NodePortAddresses      string // --nodeport-addresses
	NodePortAddressesSet   bool   // --nodeport-addresses given explicitly
	LocalhostNodePorts     bool   // --localhost-nodeports
	NFAcct                 bool   // --nfacct
	ConntrackTCPBeLiberal  bool   // --conntrack-tcp-be-liberal
	IPVSScheduler          string // --ipvs-scheduler
	IPVSExcludeCIDRs       string // --ipvs-exclude-cidrs
	ServiceCIDRs           string // --service-cidrs
	Zone                   string // --zone
	FeatureGates           string // --feature-gates
	explicit               map[string]bool
}

// DefaultSettings are svc2rules' defaults (the values used for flags absent
// from a scenario's args).
func DefaultSettings() *Settings {
	return &Settings{
		IPFamily:           "ipv4",
		DetectLocalMode:    "ClusterCIDR",
		MasqueradeBit:      14,
		LocalhostNodePorts: true,
		NFAcct:             true,
		IPVSScheduler:      "rr",
		explicit:           map[string]bool{},
	}
}

// FlagSet returns a pflag set bound to s, with svc2rules' flag names, that the
// oracle's CLI, the golden generator and the differential runner share.
func (s *Settings) FlagSet(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	s.AddFlags(fs)
	return fs
}

// AddFlags registers svc2rules' compile-setting flags on fs.
func (s *Settings) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&s.IPFamily, "ip-family", s.IPFamily, "ipv4 | ipv6: the family of the (single-stack) proxier")
	fs.StringVar(&s.NodeName, "node-name", s.NodeName, "kube-proxy --hostname-override: endpoints with this nodeName are local")
	fs.Var(listFlag{&s.NodeIP}, "node-ip", "the node's IPs, at most one per family (default: the Node object's addresses, else loopback as kube-proxy)")
	fs.Var(listFlag{&s.NodeAddresses}, "node-addresses", "further IPs on the node's interfaces (resolve --nodeport-addresses; ipvs NodePort virtual servers)")
	fs.StringVar(&s.ClusterCIDR, "cluster-cidr", s.ClusterCIDR, "kube-proxy --cluster-cidr (empty: no local-traffic detector in ClusterCIDR mode)")
	fs.StringVar(&s.DetectLocalMode, "detect-local-mode", s.DetectLocalMode, "ClusterCIDR | NodeCIDR | BridgeInterface | InterfaceNamePrefix | None")
	fs.StringVar(&s.PodInterfaceNamePrefix, "pod-interface-name-prefix", s.PodInterfaceNamePrefix, "kube-proxy --pod-interface-name-prefix (detect-local-mode InterfaceNamePrefix)")
	fs.StringVar(&s.PodBridgeInterface, "pod-bridge-interface", s.PodBridgeInterface, "kube-proxy --pod-bridge-interface (detect-local-mode BridgeInterface)")
	fs.BoolVar(&s.MasqueradeAll, "masquerade-all", s.MasqueradeAll, "kube-proxy --masquerade-all")
	fs.IntVar(&s.MasqueradeBit, "masquerade-bit", s.MasqueradeBit, "kube-proxy --iptables-masquerade-bit (mark = fmt.Sprintf(\"%#08x\", 1<<bit))")
	fs.Var(listFlag{&s.NodePortAddresses}, "nodeport-addresses", "kube-proxy --nodeport-addresses: CIDRs and/or primary, localhost, all (default: all local IPs for iptables/ipvs, primary for nft)")
	fs.BoolVar(&s.LocalhostNodePorts, "localhost-nodeports", s.LocalhostNodePorts, "kube-proxy --iptables-localhost-nodeports")
	fs.BoolVar(&s.NFAcct, "nfacct", s.NFAcct, "the kernel supports nfacct (iptables -m nfacct counters)")
	fs.BoolVar(&s.ConntrackTCPBeLiberal, "conntrack-tcp-be-liberal", s.ConntrackTCPBeLiberal, "sysctl nf_conntrack_tcp_be_liberal=1 (no INVALID DROP rule)")
	fs.StringVar(&s.IPVSScheduler, "ipvs-scheduler", s.IPVSScheduler, "kube-proxy --ipvs-scheduler")
	fs.Var(listFlag{&s.IPVSExcludeCIDRs}, "ipvs-exclude-cidrs", "kube-proxy --ipvs-exclude-cidrs")
	fs.Var(listFlag{&s.ServiceCIDRs}, "service-cidrs", "ServiceCIDRs (added to those of ServiceCIDR objects in the input)")
	fs.StringVar(&s.Zone, "zone", s.Zone, "the node's topology.kubernetes.io/zone (a Node object named --node-name overrides it)")
	fs.Var(listFlag{&s.FeatureGates}, "feature-gates", "kube-proxy --feature-gates")
	// svc2rules flags that shape what svc2rules derives from the manifests
	// (allocation, workloads, the userspace backend) but not what kube-proxy
	// sees: accepted and ignored, so that a scenario's args parse as is.
	for _, name := range IgnoredFlags {
		fs.Var(&ignoredFlag{}, name, "svc2rules only; ignored by the oracle")
		if name == "no-allocate" {
			fs.Lookup(name).NoOptDefVal = "true"
		}
		_ = fs.MarkHidden(name)
	}
}

// IgnoredFlags are svc2rules compile flags that do not reach kube-proxy
// (golden scenarios with them run the oracle on materialized.yaml).
var IgnoredFlags = []string{"nodes", "no-allocate", "service-node-port-range", "proxy-port-range"}

type ignoredFlag struct{ v string }

func (f *ignoredFlag) String() string     { return f.v }
func (f *ignoredFlag) Set(v string) error { f.v = v; return nil }
func (f *ignoredFlag) Type() string       { return "string" }

// listFlag is a comma-separated list flag; like svc2rules' list flags (and
// kube-proxy's --cluster-cidr), the last one given wins.
type listFlag struct{ p *string }

func (f listFlag) String() string {
	if f.p == nil {
		return ""
	}
	return *f.p
}

func (f listFlag) Set(v string) error {
	*f.p = strings.Join(splitList(v), ",")
	return nil
}

func (f listFlag) Type() string { return "strings" }

// markExplicit records which flags were set (after fs.Parse).
func (s *Settings) markExplicit(fs *pflag.FlagSet) {
	if s.explicit == nil {
		s.explicit = map[string]bool{}
	}
	fs.Visit(func(f *pflag.Flag) { s.explicit[f.Name] = true })
	s.NodePortAddressesSet = s.explicit["nodeport-addresses"]
}

// ParseArgs parses svc2rules compile flags (e.g. the lines of an args file) over
// svc2rules' defaults. Positional arguments are an error.
func ParseArgs(args []string) (*Settings, error) {
	s := DefaultSettings()
	fs := s.FlagSet("args")
	fs.SetOutput(new(bytes.Buffer))
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	s.markExplicit(fs)
	return s, nil
}

// AfterParse must be called by code that registered the flags with AddFlags on
// its own FlagSet, after parsing.
func (s *Settings) AfterParse(fs *pflag.FlagSet) { s.markExplicit(fs) }

// SplitArgsFile returns the arguments of an args file: one `--flag=value` per
// line; blank lines and lines starting with # are ignored, as is anything after
// " #" on a line.
func SplitArgsFile(data []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.Index(line, " #"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		out = append(out, line)
	}
	return out
}

// ParseArgsFile parses the content of an args file.
func ParseArgsFile(data []byte) (*Settings, error) {
	return ParseArgs(SplitArgsFile(data))
}

// Args renders s back as svc2rules flags: only the settings that differ from
// the defaults (or were given explicitly), in a fixed order, `--flag=value`.
func (s *Settings) Args() []string {
	d := DefaultSettings()
	var out []string
	str := func(name, v, def string) {
		if v != def || (s.explicit[name] && v != "") {
			out = append(out, "--"+name+"="+v)
		}
	}
	boolean := func(name string, v, def bool) {
		if v != def {
			out = append(out, "--"+name+"="+strconv.FormatBool(v))
		}
	}
	str("ip-family", s.IPFamily, d.IPFamily)
	str("node-name", s.NodeName, d.NodeName)
	str("node-ip", s.NodeIP, d.NodeIP)
	str("node-addresses", s.NodeAddresses, d.NodeAddresses)
	str("cluster-cidr", s.ClusterCIDR, d.ClusterCIDR)
	str("detect-local-mode", s.DetectLocalMode, d.DetectLocalMode)
	str("pod-interface-name-prefix", s.PodInterfaceNamePrefix, d.PodInterfaceNamePrefix)
	str("pod-bridge-interface", s.PodBridgeInterface, d.PodBridgeInterface)
	boolean("masquerade-all", s.MasqueradeAll, d.MasqueradeAll)
	if s.MasqueradeBit != d.MasqueradeBit {
		out = append(out, "--masquerade-bit="+strconv.Itoa(s.MasqueradeBit))
	}
	if s.NodePortAddressesSet || s.NodePortAddresses != "" {
		out = append(out, "--nodeport-addresses="+s.NodePortAddresses)
	}
	boolean("localhost-nodeports", s.LocalhostNodePorts, d.LocalhostNodePorts)
	boolean("nfacct", s.NFAcct, d.NFAcct)
	boolean("conntrack-tcp-be-liberal", s.ConntrackTCPBeLiberal, d.ConntrackTCPBeLiberal)
	str("ipvs-scheduler", s.IPVSScheduler, d.IPVSScheduler)
	str("ipvs-exclude-cidrs", s.IPVSExcludeCIDRs, d.IPVSExcludeCIDRs)
	str("service-cidrs", s.ServiceCIDRs, d.ServiceCIDRs)
	str("zone", s.Zone, d.Zone)
	str("feature-gates", s.FeatureGates, d.FeatureGates)
	return out
}

// Clone returns a deep copy of s.
func (s *Settings) Clone() *Settings {
	c := *s
	c.explicit = map[string]bool{}
	for k, v := range s.explicit {
		c.explicit[k] = v
	}
	return &c
}

// SetExplicit marks a flag as explicitly given (used by generators that build
// Settings in code, so that Args() renders e.g. an explicit empty
// --nodeport-addresses).
func (s *Settings) SetExplicit(name string) {
	if s.explicit == nil {
		s.explicit = map[string]bool{}
	}
	s.explicit[name] = true
	if name == "nodeport-addresses" {
		s.NodePortAddressesSet = true
	}
}

// ArgsFile renders s as the content of an args file.
func (s *Settings) ArgsFile(comment string) []byte {
	var b bytes.Buffer
	for _, l := range strings.Split(strings.TrimSpace(comment), "\n") {
		if l != "" {
			fmt.Fprintf(&b, "# %s\n", l)
		}
	}
	for _, a := range s.Args() {
		b.WriteString(a + "\n")
	}
	return b.Bytes()
}
