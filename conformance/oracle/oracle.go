// Package oracle runs the real kube-proxy (k8s.io/kubernetes v1.37.2) rule
// generators offline, against upstream's fake iptables / nftables / ipvs / ipset
// / netlink implementations, for svc2rules' input and settings, and renders the
// result in svc2rules' output forms. See ../README.md.
//
// Everything that generates rules (each proxier's syncProxyRules and all it
// calls) is unmodified upstream code, entered through the exported informer
// callbacks. Only the Proxier structs are assembled by this package (the way
// upstream's NewFakeProxier does, with the values NewProxier would compute), and
// the output is sorted where kube-proxy's order is Go-map random.
package oracle

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/klog/v2"
	netutils "k8s.io/utils/net"
)

// KubernetesVersion is the k8s.io/kubernetes version whose kube-proxy code is
// linked in (see go.mod).
const KubernetesVersion = "v1.37.2"

// RunOptions are the oracle's own knobs (not svc2rules settings).
type RunOptions struct {
	// IPTablesView: "save" (default) = the fake iptables' full state, built-in
	// chains with kube-proxy's jump rules included; "restore" = exactly the
	// iptables-restore payload of the sync. Applies to iptables and ipvs.
	IPTablesView string
	// StrictMirroring mirrors an Endpoints object only when the EndpointSlice
	// mirroring controller would (Service exists without selector, ...). Off:
	// every Endpoints object is mirrored.
	StrictMirroring bool
	// Verbosity of kube-proxy's klog output on LogOutput; <0 discards it.
	Verbosity int
	LogOutput io.Writer

	// For the cross-checks against upstream's own unit-test expectations only.
	UpstreamFixture     bool   // build the proxier like upstream's NewFakeProxier
	MasqueradeMark      string // override NewProxier's "%#08x" mark (NewFakeProxier: "0x4000")
	NoAPIDefaults       bool   // feed the objects as written (upstream tests do)
	UpstreamFakeRestore bool   // upstream's O(n²) FakeIPTables.RestoreAll/ParseIPTablesDump
}

// Result is the outcome of one oracle run.
type Result struct {
	Output       string
	Skipped      []string // objects kube-proxy would never see, with the reason
	NumEndpoints int
	Sync         time.Duration // the full syncProxyRules() alone
	Total        time.Duration
}

// mu serialises runs: kube-proxy's feature gates and klog are process-global.
var mu sync.Mutex

var klogOnce sync.Once
var klogFlags *flag.FlagSet

func setupKlog(verbosity int, w io.Writer) {
	klogOnce.Do(func() {
		klogFlags = flag.NewFlagSet("klog", flag.ContinueOnError)
		klog.InitFlags(klogFlags)
	})
	if verbosity < 0 || w == nil {
		// Silence kube-proxy's own logging (e.g. the expected "Failed to list
		// existing chains ... no such table" on the nftables first sync). Sync
		// failures are detected and reported by the oracle itself.
		_ = klogFlags.Set("logtostderr", "false")
		_ = klogFlags.Set("alsologtostderr", "false")
		_ = klogFlags.Set("stderrthreshold", "FATAL")
		_ = klogFlags.Set("v", "0")
		klog.SetOutput(io.Discard)
		return
	}
	_ = klogFlags.Set("logtostderr", "false")
	_ = klogFlags.Set("v", fmt.Sprint(verbosity))
	klog.SetOutput(w)
}

// resetFeatureGates puts every feature gate changed by an earlier run back to
// its default, then applies gates ("A=true,B=false").
func applyFeatureGates(gates string) error {
	reset := map[string]bool{}
	for name, spec := range utilfeature.DefaultMutableFeatureGate.GetAll() {
		if utilfeature.DefaultFeatureGate.Enabled(name) != spec.Default {
			reset[string(name)] = spec.Default
		}
	}
	if len(reset) > 0 {
		if err := utilfeature.DefaultMutableFeatureGate.SetFromMap(reset); err != nil {
			return err
		}
	}
	if gates != "" {
		if err := utilfeature.DefaultMutableFeatureGate.Set(gates); err != nil {
			return fmt.Errorf("--feature-gates: %v", err)
		}
	}
	return nil
}

// Run compiles input (a multi-document YAML/JSON stream) for backend
// ("iptables", "nft" or "ipvs") with settings s, through kube-proxy's own code,
// and returns the rendered rules.
func Run(backend string, s *Settings, input []byte, o RunOptions) (res *Result, err error) {
	mu.Lock()
	defer mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("kube-proxy code panicked: %v\n%s", r, debug.Stack())
		}
	}()
	start := time.Now()
	if o.IPTablesView == "" {
		o.IPTablesView = "save"
	}
	if o.IPTablesView != "save" && o.IPTablesView != "restore" {
		return nil, fmt.Errorf("iptables view must be save or restore (got %q)", o.IPTablesView)
	}
	setupKlog(o.Verbosity, o.LogOutput)

	in, err := readInputs(bytes.NewReader(input))
	if err != nil {
		return nil, err
	}
	in.normalize(!o.NoAPIDefaults, o.StrictMirroring)
	cfg, err := resolveConfig(backend, s, in)
	if err != nil {
		return nil, err
	}
	cfg.UpstreamFixture = o.UpstreamFixture
	cfg.UpstreamFakeRestore = o.UpstreamFakeRestore
	if o.MasqueradeMark != "" {
		cfg.MasqueradeMark = o.MasqueradeMark
	}
	if err := applyFeatureGates(cfg.FeatureGates); err != nil {
		return nil, err
	}
	res, err = runOracle(cfg, in, o.IPTablesView)
	if err != nil {
		return nil, err
	}
	res.Skipped = in.Skipped
	res.Total = time.Since(start)
	return res, nil
}

// runOracle builds the proxier for cfg, feeds it the inputs exactly like
// kube-proxy's informers would at startup, runs the initial full sync and
// renders the result.
func runOracle(cfg *Config, in *Inputs, iptablesView string) (*Result, error) {
	res := &Result{}
	for _, eps := range in.EndpointSlices {
		res.NumEndpoints += len(eps.Endpoints)
	}

	var p provider
	var check func() error
	var render func() (string, error)

	switch cfg.Mode {
	case "iptables":
		ipt := newRecordingIPTables(cfg.Family, cfg.UpstreamFakeRestore)
		ip := buildIPTablesProxier(cfg, ipt)
		p = ip
		check = func() error {
			if ipt.restoreCalls == 0 {
				return fmt.Errorf("sync did not run")
			}
			if ipt.lastRestoreErr != nil {
				return fmt.Errorf("fake iptables-restore rejected the rules: %v", ipt.lastRestoreErr)
			}
			if getField[bool](ip, "needFullSync") {
				return fmt.Errorf("syncProxyRules reported failure")
			}
			return nil
		}
		render = func() (string, error) {
			if iptablesView == "restore" {
				return canonicalIPTables(string(ipt.lastRestore), cfg.Mode, false, cfg.UpstreamFakeRestore)
			}
			var buf bytes.Buffer
			if err := ipt.SaveInto("", &buf); err != nil {
				return "", err
			}
			return canonicalIPTables(buf.String(), cfg.Mode, true, cfg.UpstreamFakeRestore)
		}
	case "nftables":
		np, nft := buildNFTablesProxier(cfg)
		p = np
		check = func() error {
			if getField[bool](np, "needFullSync") {
				return fmt.Errorf("syncProxyRules reported failure (the fake nftables rejected the transaction)")
			}
			return nil
		}
		render = func() (string, error) { return nftablesDump(nft.Fake), nil }
	case "ipvs":
		vp, f := buildIPVSProxier(cfg)
		p = vp
		check = func() error {
			if f.ipt.restoreCalls == 0 {
				return fmt.Errorf("sync did not complete")
			}
			if f.ipt.lastRestoreErr != nil {
				return fmt.Errorf("fake iptables-restore rejected the rules: %v", f.ipt.lastRestoreErr)
			}
			return nil
		}
		render = func() (string, error) { return renderIPVS(cfg, f, iptablesView) }
	default:
		return nil, fmt.Errorf("unknown mode %q", cfg.Mode)
	}

	// Feed the objects like kube-proxy's informers: ServiceCIDRs and node topology
	// can arrive at any time (they only record state), then all Services and
	// EndpointSlices, then the two "synced" notifications; the second one runs the
	// one initial full syncProxyRules().
	if cidrs := sortedUnique(append(append([]string{}, in.ServiceCIDRs...), cfg.ServiceCIDRs...)); len(cidrs) > 0 {
		p.OnServiceCIDRsChanged(cidrs)
	}
	if labels, ok := in.nodeTopologyLabels(cfg.NodeName); ok {
		p.OnTopologyChange(labels)
	} else if cfg.Zone != "" {
		p.OnTopologyChange(map[string]string{v1.LabelTopologyZone: cfg.Zone})
	}
	for _, s := range in.Services {
		p.OnServiceAdd(s)
	}
	for _, eps := range in.EndpointSlices {
		p.OnEndpointSliceAdd(eps)
	}
	p.OnServiceSynced() // not yet initialized: returns without syncing

	tSync := time.Now()
	p.OnEndpointSlicesSynced() // initialized now: the full sync
	res.Sync = time.Since(tSync)

	if err := check(); err != nil {
		return nil, err
	}
	out, err := render()
	if err != nil {
		return nil, err
	}
	res.Output = out
	return res, nil
}

func renderIPVS(cfg *Config, f *ipvsFakes, iptablesView string) (string, error) {
	var sb strings.Builder
	sb.WriteString("### ipvsadm-save -n\n")
	sb.WriteString(ipvsadmSave(f.ipvs))
	sb.WriteString("### ipset save\n")
	sb.WriteString(ipsetSave(f.ipset.Sets, f.ipset.Entries))
	sb.WriteString("### kube-ipvs0 addresses\n")
	addrs, err := f.netlink.ListBindAddress("kube-ipvs0")
	if err != nil {
		return "", err
	}
	addrs = append([]string(nil), addrs...)
	sort.Slice(addrs, func(i, j int) bool { return compareIPs(addrs[i], addrs[j]) < 0 })
	for _, a := range addrs {
		if netutils.IsIPv6String(a) {
			fmt.Fprintf(&sb, "%s/128\n", a)
		} else {
			fmt.Fprintf(&sb, "%s/32\n", a)
		}
	}
	sb.WriteString("### iptables-save\n")
	var ipt string
	if iptablesView == "restore" {
		ipt, err = canonicalIPTables(string(f.ipt.lastRestore), cfg.Mode, false, cfg.UpstreamFakeRestore)
	} else {
		var buf bytes.Buffer
		if err = f.ipt.SaveInto("", &buf); err == nil {
			ipt, err = canonicalIPTables(buf.String(), cfg.Mode, true, cfg.UpstreamFakeRestore)
		}
	}
	if err != nil {
		return "", err
	}
	sb.WriteString(ipt)
	return sb.String(), nil
}

// sortedUnique returns a sorted copy of ss without duplicates.
func sortedUnique(ss []string) []string {
	m := map[string]bool{}
	for _, s := range ss {
		m[s] = true
	}
	out := make([]string, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
