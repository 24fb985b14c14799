package oracle

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/sets"
	utilipset "k8s.io/kubernetes/pkg/proxy/ipvs/ipset"
	utilipvs "k8s.io/kubernetes/pkg/proxy/ipvs/util"
	ipvstest "k8s.io/kubernetes/pkg/proxy/ipvs/util/testing"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"
	iptablestest "k8s.io/kubernetes/pkg/util/iptables/testing"
	"sigs.k8s.io/knftables"
)

// ---------------------------------------------------------------------------
// iptables

// canonicalIPTables parses iptables-save / iptables-restore text and returns it
// re-serialized in canonical order (see sortIPTablesDump).
func canonicalIPTables(data string, mode string, dropEmptyTables, upstreamParser bool) (string, error) {
	parse := fastParseIPTablesDump
	if upstreamParser {
		parse = iptablestest.ParseIPTablesDump
	}
	dump, err := parse(strings.TrimLeft(data, " \t\n"))
	if err != nil {
		return "", err
	}
	if dropEmptyTables {
		tables := dump.Tables[:0]
		for _, t := range dump.Tables {
			if len(t.Chains) > 0 {
				tables = append(tables, t)
			}
		}
		dump.Tables = tables
	}
	sortIPTablesDump(dump, mode)
	return dump.String(), nil
}

// svcKey splits the service-port name out of a kube-proxy rule comment such as
// `ns1/svc1:p80 cluster IP` -> ("ns1/svc1", "p80").
func svcKey(r *iptablestest.Rule) (name, port string, ok bool) {
	if r.Comment == nil {
		return "", "", false
	}
	s := r.Comment.Value
	if i := strings.IndexByte(s, ' '); i != -1 {
		s = s[:i]
	}
	name = s
	if i := strings.IndexByte(s, ':'); i != -1 {
		name, port = s[:i], s[i+1:]
	}
	return name, port, true
}

// bySvcPort is the order the upstream tests' sortIPTablesRules uses
// (orderByCommentServiceName: by the service name in the comment, stable), refined
// with the port name as a tie-breaker so that multi-port services, whose rules
// kube-proxy emits in Go map order, also come out deterministically.
func bySvcPort(rules []*iptablestest.Rule) func(i, j int) bool {
	return func(i, j int) bool {
		ni, pi, oki := svcKey(rules[i])
		nj, pj, okj := svcKey(rules[j])
		if !oki || !okj {
			return false
		}
		if ni != nj {
			return ni < nj
		}
		return pi < pj
	}
}

func isLastRule(r *iptablestest.Rule) bool {
	return r.Comment != nil && strings.Contains(r.Comment.Value, "must be the last rule")
}

// sortIPTablesDump replicates sortIPTablesRules() from
// k8s.io/kubernetes/pkg/proxy/iptables/proxier_test.go (tables by name; chains
// KUBE-NODEPORTS, KUBE-SERVICES, other KUBE-* alphabetically, then non-KUBE-*
// alphabetically; the KUBE-NODEPORTS and KUBE-SERVICES chains ordered by service
// name with the nat "must be the last rule" rule kept last) and extends it so the
// result is fully deterministic for any input:
//   - ties are broken by port name, and the "last rule" rules (several when
//     --nodeport-addresses matches several IPs) are ordered by text;
//   - the other chains into which kube-proxy writes per-service rules in map order
//     (filter KUBE-EXTERNAL-SERVICES and KUBE-PROXY-FIREWALL) get the same
//     service-name order;
//   - the ipvs proxier's KUBE-IPVS-OUT-FILTER chain (one rule per LB IP, map order)
//     is ordered by rule text.
//
// Rules that come from one service port keep kube-proxy's emission order, so for any
// input on which upstream's own sort is deterministic the output is identical.
// In ipvs mode (whose iptables rules are per-ipset, not per-service) only the table
// and chain order and KUBE-IPVS-OUT-FILTER are sorted.
func sortIPTablesDump(dump *iptablestest.IPTablesDump, mode string) {
	sort.SliceStable(dump.Tables, func(i, j int) bool { return dump.Tables[i].Name < dump.Tables[j].Name })

	for t := range dump.Tables {
		chains := dump.Tables[t].Chains
		sort.SliceStable(chains, func(i, j int) bool {
			a, b := chains[i].Name, chains[j].Name
			switch {
			case a == "KUBE-NODEPORTS":
				return b != "KUBE-NODEPORTS"
			case b == "KUBE-NODEPORTS":
				return false
			case a == "KUBE-SERVICES":
				return b != "KUBE-SERVICES"
			case b == "KUBE-SERVICES":
				return false
			case strings.HasPrefix(string(a), "KUBE-") && !strings.HasPrefix(string(b), "KUBE-"):
				return true
			case !strings.HasPrefix(string(a), "KUBE-") && strings.HasPrefix(string(b), "KUBE-"):
				return false
			default:
				return a < b
			}
		})
	}

	if mode == "ipvs" {
		if c, _ := dump.GetChain(utiliptables.TableFilter, "KUBE-IPVS-OUT-FILTER"); c != nil {
			sort.SliceStable(c.Rules, func(i, j int) bool { return c.Rules[i].Raw < c.Rules[j].Raw })
		}
		return
	}

	for _, tc := range []struct {
		table utiliptables.Table
		chain utiliptables.Chain
	}{
		{utiliptables.TableFilter, "KUBE-NODEPORTS"},
		{utiliptables.TableNAT, "KUBE-NODEPORTS"},
		{utiliptables.TableFilter, "KUBE-SERVICES"},
		{utiliptables.TableFilter, "KUBE-EXTERNAL-SERVICES"},
		{utiliptables.TableFilter, "KUBE-PROXY-FIREWALL"},
	} {
		if c, _ := dump.GetChain(tc.table, tc.chain); c != nil {
			sort.SliceStable(c.Rules, bySvcPort(c.Rules))
		}
	}
	if c, _ := dump.GetChain(utiliptables.TableNAT, "KUBE-SERVICES"); c != nil {
		rules := c.Rules
		less := bySvcPort(rules)
		sort.SliceStable(rules, func(i, j int) bool {
			li, lj := isLastRule(rules[i]), isLastRule(rules[j])
			switch {
			case li && lj:
				return rules[i].Raw < rules[j].Raw
			case li:
				return false
			case lj:
				return true
			}
			return less(i, j)
		})
	}
}

// ---------------------------------------------------------------------------
// nftables

// nftablesDump returns the knftables Fake's Dump() (the `nft -f` input that
// recreates the table), after sorting the elements of every set and map (the fake
// keeps them in insertion order, which follows Go map iteration in kube-proxy).
// Chains, sets, maps and counters are already sorted by name by Dump(), and rules
// keep their order within each chain.
func nftablesDump(nft *knftables.Fake) string {
	if nft.Table != nil {
		for _, s := range nft.Table.Sets {
			sortElements(s.Elements)
		}
		for _, m := range nft.Table.Maps {
			sortElements(m.Elements)
		}
	}
	return nft.Dump()
}

func sortElements(elems []*knftables.Element) {
	sort.SliceStable(elems, func(i, j int) bool {
		return strings.Join(elems[i].Key, " . ") < strings.Join(elems[j].Key, " . ")
	})
}

// ---------------------------------------------------------------------------
// ipvs

// ipvsadmSave renders the fake IPVS table like `ipvsadm -S -n` (ipvsadm-save -n):
//
//	-A -t 10.96.0.1:443 -s rr [-p TIMEOUT] [-b FLAGS]
//	-a -t 10.96.0.1:443 -r 10.0.1.5:6443 -m -w 1
//
// Virtual servers are sorted by protocol, address and port; real servers by address
// and port (ipvsadm prints kernel hash order instead).
func ipvsadmSave(f *ipvstest.FakeIPVS) string {
	keys := make([]ipvstest.ServiceKey, 0, len(f.Services))
	for k := range f.Services {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.Protocol != b.Protocol {
			return a.Protocol < b.Protocol
		}
		if c := compareIPs(a.IP, b.IP); c != 0 {
			return c < 0
		}
		return a.Port < b.Port
	})
	var sb strings.Builder
	for _, k := range keys {
		vs := f.Services[k]
		svc := ipvsServiceArg(vs)
		fmt.Fprintf(&sb, "-A %s -s %s", svc, vs.Scheduler)
		if vs.Flags&utilipvs.FlagPersistent != 0 {
			fmt.Fprintf(&sb, " -p %d", vs.Timeout)
		}
		if fl := ipvsSchedFlags(vs); fl != "" {
			fmt.Fprintf(&sb, " -b %s", fl)
		}
		sb.WriteString("\n")
		rss := append([]*utilipvs.RealServer(nil), f.Destinations[k]...)
		sort.Slice(rss, func(i, j int) bool {
			if c := compareIPs(rss[i].Address.String(), rss[j].Address.String()); c != 0 {
				return c < 0
			}
			return rss[i].Port < rss[j].Port
		})
		for _, rs := range rss {
			// kube-proxy always uses masquerading (ConnectionFlagMasq == 0) -> "-m".
			fmt.Fprintf(&sb, "-a %s -r %s -m -w %d\n", svc, hostPort(rs.Address.String(), rs.Port), rs.Weight)
		}
	}
	return sb.String()
}

func ipvsServiceArg(vs *utilipvs.VirtualServer) string {
	hp := hostPort(vs.Address.String(), vs.Port)
	switch strings.ToUpper(vs.Protocol) {
	case "TCP":
		return "-t " + hp
	case "UDP":
		return "-u " + hp
	case "SCTP":
		return "--sctp-service " + hp
	}
	return "--" + strings.ToLower(vs.Protocol) + "-service " + hp
}

// ipvsSchedFlags renders IP_VS_SVC_F_SCHED{1,2,3} like ipvsadm does. kube-proxy only
// ever sets FlagSourceHash (0x10 = IP_VS_SVC_F_SCHED2), for the "mh" scheduler.
func ipvsSchedFlags(vs *utilipvs.VirtualServer) string {
	names := map[string][3]string{
		"sh": {"sh-fallback", "sh-port", "flag-3"},
		"mh": {"mh-fallback", "mh-port", "flag-3"},
	}
	n, ok := names[vs.Scheduler]
	if !ok {
		n = [3]string{"flag-1", "flag-2", "flag-3"}
	}
	var out []string
	for i, bit := range []utilipvs.ServiceFlags{0x08, 0x10, 0x20} {
		if vs.Flags&bit != 0 {
			out = append(out, n[i])
		}
	}
	return strings.Join(out, ",")
}

func hostPort(ip string, port uint16) string {
	return net.JoinHostPort(ip, strconv.Itoa(int(port)))
}

func compareIPs(a, b string) int {
	ia, ib := net.ParseIP(a), net.ParseIP(b)
	if ia == nil || ib == nil {
		return strings.Compare(a, b)
	}
	a4, b4 := ia.To4(), ib.To4()
	switch {
	case a4 != nil && b4 == nil:
		return -1
	case a4 == nil && b4 != nil:
		return 1
	case a4 != nil:
		return compareBytes(a4, b4)
	default:
		return compareBytes(ia.To16(), ib.To16())
	}
}

func compareBytes(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// ipsetSave renders the fake ipsets like `ipset save`: a "create" line per set with
// the parameters kube-proxy passes to `ipset create` (HashSize/MaxElem/PortRange
// defaulted the way the real runner's setIPSetDefaults does; kernel-reported extras
// such as bucketsize/initval are not modelled), then one "add" line per entry in
// the exact string form kube-proxy passes to `ipset add`. Sets and entries are sorted.
func ipsetSave(ipsets map[string]*utilipset.IPSet, entries map[string]sets.String) string {
	names := make([]string, 0, len(ipsets))
	for n := range ipsets {
		names = append(names, n)
	}
	sort.Strings(names)
	var sb strings.Builder
	for _, n := range names {
		s := *ipsets[n]
		if s.HashSize == 0 {
			s.HashSize = 1024
		}
		if s.MaxElem == 0 {
			s.MaxElem = 65536
		}
		if s.HashFamily == "" {
			s.HashFamily = utilipset.ProtocolFamilyIPV4
		}
		if s.SetType == "" {
			s.SetType = utilipset.HashIPPort
		}
		if s.PortRange == "" {
			s.PortRange = utilipset.DefaultPortRange
		}
		fmt.Fprintf(&sb, "create %s %s", s.Name, s.SetType)
		switch s.SetType {
		case utilipset.HashIPPortIP, utilipset.HashIPPort, utilipset.HashIPPortNet, utilipset.HashIP:
			fmt.Fprintf(&sb, " family %s hashsize %d maxelem %d", s.HashFamily, s.HashSize, s.MaxElem)
		case utilipset.BitmapPort:
			fmt.Fprintf(&sb, " range %s", s.PortRange)
		}
		sb.WriteString("\n")
		for _, e := range entries[n].List() { // List() is sorted
			fmt.Fprintf(&sb, "add %s %s\n", s.Name, e)
		}
	}
	return sb.String()
}
