package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
	v1 "k8s.io/api/core/v1"
	netutils "k8s.io/utils/net"

	"github.com/svc2rules/svc2rules/backends/iptables"
	"github.com/svc2rules/svc2rules/backends/ipvs"
	"github.com/svc2rules/svc2rules/backends/nft"
	"github.com/svc2rules/svc2rules/backends/userspace"
	"github.com/svc2rules/svc2rules/compiler"
)

// CompileOptions are the flags of "svc2rules compile". Names, meanings and
// defaults follow kube-proxy's flags where kube-proxy has one.
type CompileOptions struct {
	Files     []string
	Recursive bool
	Output    string

	Backend  string
	IPFamily string

	NodeName      string
	NodeIPs       []string
	NodeAddresses []string
	Zone          string

	ClusterCIDRs           []string
	DetectLocalMode        string
	PodBridgeInterface     string
	PodInterfaceNamePrefix string

	MasqueradeAll     bool
	MasqueradeBit     int
	NodePortAddresses []string

	LocalhostNodePorts    bool
	NFAcct                bool
	ConntrackTCPBeLiberal bool
	IPTablesView          string

	NFTView string

	IPVSScheduler    string
	IPVSExcludeCIDRs []string
	IPVSSection      string

	ProxyPortRange   string
	UserspaceSection string

	ServiceCIDRs []string
	FeatureGates string
	ConfigFile   string

	// Stats prints rules, chains, sets and lines per table and the time of
	// each phase to stderr (stats.go).
	Stats bool

	// MaterializeFlags: allocation and endpoints from workloads (materialize.go).
	MaterializeFlags
}

// DefaultCompileOptions are the defaults shown by --help.
func DefaultCompileOptions() CompileOptions {
	return CompileOptions{
		Backend:            "iptables",
		IPFamily:           "ipv4",
		MasqueradeBit:      14,
		LocalhostNodePorts: true,
		NFAcct:             true,
		IPTablesView:       string(iptables.ViewSave),
		NFTView:            "dump",
		IPVSScheduler:      "rr",
	}
}

// AddFlags registers the compile flags on fs.
func (o *CompileOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&o.Files, "filename", "f", o.Files, "manifest file, directory (its *.yaml, *.yml, *.json) or - for stdin; repeatable")
	fs.BoolVarP(&o.Recursive, "recursive", "R", o.Recursive, "descend into subdirectories of -f directories")
	fs.StringVarP(&o.Output, "output", "o", o.Output, "write the rules to this file (written whole or not at all) instead of stdout")
	fs.StringVarP(&o.Backend, "backend", "b", o.Backend, "proxy mode: iptables, nft, ipvs or userspace (kube-proxy v1.25.16's legacy mode)")
	fs.StringVar(&o.IPFamily, "ip-family", o.IPFamily, "IP family of the proxier: ipv4 or ipv6 (kube-proxy runs one per family)")
	fs.StringVar(&o.NodeName, "node-name", o.NodeName, "kube-proxy --hostname-override: endpoints with this nodeName are local (empty: none is)")
	fs.Var(newListValue(&o.NodeIPs), "node-ip", "the node's primary IP, at most one per family (kube-proxy --bind-address / Node InternalIP); default: the InternalIP of the Node object named --node-name, else none (kube-proxy then uses 127.0.0.1 / ::1)")
	fs.Var(newListValue(&o.NodeAddresses), "node-addresses", "further IPs on the node's interfaces (resolve --nodeport-addresses CIDRs; ipvs NodePort virtual servers)")
	fs.StringVar(&o.Zone, "zone", o.Zone, "the node's topology.kubernetes.io/zone (a Node object named --node-name overrides it)")
	fs.Var(newListValue(&o.ClusterCIDRs), "cluster-cidr", "kube-proxy --cluster-cidr: pod CIDRs for the ClusterCIDR local-traffic detector (empty: no detector, kube-proxy's default); also where pods derived from workloads get their addresses (a family without one: 10.244.0.0/16, fd00:10:244::/64)")
	fs.StringVar(&o.DetectLocalMode, "detect-local-mode", o.DetectLocalMode, "kube-proxy --detect-local-mode: ClusterCIDR (default), NodeCIDR, BridgeInterface, InterfaceNamePrefix or None")
	fs.StringVar(&o.PodBridgeInterface, "pod-bridge-interface", o.PodBridgeInterface, "kube-proxy --pod-bridge-interface (with --detect-local-mode BridgeInterface)")
	fs.StringVar(&o.PodInterfaceNamePrefix, "pod-interface-name-prefix", o.PodInterfaceNamePrefix, "kube-proxy --pod-interface-name-prefix (with --detect-local-mode InterfaceNamePrefix)")
	fs.BoolVar(&o.MasqueradeAll, "masquerade-all", o.MasqueradeAll, "kube-proxy --masquerade-all: SNAT all traffic sent via service cluster IPs")
	fs.IntVar(&o.MasqueradeBit, "masquerade-bit", o.MasqueradeBit, "kube-proxy --iptables-masquerade-bit (0..31): mark 1<<bit, printed like kube-proxy (0x00004000)")
	fs.Var(newListValue(&o.NodePortAddresses), "nodeport-addresses", "kube-proxy --nodeport-addresses: CIDRs and the keywords primary, localhost, all (default: all local IPs for iptables and ipvs, primary for nft, as kube-proxy)")
	fs.BoolVar(&o.LocalhostNodePorts, "localhost-nodeports", o.LocalhostNodePorts, "kube-proxy --iptables-localhost-nodeports (iptables, IPv4)")
	fs.BoolVar(&o.NFAcct, "nfacct", o.NFAcct, "the node's kernel has nfacct: write kube-proxy's -m nfacct counter matches (the counters localhost_nps_accepted_pkts and ct_state_invalid_dropped_pkts must exist to load them)")
	fs.BoolVar(&o.ConntrackTCPBeLiberal, "conntrack-tcp-be-liberal", o.ConntrackTCPBeLiberal, "the node has net.netfilter.nf_conntrack_tcp_be_liberal=1 (kube-proxy --conntrack-tcp-be-liberal): no INVALID-state DROP rule")
	fs.StringVar(&o.IPTablesView, "iptables-view", o.IPTablesView, "iptables output form: save (the node's tables, iptables-save style, loadable with iptables-restore) or restore (exactly kube-proxy's iptables-restore --noflush payload)")
	fs.StringVar(&o.NFTView, "nft-view", o.NFTView, "nft output form: dump (the table's state as an nft -f script) or transaction (exactly what kube-proxy pipes to nft -f -)")
	fs.StringVar(&o.IPVSScheduler, "ipvs-scheduler", o.IPVSScheduler, "kube-proxy --ipvs-scheduler")
	fs.Var(newListValue(&o.IPVSExcludeCIDRs), "ipvs-exclude-cidrs", "kube-proxy --ipvs-exclude-cidrs")
	fs.StringVar(&o.IPVSSection, "ipvs-section", o.IPVSSection, "print one part of the ipvs output alone: ipvsadm, ipset, addresses or iptables (default: one sh script applying all four)")
	fs.StringVar(&o.ProxyPortRange, "proxy-port-range", o.ProxyPortRange, "userspace: kube-proxy --proxy-port-range (a-b, a+n or a); proxy ports are assigned from its start in service-port order (unset: placeholders from "+userspace.DefaultProxyPortRange+"; kube-proxy picks them at random)")
	fs.StringVar(&o.UserspaceSection, "userspace-section", o.UserspaceSection, "userspace output: rules (default: the iptables-save script) or table (per service port its proxy port, backends, affinity and what the mode ignores)")
	fs.Var(newListValue(&o.ServiceCIDRs), "service-cidrs", "ServiceCIDR ranges (added to those of ServiceCIDR objects in the input; nft drops traffic to unallocated addresses in them); also where missing ClusterIPs are allocated (none given: the ServiceCIDR objects, else 10.96.0.0/12,fd00:10:96::/112 for allocation only)")
	fs.StringVar(&o.FeatureGates, "feature-gates", o.FeatureGates, "kube-proxy --feature-gates, e.g. AllowServiceExternalIPs=false,KubeProxyNFTablesLocalhostNodePorts=true")
	fs.StringVar(&o.ConfigFile, "config", o.ConfigFile, "a KubeProxyConfiguration file; flags given on the command line override it")
	fs.BoolVar(&o.Stats, "stats", o.Stats, "print to stderr the size of the plan, the chains, rules, sets and lines per table, and the time of each phase (load, materialize, build, render, write)")
	o.addMaterializeFlags(fs)
}

// Result is a compiled output and the notes worth telling the user.
type Result struct {
	Output string
	Notes  []compiler.Note
	Plan   *compiler.Plan
	// Materialized is the cluster compiled: what was allocated and derived.
	Materialized *compiler.Materialized
	// Stats are set with --stats (stats.go).
	Stats *Stats
}

// UsageError is a bad flag value (exit status 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usageErr(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// Family returns the v1 family of --ip-family.
func (o *CompileOptions) Family() (v1.IPFamily, error) {
	switch strings.ToLower(o.IPFamily) {
	case "ipv4", "4", "v4":
		return v1.IPv4Protocol, nil
	case "ipv6", "6", "v6":
		return v1.IPv6Protocol, nil
	}
	return "", usageErr("--ip-family must be ipv4 or ipv6, not %q", o.IPFamily)
}

func validateCIDRs(flag string, cidrs []string) error {
	for _, c := range cidrs {
		if _, _, err := netutils.ParseCIDRSloppy(c); err != nil {
			return usageErr("--%s: invalid CIDR %q", flag, c)
		}
	}
	return nil
}

func validateIPs(flag string, ips []string) error {
	for _, s := range ips {
		if netutils.ParseIPSloppy(s) == nil {
			return usageErr("--%s: invalid IP %q", flag, s)
		}
	}
	return nil
}

// nodeIPsByFamily returns the --node-ip of each family ("" if none).
func nodeIPsByFamily(ips []string) (v4, v6 string) {
	for _, s := range ips {
		ip := netutils.ParseIPSloppy(s)
		if ip == nil {
			continue
		}
		if ip.To4() != nil {
			if v4 == "" {
				v4 = ip.String()
			}
		} else if v6 == "" {
			v6 = ip.String()
		}
	}
	return v4, v6
}

// Compile runs load → normalise → plan → backend for the options. stdin is
// read for "-f -".
func Compile(o CompileOptions, stdin io.Reader) (*Result, error) {
	family, err := o.Family()
	if err != nil {
		return nil, err
	}
	if err := validateIPs("node-ip", o.NodeIPs); err != nil {
		return nil, err
	}
	if v4, v6 := 0, 0; true {
		for _, s := range o.NodeIPs {
			if netutils.IsIPv6String(s) {
				v6++
			} else {
				v4++
			}
		}
		if v4 > 1 || v6 > 1 {
			return nil, usageErr("--node-ip takes at most one IP per family")
		}
	}
	if err := validateIPs("node-addresses", o.NodeAddresses); err != nil {
		return nil, err
	}
	if err := validateCIDRs("cluster-cidr", o.ClusterCIDRs); err != nil {
		return nil, err
	}
	if err := validateCIDRs("service-cidrs", o.ServiceCIDRs); err != nil {
		return nil, err
	}
	if err := validateCIDRs("ipvs-exclude-cidrs", o.IPVSExcludeCIDRs); err != nil {
		return nil, err
	}
	for _, a := range o.NodePortAddresses {
		switch a {
		case "primary", "localhost", "all":
		default:
			if _, _, err := netutils.ParseCIDRSloppy(a); err != nil {
				return nil, usageErr("--nodeport-addresses: %q is neither a CIDR nor primary, localhost or all", a)
			}
		}
	}
	if o.MasqueradeBit < 0 || o.MasqueradeBit > 31 {
		return nil, usageErr("--masquerade-bit must be within 0..31, not %d", o.MasqueradeBit)
	}
	if _, err := compiler.ParseFeatureGates(o.FeatureGates); err != nil {
		return nil, usageErr("--feature-gates: %v", err)
	}
	iface := o.PodInterfaceNamePrefix
	if o.DetectLocalMode == "BridgeInterface" {
		iface = o.PodBridgeInterface
	}
	detector, err := compiler.NewLocalDetector(family, o.DetectLocalMode, o.ClusterCIDRs, iface)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	switch o.Backend {
	case "iptables", "nft", "ipvs", "userspace":
	default:
		return nil, usageErr("--backend must be iptables, nft, ipvs or userspace, not %q", o.Backend)
	}

	if err := o.validateMaterializeFlags(); err != nil {
		return nil, err
	}

	var st *Stats
	if o.Stats {
		st = &Stats{}
	}
	phase := newPhaseTimer(st)
	in, err := compiler.Load(compiler.LoadOptions{Paths: o.Files, Recursive: o.Recursive, Stdin: stdin})
	if err != nil {
		return nil, err
	}
	phase.done("load")
	notes, mat, err := compiler.Materialize(in, o.materializeOptions())
	if err != nil {
		return nil, err
	}
	phase.done("materialize")
	plan, buildNotes, err := compiler.Build(in, compiler.Options{
		Family:        family,
		NodeName:      o.NodeName,
		NodeIPs:       o.NodeIPs,
		NodeAddresses: o.NodeAddresses,
		Zone:          o.Zone,
		ServiceCIDRs:  o.ServiceCIDRs,
		FeatureGates:  o.FeatureGates,
	})
	if err != nil {
		return nil, err
	}
	notes = append(notes, buildNotes...)
	phase.done("build")

	if o.DetectLocalMode == "NodeCIDR" {
		// kube-proxy's NodeCIDR detector uses the Node object's
		// spec.podCIDRs; without them in the input, --cluster-cidr stands in
		// for this node's pod CIDRs.
		cidrs := o.ClusterCIDRs
		if len(plan.Node.PodCIDRs) > 0 {
			cidrs = plan.Node.PodCIDRs
		}
		detector, err = compiler.NewLocalDetector(family, "NodeCIDR", cidrs, "")
		if err != nil {
			return nil, &UsageError{Err: fmt.Errorf("--detect-local-mode NodeCIDR: %v", err)}
		}
	}

	// --nodeport-addresses keywords expand with the node IPs as kube-proxy's
	// server does: flags first, else what the plan found (Node object).
	v4, v6 := nodeIPsByFamily(o.NodeIPs)
	if family == v1.IPv4Protocol && v4 == "" {
		v4 = plan.Node.IP
	}
	if family == v1.IPv6Protocol && v6 == "" {
		v6 = plan.Node.IP
	}
	npaRaw := o.NodePortAddresses
	if len(npaRaw) == 0 && o.Backend == "nft" {
		npaRaw = []string{"primary"}
	}
	npa := compiler.ResolveNodePortAddresses(family, compiler.ExpandNodePortAddressKeywords(npaRaw, v4, v6))

	res := &Result{Notes: notes, Plan: plan, Materialized: mat, Stats: st}
	switch o.Backend {
	case "iptables":
		view := iptables.View(o.IPTablesView)
		if view != iptables.ViewSave && view != iptables.ViewRestore {
			return nil, usageErr("--iptables-view must be save or restore, not %q", o.IPTablesView)
		}
		res.Output, err = iptables.Render(plan, iptables.Settings{
			MasqueradeAll:         o.MasqueradeAll,
			MasqueradeBit:         o.MasqueradeBit,
			LocalDetector:         detector,
			NodePortAddresses:     npa,
			LocalhostNodePorts:    o.LocalhostNodePorts,
			NFAcct:                o.NFAcct,
			ConntrackTCPBeLiberal: o.ConntrackTCPBeLiberal,
			View:                  view,
		})
	case "nft":
		view := nft.View(o.NFTView)
		if view != nft.ViewDump && view != nft.ViewTransaction {
			return nil, usageErr("--nft-view must be dump or transaction, not %q", o.NFTView)
		}
		res.Output, err = nft.Render(plan, nft.Settings{
			MasqueradeAll:     o.MasqueradeAll,
			MasqueradeBit:     o.MasqueradeBit,
			LocalDetector:     detector,
			NodePortAddresses: npa,
			View:              view,
		})
	case "ipvs":
		res.Output, err = compileIPVS(o, plan, detector, npa)
	case "userspace":
		section := userspace.Section(o.UserspaceSection)
		if section != "" && section != userspace.SectionRules && section != userspace.SectionTable {
			return nil, usageErr("--userspace-section must be rules or table, not %q", o.UserspaceSection)
		}
		if err := userspace.ValidatePortRange(o.ProxyPortRange); err != nil {
			return nil, usageErr("%v", err)
		}
		res.Output, err = userspace.Render(plan, userspace.Settings{
			Ports:          compiler.BuildUserspace(in),
			ProxyPortRange: o.ProxyPortRange,
			Section:        section,
		})
	}
	if err != nil {
		return nil, err
	}
	res.Output = withAllocationHeader(o, mat, res.Output)
	phase.done("render")
	if st != nil {
		planStats(st, res)
		countOutput(st, o, res.Output)
	}
	return res, nil
}

// listValue is a comma-separated list flag where, as with kube-proxy's string
// flags, the last occurrence wins (pflag's StringSlice would append instead).
type listValue struct{ p *[]string }

func newListValue(p *[]string) *listValue { return &listValue{p: p} }

func (v *listValue) Set(s string) error {
	*v.p = SplitComma(s)
	return nil
}

func (v *listValue) String() string { return strings.Join(*v.p, ",") }
func (v *listValue) Type() string   { return "strings" }

// compileIPVS runs the ipvs backend: the sh script, or with --ipvs-section one
// payload (--iptables-view save|restore chooses the iptables section's form).
func compileIPVS(o CompileOptions, plan *compiler.Plan, detector compiler.LocalDetector, npa compiler.NodePortAddresses) (string, error) {
	section := ipvs.Section(o.IPVSSection)
	switch section {
	case ipvs.SectionScript, ipvs.SectionIPVSAdm, ipvs.SectionIPSet, ipvs.SectionAddresses, ipvs.SectionIPTables:
	default:
		return "", usageErr("--ipvs-section must be ipvsadm, ipset, addresses or iptables, not %q", o.IPVSSection)
	}
	view := ipvs.IPTablesView(o.IPTablesView)
	if view != ipvs.IPTablesSave && view != ipvs.IPTablesRestore {
		return "", usageErr("--iptables-view must be save or restore, not %q", o.IPTablesView)
	}
	return ipvs.Render(plan, ipvs.Settings{
		Scheduler:         o.IPVSScheduler,
		ExcludeCIDRs:      o.IPVSExcludeCIDRs,
		MasqueradeAll:     o.MasqueradeAll,
		MasqueradeBit:     o.MasqueradeBit,
		LocalDetector:     detector,
		NodePortAddresses: npa,
		Section:           section,
		IPTablesView:      view,
	})
}
