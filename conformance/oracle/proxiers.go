package oracle

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/time/rate"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/features"
	"k8s.io/kubernetes/pkg/proxy"
	"k8s.io/kubernetes/pkg/proxy/conntrack"
	"k8s.io/kubernetes/pkg/proxy/healthcheck"
	"k8s.io/kubernetes/pkg/proxy/iptables"
	"k8s.io/kubernetes/pkg/proxy/ipvs"
	utilipset "k8s.io/kubernetes/pkg/proxy/ipvs/ipset"
	ipsettest "k8s.io/kubernetes/pkg/proxy/ipvs/ipset/testing"
	netlinktest "k8s.io/kubernetes/pkg/proxy/ipvs/testing"
	utilipvs "k8s.io/kubernetes/pkg/proxy/ipvs/util"
	ipvstest "k8s.io/kubernetes/pkg/proxy/ipvs/util/testing"
	"k8s.io/kubernetes/pkg/proxy/localnodeportproxy"
	"k8s.io/kubernetes/pkg/proxy/nftables"
	"k8s.io/kubernetes/pkg/proxy/runner"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
	"k8s.io/kubernetes/pkg/proxy/util/nfacct"
	proxyutiltest "k8s.io/kubernetes/pkg/proxy/util/testing"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"
	iptablestest "k8s.io/kubernetes/pkg/util/iptables/testing"
	netutils "k8s.io/utils/net"
	"sigs.k8s.io/knftables"
)

// provider is the subset of proxy.Provider the oracle drives.
type provider interface {
	OnServiceAdd(*v1.Service)
	OnServiceSynced()
	OnEndpointSliceAdd(*discovery.EndpointSlice)
	OnEndpointSlicesSynced()
	OnTopologyChange(map[string]string)
	OnServiceCIDRsChanged([]string)
}

var _ provider = proxy.Provider(nil)

// recordingIPTables is the upstream fake iptables, additionally remembering the last
// iptables-restore payload (what kube-proxy handed to iptables-restore) and error.
type recordingIPTables struct {
	*iptablestest.FakeIPTables
	// upstreamRestore selects the upstream FakeIPTables.RestoreAll (O(n^2)) instead
	// of the equivalent indexed fastRestoreAll.
	upstreamRestore bool
	lastRestore     []byte
	lastRestoreErr  error
	restoreCalls    int
	restoreTime     time.Duration // time spent applying payloads to the fake
}

func (r *recordingIPTables) RestoreAll(data []byte, flush utiliptables.FlushFlag, counters utiliptables.RestoreCountersFlag) error {
	start := time.Now()
	r.restoreCalls++
	r.lastRestore = append(r.lastRestore[:0], data...)
	if r.upstreamRestore {
		r.lastRestoreErr = r.FakeIPTables.RestoreAll(data, flush, counters)
	} else {
		r.lastRestoreErr = fastRestoreAll(r.FakeIPTables, data, flush, counters)
	}
	r.restoreTime += time.Since(start)
	return r.lastRestoreErr
}

// EnsureRule / DeleteRule: kube-proxy passes these rules as an argv (exec'd as
// `iptables -I CHAIN args...`); the upstream fake stores strings.Join(args, " "),
// which loses the word boundaries of comments with spaces. Quote such arguments
// (as iptables-save / iptables-restore syntax would) before handing them to the
// fake, so that the saved text is unambiguous. Matching inside the fake is
// unaffected since every call goes through the same quoting.
func (r *recordingIPTables) EnsureRule(position utiliptables.RulePosition, table utiliptables.Table, chain utiliptables.Chain, args ...string) (bool, error) {
	return r.FakeIPTables.EnsureRule(position, table, chain, quoteArgs(args)...)
}

func (r *recordingIPTables) DeleteRule(table utiliptables.Table, chain utiliptables.Chain, args ...string) error {
	return r.FakeIPTables.DeleteRule(table, chain, quoteArgs(args)...)
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \t") && !strings.HasPrefix(a, `"`) {
			a = `"` + a + `"`
		}
		out[i] = a
	}
	return out
}

func newRecordingIPTables(family v1.IPFamily, upstreamRestore bool) *recordingIPTables {
	if family == v1.IPv6Protocol {
		return &recordingIPTables{FakeIPTables: iptablestest.NewIPv6Fake(), upstreamRestore: upstreamRestore}
	}
	return &recordingIPTables{FakeIPTables: iptablestest.NewFake(), upstreamRestore: upstreamRestore}
}

// okNFAcct is an nfacct.Interface on which every counter "exists" (a node whose
// kernel supports nfacct); it never touches netlink.
type okNFAcct struct{}

func (okNFAcct) Ensure(string) error                      { return nil }
func (okNFAcct) Add(string) error                         { return nil }
func (okNFAcct) Get(name string) (*nfacct.Counter, error) { return &nfacct.Counter{Name: name}, nil }
func (okNFAcct) List() ([]*nfacct.Counter, error)         { return nil, nil }

// fakeNetwork returns the NetworkInterfacer the proxier uses to resolve
// --nodeport-addresses: "lo" (127.0.0.1/8, ::1/128) and "eth0" (the node addresses),
// like the upstream tests' NewFakeProxier.
func (c *Config) fakeNetwork() *proxyutiltest.FakeNetwork {
	nw := proxyutiltest.NewFakeNetwork()
	lo := net.Interface{Index: 0, Name: "lo"}
	nw.AddInterfaceAddr(&lo, []net.Addr{
		&net.IPNet{IP: netutils.ParseIPSloppy("127.0.0.1"), Mask: net.CIDRMask(8, 32)},
		&net.IPNet{IP: netutils.ParseIPSloppy("::1"), Mask: net.CIDRMask(128, 128)},
	})
	eth0 := net.Interface{Index: 1, Name: "eth0"}
	var addrs []net.Addr
	for _, ip := range c.NodeAddresses {
		if ip.To4() != nil {
			addrs = append(addrs, &net.IPNet{IP: ip, Mask: net.CIDRMask(24, 32)})
		} else {
			addrs = append(addrs, &net.IPNet{IP: ip, Mask: net.CIDRMask(64, 128)})
		}
	}
	nw.AddInterfaceAddr(&eth0, addrs)
	return nw
}

func newSyncRunner() *runner.BoundedFrequencyRunner {
	// The oracle never runs the runner's Loop; Sync() calls (e.g. from
	// OnTopologyChange) only queue a no-op. The real sync is driven synchronously
	// through OnServiceSynced/OnEndpointSlicesSynced.
	return runner.NewBoundedFrequencyRunner("oracle-sync-runner", func() error { return nil }, 0, 30*time.Second, time.Minute)
}

func (c *Config) logger() klog.Logger {
	return klog.LoggerWithValues(klog.FromContext(context.Background()), "ipFamily", c.Family)
}

// ---------------------------------------------------------------------------
// iptables

// buildIPTablesProxier builds an iptables.Proxier the way NewProxier would with the
// given config, but with the fakes NewFakeProxier uses instead of the host.
func buildIPTablesProxier(c *Config, ipt utiliptables.Interface) *iptables.Proxier {
	fam := c.Family
	npa := proxyutil.NewNodePortAddresses(fam, c.NodePortAddresses)

	// NewProxier: localhostNodePorts only if nodePortAddresses contains IPv4 loopback.
	localhostNodePorts := c.LocalhostNodePorts
	if !npa.ContainsIPv4Loopback() {
		localhostNodePorts = false
	}
	var nfacctRunner nfacct.Interface
	if c.NFAcct {
		nfacctRunner = okNFAcct{}
	}
	if c.UpstreamFixture {
		// NewFakeProxier: localhostNodePorts: true, nfacct nil but both counters
		// pre-set to true.
		localhostNodePorts = true
		nfacctRunner = nil
	}

	p := &iptables.Proxier{}
	setField(p, "ipFamily", fam)
	setField(p, "svcPortMap", make(proxy.ServicePortMap))
	setField(p, "serviceChanges", proxy.NewServiceChangeTracker(fam, iptablesNewServiceInfo, nil))
	setField(p, "endpointsMap", make(proxy.EndpointsMap))
	setField(p, "endpointsChanges", proxy.NewEndpointsChangeTracker(fam, c.NodeName, iptablesNewEndpointInfo, nil))
	setField(p, "needFullSync", true)
	setField(p, "syncPeriod", 30*time.Second)
	setField(p, "iptables", ipt)
	setField(p, "masqueradeAll", c.MasqueradeAll)
	setField(p, "masqueradeMark", c.MasqueradeMark)
	setField(p, "conntrack", conntrack.NewFake())
	if nfacctRunner != nil {
		setField(p, "nfacct", nfacctRunner)
	}
	setField(p, "localDetector", c.Detector)
	setField(p, "nodeName", c.NodeName)
	setField(p, "nodeIP", c.NodeIP)
	setField(p, "serviceHealthServer", healthcheck.NewFakeServiceHealthServer())
	setField(p, "precomputedProbabilities", make([]string, 0, 1001))
	setField(p, "iptablesData", bytes.NewBuffer(nil))
	setField(p, "existingFilterChainsData", bytes.NewBuffer(nil))
	setField(p, "filterChains", proxyutil.NewLineBuffer())
	setField(p, "filterRules", proxyutil.NewLineBuffer())
	setField(p, "natChains", proxyutil.NewLineBuffer())
	setField(p, "natRules", proxyutil.NewLineBuffer())
	setField(p, "localhostNodePorts", localhostNodePorts)
	setField(p, "conntrackTCPLiberal", c.ConntrackTCPLiberal)
	setField(p, "nodePortAddresses", npa)
	setField(p, "networkInterfacer", proxyutil.NetworkInterfacer(c.fakeNetwork()))
	setField(p, "logger", c.logger())
	// NewProxier starts with both counters false and flips them to true when
	// nfacct.Ensure succeeds during the first full sync; NewFakeProxier pre-sets them.
	setField(p, "nfAcctCounters", map[string]bool{
		"ct_state_invalid_dropped_pkts": c.UpstreamFixture,
		"localhost_nps_accepted_pkts":   c.UpstreamFixture,
	})
	setField(p, "syncRunner", newSyncRunner())
	return p
}

// ---------------------------------------------------------------------------
// nftables

const nftKubeProxyTable = "kube-proxy"

// timedNFTables is the knftables Fake, additionally measuring the time spent
// applying transactions (to separate the fake's cost from kube-proxy's own).
type timedNFTables struct {
	*knftables.Fake
	runTime time.Duration
}

func (t *timedNFTables) Run(ctx context.Context, tx *knftables.Transaction) error {
	start := time.Now()
	err := t.Fake.Run(ctx, tx)
	t.runTime += time.Since(start)
	return err
}

func buildNFTablesProxier(c *Config) (*nftables.Proxier, *timedNFTables) {
	fam := c.Family
	nftFamily := knftables.IPv4Family
	if fam == v1.IPv6Protocol {
		nftFamily = knftables.IPv6Family
	}
	nft := &timedNFTables{Fake: knftables.NewFake(nftFamily, nftKubeProxyTable)}

	p := &nftables.Proxier{}
	setField(p, "ipFamily", fam)
	setField(p, "svcPortMap", make(proxy.ServicePortMap))
	setField(p, "serviceChanges", proxy.NewServiceChangeTracker(fam, nftablesNewServiceInfo, nil))
	setField(p, "endpointsMap", make(proxy.EndpointsMap))
	setField(p, "endpointsChanges", proxy.NewEndpointsChangeTracker(fam, c.NodeName, nftablesNewEndpointInfo, nil))
	setField(p, "needFullSync", true)
	setField(p, "syncPeriod", 30*time.Second)
	setField(p, "nftables", knftables.Interface(nft))
	setField(p, "masqueradeAll", c.MasqueradeAll)
	setField(p, "masqueradeMark", c.MasqueradeMark)
	setField(p, "masqueradeRule", fmt.Sprintf("mark set mark or %s", c.MasqueradeMark))
	setField(p, "conntrack", conntrack.NewFake())
	setField(p, "localDetector", c.Detector)
	setField(p, "nodeName", c.NodeName)
	setField(p, "nodeIP", c.NodeIP)
	setField(p, "serviceHealthServer", healthcheck.NewFakeServiceHealthServer())
	setField(p, "nodePortAddresses", proxyutil.NewNodePortAddresses(fam, c.NodePortAddresses))
	setField(p, "networkInterfacer", proxyutil.NetworkInterfacer(c.fakeNetwork()))
	setField(p, "staleChains", make(map[string]time.Time))
	setField(p, "logger", c.logger())
	// NewProxier uses rate.NewLimiter(rate.Every(24*time.Hour), 1). logFailure() runs
	// `nft list table kube-proxy` on the host when a transaction fails (at -v>=4);
	// a limiter that never allows keeps the oracle from ever exec'ing nft.
	setField(p, "logRateLimiter", rate.NewLimiter(0, 0))
	// newNFTElementStorage(containerType, containerName) for each container.
	for _, s := range []struct{ field, ctype, name string }{
		{"clusterIPs", "set", "cluster-ips"},
		{"serviceIPs", "map", "service-ips"},
		{"firewallIPs", "map", "firewall-ips"},
		{"noEndpointServices", "map", "no-endpoint-services"},
		{"noEndpointNodePorts", "map", "no-endpoint-nodeports"},
		{"serviceNodePorts", "map", "service-nodeports"},
		{"hairpinConnections", "set", "hairpin-connections"},
		{"localhostNodePortRejects", "map", "localhost-nodeport-reject-ports"},
	} {
		st := newUnexportedStruct(p, s.field)
		setField(st, "elements", make(map[string]string))
		setField(st, "leftoverKeys", sets.New[string]())
		setField(st, "containerType", s.ctype)
		setField(st, "containerName", s.name)
	}
	// NewProxier: localhostNodePortsEnabled follows the KubeProxyNFTablesLocalhostNodePorts
	// feature gate, and the userspace localhostNodePortProxy exists when
	// --nodeport-addresses explicitly contains loopback (useLocalhostNodePortProxy).
	// The rules only depend on whether that proxy exists; its SyncNodePorts, which
	// runs after the transaction, would bind listeners on the host. Its listen
	// address is therefore set to "[", which net.Listen rejects while splitting
	// host and port: no socket, no DNS, and kube-proxy only logs the failure.
	if utilfeature.DefaultFeatureGate.Enabled(features.KubeProxyNFTablesLocalhostNodePorts) {
		setField(p, "localhostNodePortsEnabled", true)
		if proxyutil.NewNodePortAddresses(fam, c.NodePortAddresses).ContainsExplicitLoopback() {
			lp := localnodeportproxy.NewLocalNodePortProxy(context.Background(), fam)
			setField(lp, "listenIP", "[")
			setField(p, "localhostNodePortProxy", lp)
		}
	}
	setField(p, "syncRunner", newSyncRunner())
	return p, nft
}

// ---------------------------------------------------------------------------
// ipvs

type ipvsFakes struct {
	ipt     *recordingIPTables
	ipvs    *ipvstest.FakeIPVS
	ipset   *ipsettest.FakeIPSet
	netlink *netlinktest.FakeNetlinkHandle
}

func buildIPVSProxier(c *Config) (*ipvs.Proxier, *ipvsFakes) {
	fam := c.Family
	isIPv6 := fam == v1.IPv6Protocol
	f := &ipvsFakes{
		ipt:     newRecordingIPTables(fam, c.UpstreamFakeRestore),
		ipvs:    ipvstest.NewFake(),
		ipset:   ipsettest.NewFake("7.1"),
		netlink: netlinktest.NewFakeNetlinkHandle(isIPv6),
	}
	var nodeAddrs []string
	for _, ip := range c.NodeAddresses {
		nodeAddrs = append(nodeAddrs, ip.String())
	}
	_ = f.netlink.SetLocalAddresses("eth0", nodeAddrs...)
	_ = f.netlink.SetLocalAddresses("lo", "127.0.0.1", "::1")

	var excludeCIDRs []*net.IPNet
	for _, s := range c.IPVSExcludeCIDRs {
		if netutils.IsIPv6CIDRString(s) != isIPv6 {
			continue // NewProxier: filterCIDRs(wantIPv6, ...)
		}
		if _, cidr, err := netutils.ParseCIDRSloppy(s); err == nil {
			excludeCIDRs = append(excludeCIDRs, cidr)
		}
	}

	ipsetList := make(map[string]*ipvs.IPSet)
	for _, is := range ipvsIPSetInfo {
		ipsetList[is.name] = ipvs.NewIPSet(f.ipset, is.name, is.setType, isIPv6, is.comment)
	}
	if c.UpstreamFixture {
		// NewFakeProxier passes isIPv6=false for every set regardless of family.
		for _, is := range ipvsIPSetInfo {
			ipsetList[is.name] = ipvs.NewIPSet(f.ipset, is.name, is.setType, false, is.comment)
		}
	}

	p := &ipvs.Proxier{}
	setField(p, "ipFamily", fam)
	setField(p, "svcPortMap", make(proxy.ServicePortMap))
	setField(p, "serviceChanges", proxy.NewServiceChangeTracker(fam, ipvsNewServiceInfo, nil))
	setField(p, "endpointsMap", make(proxy.EndpointsMap))
	setField(p, "endpointsChanges", proxy.NewEndpointsChangeTracker(fam, c.NodeName, nil, nil))
	setField(p, "initialSync", !c.UpstreamFixture)
	setField(p, "syncPeriod", 30*time.Second)
	setField(p, "excludeCIDRs", excludeCIDRs)
	setField(p, "iptables", utiliptables.Interface(f.ipt))
	setField(p, "ipvs", utilipvs.Interface(f.ipvs))
	setField(p, "ipset", utilipset.Interface(f.ipset))
	setField(p, "conntrack", conntrack.NewFake())
	setField(p, "masqueradeAll", c.MasqueradeAll)
	setField(p, "masqueradeMark", c.MasqueradeMark)
	setField(p, "localDetector", c.Detector)
	setField(p, "nodeName", c.NodeName)
	setField(p, "nodeIP", c.NodeIP)
	setField(p, "serviceHealthServer", healthcheck.NewFakeServiceHealthServer())
	setField(p, "ipvsScheduler", c.IPVSScheduler)
	setField(p, "iptablesData", bytes.NewBuffer(nil))
	setField(p, "filterChainsData", bytes.NewBuffer(nil))
	setField(p, "natChains", proxyutil.NewLineBuffer())
	setField(p, "natRules", proxyutil.NewLineBuffer())
	setField(p, "filterChains", proxyutil.NewLineBuffer())
	setField(p, "filterRules", proxyutil.NewLineBuffer())
	setField(p, "netlinkHandle", ipvs.NetLinkHandle(f.netlink))
	setField(p, "ipsetList", ipsetList)
	setField(p, "nodePortAddresses", proxyutil.NewNodePortAddresses(fam, c.NodePortAddresses))
	setField(p, "networkInterfacer", proxyutil.NetworkInterfacer(c.fakeNetwork()))
	setField(p, "gracefuldeleteManager", ipvs.NewGracefulTerminationManager(f.ipvs))
	setField(p, "logger", c.logger())
	setField(p, "syncRunner", newSyncRunner())
	return p, f
}
