package ipvs

import (
	"net"
	"sort"
	"strconv"

	v1 "k8s.io/api/core/v1"
	netutils "k8s.io/utils/net"

	"github.com/svc2rules/svc2rules/compiler"
)

// vsKey identifies an IPVS virtual server: kube-proxy's VirtualServer.String()
// is "addr:port/proto" and two service ports producing the same key share
// (and fight over) one kernel virtual server.
type vsKey struct {
	protocol v1.Protocol
	address  string
	port     int32
}

// ipOrder is a sort key for an address: IPv4 before IPv6, then bytes
// (unparsable text last, by text).
func ipOrder(s string) string {
	ip := net.ParseIP(s)
	switch {
	case ip == nil:
		return "\xff" + s
	case ip.To4() != nil:
		return "\x04" + string(ip.To4())
	}
	return "\x06" + string(ip.To16())
}

// virtualServer is one IPVS service as kube-proxy configures it.
type virtualServer struct {
	key        vsKey
	scheduler  string
	persistent bool  // IP_VS_SVC_F_PERSISTENT (ClientIP affinity)
	timeout    int32 // persistence timeout, seconds
	mhPort     bool  // IP_VS_SVC_F_SCHED2 ("mh-port"), set for the mh scheduler
	reals      []realServer
	order      string // ipOrder(key.address)
	// owner is the SPN of the service port that wrote it last (for the
	// script's provenance comments).
	owner string
}

// realServer is one IPVS destination: always masqueraded, weight 1 on a fresh sync.
type realServer struct {
	address string
	port    int32
	weight  int
	order   string // ipOrder(address)
}

// ipset is one KUBE-* set with its entries (kube-proxy's activeEntries).
type ipset struct {
	name    string
	typ     setType
	comment string
	family  v1.IPFamily
	entries map[string]bool
}

func (s *ipset) add(e string) { s.entries[e] = true }
func (s *ipset) empty() bool  { return len(s.entries) == 0 }

// sortedEntries returns the entries sorted by text (ipset save order is
// the kernel's; text order is kporacle's and deterministic).
func (s *ipset) sortedEntries() []string {
	out := make([]string, 0, len(s.entries))
	for e := range s.entries {
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}

// outFilterEntry is one KUBE-IPVS-OUT-FILTER DROP: an LB VIP whose source
// ranges do not contain the node IP.
type outFilterEntry struct {
	ip, proto string
	port      int32
}

// rule is one "-A CHAIN ..." line of kube-proxy's iptables payload.
type rule struct {
	chain string
	text  string
}

// state is everything one family's ipvs proxier programs after a full sync.
type state struct {
	family    v1.IPFamily
	servers   map[vsKey]*virtualServer
	sets      [numSets]*ipset
	bound     map[string]bool // kube-ipvs0 addresses (== KUBE-IPVS-IPS)
	outFilter []outFilterEntry
	natRules  []rule
	filtRules []rule
	nodeIPs   []string // NodePort virtual server addresses
	// bySPN lists, per service port in plan order, the virtual servers it wrote.
	bySPN []spnServers
}

type spnServers struct {
	spn      string
	protocol v1.Protocol
	keys     []vsKey
}

// build replays pkg/proxy/ipvs syncProxyRules (v1.37.2) for a full sync on a
// fresh node, visiting service ports in plan order. kube-proxy visits them
// in Go map order; the only observable difference is which service port wins
// when two of them produce the same virtual server (see README.md): here the
// last one in plan order, i.e. the order is one kube-proxy can take.
func build(plan *compiler.Plan, s Settings) *state {
	st := &state{
		family:  plan.Family,
		servers: map[vsKey]*virtualServer{},
		bound:   map[string]bool{},
	}
	for i, si := range setInfo {
		st.sets[i] = &ipset{name: SetName(si.name, plan.Family), typ: si.typ, comment: si.comment, family: plan.Family, entries: map[string]bool{}}
	}
	sched := s.scheduler()

	// nodeAddressSet: every address of the family on an interface other than
	// kube-ipvs0, minus loopback and IPv6 link-local (GetAllLocalAddressesExcept).
	nodeAddressSet := map[string]bool{}
	var nodeAddressList []string
	for _, a := range plan.Node.Addresses {
		if validForSet(a, plan.Family) && !nodeAddressSet[a] {
			nodeAddressSet[a] = true
			nodeAddressList = append(nodeAddressList, a)
		}
	}

	hasNodePort := false
	for _, sp := range plan.ServicePorts {
		if sp.NodePort != 0 {
			hasNodePort = true
			break
		}
	}
	if hasNodePort {
		if s.NodePortAddresses.MatchAll {
			st.nodeIPs = nodeAddressList
		} else {
			for _, ip := range s.NodePortAddresses.NodeIPs(plan.Node.Addresses) {
				if !compiler.IsLoopback(ip) {
					st.nodeIPs = append(st.nodeIPs, ip)
				}
			}
		}
	}
	nodeIP := netutils.ParseIPSloppy(plan.Node.PrimaryIPOrLoopback(plan.Family))

	newVS := func(sp *compiler.ServicePort, addr string, port int32) *virtualServer {
		vs := &virtualServer{
			key:       vsKey{protocol: sp.Protocol, address: addr, port: port},
			scheduler: sched,
			mhPort:    sched == "mh",
			order:     ipOrder(addr),
			owner:     sp.SPN,
		}
		if sp.SessionAffinityClientIP {
			vs.persistent = true
			vs.timeout = sp.StickyMaxAgeSeconds
		}
		return vs
	}
	// syncService + syncEndpoint: (re)write the virtual server and replace
	// its real servers with the chosen endpoints.
	// A service port's virtual servers share one of two lists of real
	// servers (all cluster endpoints, or the local ones), made and sorted
	// once per service port: realsOf[local], for realsSP.
	var realsSP *compiler.ServicePort
	var realsOf [2][]realServer
	var realsMade [2]bool
	sync := func(sp *compiler.ServicePort, vs *virtualServer, onlyLocal bool) {
		eps, which := sp.ClusterEndpoints, 0
		if onlyLocal && len(sp.LocalEndpoints) > 0 {
			eps, which = sp.LocalEndpoints, 1
		}
		if realsSP != sp {
			realsSP, realsMade = sp, [2]bool{}
		}
		if !realsMade[which] {
			realsOf[which], realsMade[which] = sortedRealServers(eps), true
		}
		vs.reals = realsOf[which]
		st.servers[vs.key] = vs
		last := &st.bySPN[len(st.bySPN)-1]
		last.keys = append(last.keys, vs.key)
	}

	for _, sp := range plan.ServicePorts {
		proto := compiler.LowerProtocol(sp.Protocol)
		port := strconv.Itoa(int(sp.Port))
		st.bySPN = append(st.bySPN, spnServers{spn: sp.SPN, protocol: sp.Protocol})

		for _, ep := range sp.Endpoints {
			if ep.IsLocal && ep.IP != "" && ep.Port != 0 {
				st.sets[setLoopBack].add(ep.IP + "," + proto + ":" + strconv.Itoa(int(ep.Port)) + "," + ep.IP)
			}
		}

		st.sets[setClusterIP].add(sp.ClusterIP + "," + proto + ":" + port)
		sync(sp, newVS(sp, sp.ClusterIP, sp.Port), sp.InternalPolicyLocal)
		st.bound[sp.ClusterIP] = true

		if plan.FeatureGates.AllowServiceExternalIPs {
			for _, ext := range sp.ExternalIPs {
				if sp.ExternalPolicyLocal {
					st.sets[setExternalIPLocal].add(ext + "," + proto + ":" + port)
				} else {
					st.sets[setExternalIP].add(ext + "," + proto + ":" + port)
				}
				sync(sp, newVS(sp, ext, sp.Port), sp.ExternalPolicyLocal)
				if !nodeAddressSet[ext] {
					st.bound[ext] = true
				}
			}
		}

		for _, vip := range sp.LoadBalancerVIPs {
			entry := vip + "," + proto + ":" + port
			st.sets[setLoadBalancer].add(entry)
			if sp.ExternalPolicyLocal {
				st.sets[setLoadBalancerLocal].add(entry)
			}
			if len(sp.LoadBalancerSourceRanges) > 0 {
				st.sets[setLoadBalancerFW].add(entry)
				allowFromNode := false
				for _, cidr := range sp.LoadBalancerSourceRanges {
					st.sets[setLoadBalancerSourceCIDR].add(entry + "," + cidr)
					if _, n, err := netutils.ParseCIDRSloppy(cidr); err == nil && nodeIP != nil && n.Contains(nodeIP) {
						allowFromNode = true
					}
				}
				if allowFromNode {
					st.sets[setLoadBalancerSourceIP].add(entry + "," + vip)
				} else {
					st.outFilter = append(st.outFilter, outFilterEntry{ip: vip, proto: proto, port: sp.Port})
				}
			}
			sync(sp, newVS(sp, vip, sp.Port), sp.ExternalPolicyLocal)
			if !nodeAddressSet[vip] {
				st.bound[vip] = true
			}
		}

		if sp.NodePort != 0 {
			if len(st.nodeIPs) == 0 {
				// kube-proxy "continue"s: no NodePort VS, no NodePort set
				// entries and no health-check node port entry.
				continue
			}
			np := strconv.Itoa(int(sp.NodePort))
			var entries []string
			var set, localSet int
			switch sp.Protocol {
			case v1.ProtocolTCP:
				set, localSet = setNodePortTCP, setNodePortLocalTCP
				entries = []string{np}
			case v1.ProtocolUDP:
				set, localSet = setNodePortUDP, setNodePortLocalUDP
				entries = []string{np}
			case v1.ProtocolSCTP:
				set, localSet = setNodePortSCTP, setNodePortLocalSCTP
				for _, ip := range st.nodeIPs {
					entries = append(entries, ip+","+proto+":"+np)
				}
			}
			for _, e := range entries {
				st.sets[set].add(e)
				if sp.ExternalPolicyLocal {
					st.sets[localSet].add(e)
				}
			}
			for _, ip := range st.nodeIPs {
				sync(sp, newVS(sp, ip, sp.NodePort), sp.ExternalPolicyLocal)
			}
		}

		if sp.HealthCheckNodePort != 0 {
			st.sets[setHealthCheckNodePort].add(strconv.Itoa(int(sp.HealthCheckNodePort)))
		}
	}

	for a := range st.bound {
		st.sets[setIPVSIPs].add(a)
	}
	st.writeIPTables(s)
	return st
}

// validForSet is the netlink handle's isValidForSet: an address of the
// family that is neither loopback nor (IPv6) link-local.
func validForSet(s string, family v1.IPFamily) bool {
	ip := netutils.ParseIPSloppy(s)
	if ip == nil {
		return false
	}
	isV6 := ip.To4() == nil
	if isV6 != (family == v1.IPv6Protocol) {
		return false
	}
	if isV6 && ip.IsLinkLocalUnicast() {
		return false
	}
	return !ip.IsLoopback()
}

// sortedServers returns the virtual servers sorted like kporacle's
// ipvsadm-save view: by protocol name, address (IPv4 before IPv6, then
// bytes) and port.
func (st *state) sortedServers() []*virtualServer {
	out := make([]*virtualServer, 0, len(st.servers))
	for _, vs := range st.servers {
		out = append(out, vs)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].key, out[j].key
		if a.protocol != b.protocol {
			return a.protocol < b.protocol
		}
		if out[i].order != out[j].order {
			return out[i].order < out[j].order
		}
		return a.port < b.port
	})
	return out
}

// sortedRealServers is the real servers of eps, one per distinct endpoint
// (syncEndpoint adds each once), sorted like kporacle's ipvsadm-save view:
// by address (IPv4 before IPv6, then bytes) and port.
func sortedRealServers(eps []*compiler.Endpoint) []realServer {
	out := make([]realServer, 0, len(eps))
	var seen map[string]bool
	for _, ep := range eps {
		if len(eps) > 1 {
			k := ep.String()
			if seen == nil {
				seen = make(map[string]bool, len(eps))
			}
			if seen[k] {
				continue
			}
			seen[k] = true
		}
		out = append(out, realServer{address: ep.IP, port: ep.Port, weight: 1, order: ipOrder(ep.IP)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].order != out[j].order {
			return out[i].order < out[j].order
		}
		return out[i].port < out[j].port
	})
	return out
}

// sortedReals is the virtual server's real servers in order (sorted when
// made, shared between the virtual servers of a service port: read only).
func (vs *virtualServer) sortedReals() []realServer { return vs.reals }

// sortedBound returns the kube-ipvs0 addresses in address order.
func (st *state) sortedBound() []string {
	type keyed struct{ addr, order string }
	ks := make([]keyed, 0, len(st.bound))
	for a := range st.bound {
		ks = append(ks, keyed{a, ipOrder(a)})
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].order < ks[j].order })
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.addr
	}
	return out
}

func hostPort(ip string, port int32) string {
	return net.JoinHostPort(ip, strconv.Itoa(int(port)))
}
