package gen

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/svc2rules/svc2rules/conformance/oracle"
)

// Address pools. Small on purpose, so that collisions happen: the node IP as
// an external IP or LB ingress, source ranges containing the node IP,
// endpoints repeated across slices, node-local pod CIDRs.
type pools struct {
	nodeIP, otherLocal []string
	clusterIPs         []string
	podIPs             []string // 10.244.0.x is node1's pod CIDR
	mirrorIPs          []string // for Endpoints objects (never in EndpointSlices)
	externalIPs        []string
	lbIPs              []string
	sourceRanges       []string
	clusterCIDR        string
	nodeCIDR           string
	serviceCIDR        string
	partialServiceCIDR string
	npaForms           []string
	excludeCIDRs       []string
}

func seq(format string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf(format, i))
	}
	return out
}

var v4 = pools{
	nodeIP:      []string{"192.168.0.2"},
	otherLocal:  []string{"192.168.1.2", "192.168.99.11", "10.0.0.5"},
	clusterIPs:  seq("10.96.0.%d", 1, 40),
	podIPs:      append(append(seq("10.244.0.%d", 2, 9), seq("10.244.1.%d", 2, 9)...), seq("10.244.2.%d", 2, 6)...),
	mirrorIPs:   append(seq("10.244.3.%d", 2, 9), seq("10.244.0.%d", 20, 24)...),
	externalIPs: append(seq("192.0.2.%d", 1, 6), "192.168.0.2", "192.168.1.2"),
	lbIPs:       append(seq("203.0.113.%d", 1, 6), "192.168.0.2", "192.0.2.1"),
	sourceRanges: []string{"203.0.113.0/25", "192.168.0.0/16", "192.168.0.2/32", "0.0.0.0/0", "10.0.0.0/8",
		"198.51.100.0/24", "1.2.3.4/32", "2001:db8::/32", "203.0.113.128/25"},
	clusterCIDR:        "10.244.0.0/16",
	nodeCIDR:           "10.244.0.0/24",
	serviceCIDR:        "10.96.0.0/16",
	partialServiceCIDR: "10.96.0.0/27",
	npaForms: []string{"primary", "localhost", "all", "192.168.0.0/24", "192.168.0.2/32", "127.0.0.1/32",
		"127.0.0.0/8,192.168.0.0/16", "10.200.0.0/16", "192.168.1.0/24", "2001:db8::/64", "0.0.0.0/0",
		"primary,localhost", "192.168.0.0/16,2001:db8::/32", "192.168.0.0/16,10.0.0.0/8"},
	excludeCIDRs: []string{"10.96.0.0/28", "192.0.2.0/24", "203.0.113.0/29"},
}

var v6 = pools{
	nodeIP:      []string{"2001:db8::2"},
	otherLocal:  []string{"2001:db8:1::2", "2001:db8::99", "fd00:1::5"},
	clusterIPs:  seq("fd00:96::%x", 1, 40),
	podIPs:      append(append(seq("fd00:244::%x", 2, 9), seq("fd00:244:0:1::%x", 2, 9)...), seq("fd00:244:0:2::%x", 2, 6)...),
	mirrorIPs:   append(seq("fd00:244:0:3::%x", 2, 9), seq("fd00:244::%x", 32, 36)...),
	externalIPs: append(seq("2001:db8:ff::%x", 1, 6), "2001:db8::2", "2001:db8:1::2"),
	lbIPs:       append(seq("2001:db8:fe::%x", 1, 6), "2001:db8::2", "2001:db8:ff::1"),
	sourceRanges: []string{"2001:db8:fe::/64", "2001:db8::/32", "2001:db8::2/128", "::/0", "fd00::/8",
		"2001:db8:abcd::/48", "203.0.113.0/24", "2001:db8:fe::8000/113"},
	clusterCIDR:        "fd00:244::/48",
	nodeCIDR:           "fd00:244::/64",
	serviceCIDR:        "fd00:96::/108",
	partialServiceCIDR: "fd00:96::/123",
	npaForms: []string{"primary", "localhost", "all", "2001:db8::/64", "2001:db8::2/128", "::1/128",
		"::1/128,2001:db8::/32", "fd00:dead::/64", "2001:db8:1::/64", "192.168.0.0/24", "::/0",
		"primary,localhost", "2001:db8::/32,192.168.0.0/16"},
	excludeCIDRs: []string{"fd00:96::/124", "2001:db8:ff::/64"},
}

func poolsOf(family string) *pools {
	if family == "IPv6" {
		return &v6
	}
	return &v4
}

func other(family string) string {
	if family == "IPv6" {
		return "IPv4"
	}
	return "IPv6"
}

type rng struct{ *rand.Rand }

// on reports whether feature f is enabled and, if so, draws pct.
func (g *state) on(f string, pct int) bool {
	hit := g.r.pct(pct) // always draw, so that -without keeps the other choices
	return hit && !g.opt.Without[f]
}

func (r rng) pct(p int) bool { return r.IntN(100) < p }

func pick[T any](r rng, xs []T) T { return xs[r.IntN(len(xs))] }

func (r rng) subset(xs []string, max int) []string {
	n := 1 + r.IntN(max)
	var out []string
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		x := pick(r, xs)
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// Features are parts of the input space the generator can leave out
// (GenerateWith, difftest -without): to explore past a known divergence, or
// to look at one area alone. All are on by default.
var Features = map[string]string{
	"node":         "Node objects (zone label, addresses as node IPs, podCIDRs)",
	"nodecidr":     "--detect-local-mode=NodeCIDR",
	"ifacedetect":  "--detect-local-mode=BridgeInterface / InterfaceNamePrefix / None",
	"mirror":       "Endpoints objects (mirrored into EndpointSlices)",
	"dualstack":    "dual-stack Services and other-family Services",
	"large":        "a Service with more than 1000 endpoints (iptables large-cluster mode)",
	"lb":           "LoadBalancer Services",
	"externalips":  "spec.externalIPs",
	"hints":        "topology hints and trafficDistribution",
	"terminating":  "not-ready, serving and terminating endpoints",
	"affinity":     "sessionAffinity ClientIP",
	"gates":        "--feature-gates",
	"npa":          "--nodeport-addresses",
	"servicecidrs": "--service-cidrs and ServiceCIDR objects",
	"duplicates":   "the same endpoint IP more than once per Service",
}

// Options restrict generation.
type Options struct {
	Without map[string]bool // feature names (see Features)
}

// generator state for one case
type state struct {
	opt       Options
	r         rng
	c         *Case
	fam       string // the proxier's family: IPv4 | IPv6
	usedIPs   map[string]bool
	nodePorts map[int]bool
	// vips: "ip proto port" already used by a Service (clusterIP, externalIP,
	// LB ingress): two Services on one IP:port:protocol are invalid, and
	// kube-proxy's result for them depends on Go map order.
	vips map[string]bool
}

// Generate returns case index of the run with the given seed. Cases are
// independent: (seed, index) always gives the same case.
func Generate(seed uint64, index int) *Case {
	return GenerateWith(seed, index, Options{})
}

// GenerateWith is Generate leaving out the features in opt.Without.
func GenerateWith(seed uint64, index int, opt Options) *Case {
	st := &state{
		opt:       opt,
		r:         rng{rand.New(rand.NewPCG(seed, uint64(index)*0x9E3779B97F4A7C15+1))},
		c:         &Case{},
		usedIPs:   map[string]bool{},
		nodePorts: map[int]bool{},
		vips:      map[string]bool{},
	}
	st.settings()
	st.objects()
	st.c.dropAmbiguous()
	return st.c
}

func (g *state) settings() {
	r := g.r
	s := oracle.DefaultSettings()
	g.c.Settings = s
	g.fam = "IPv4"
	if r.pct(30) {
		g.fam = "IPv6"
		s.IPFamily = "ipv6"
	}
	p, o := poolsOf(g.fam), poolsOf(other(g.fam))
	switch x := r.IntN(100); {
	case x < 85:
		s.NodeName = "node1"
	case x < 95:
		s.NodeName = ""
	default:
		s.NodeName = "node2"
	}
	// Node IPs: flag (family's, both, other family only), none, or from a Node object.
	nodeObj := false
	switch x := r.IntN(100); {
	case x < 55:
		s.NodeIP = p.nodeIP[0]
	case x < 70:
		s.NodeIP = p.nodeIP[0] + "," + o.nodeIP[0]
	case x < 75:
		s.NodeIP = o.nodeIP[0]
	case x < 85:
		// none: kube-proxy falls back to loopback
	default:
		nodeObj = !g.opt.Without["node"]
	}
	if r.pct(45) {
		s.NodeAddresses = strings.Join(r.subset(append(append([]string{}, p.otherLocal...), o.otherLocal...), 3), ",")
	}
	switch x := r.IntN(100); {
	case x < 55:
		s.ClusterCIDR = p.clusterCIDR
	case x < 70:
		s.ClusterCIDR = p.clusterCIDR + "," + o.clusterCIDR
	case x < 75:
		s.ClusterCIDR = o.clusterCIDR
	}
	var podCIDRs []string
	switch x := r.IntN(100); {
	case x < 76:
	case x < 84 && !g.opt.Without["nodecidr"]:
		s.DetectLocalMode = "NodeCIDR"
		nodeObj = nodeObj || r.pct(70)
		podCIDRs = []string{p.nodeCIDR}
		if r.pct(30) {
			podCIDRs = []string{o.nodeCIDR, p.nodeCIDR}
		}
	case x < 84:
	case g.opt.Without["ifacedetect"]:
	case x < 91:
		s.DetectLocalMode = "InterfaceNamePrefix"
		s.PodInterfaceNamePrefix = pick(r, []string{"veth", "cali", "lxc"})
	case x < 96:
		s.DetectLocalMode = "BridgeInterface"
		s.PodBridgeInterface = pick(r, []string{"cbr0", "cni0"})
	default:
		s.DetectLocalMode = "None"
	}
	s.MasqueradeAll = r.pct(15)
	if r.pct(15) {
		s.MasqueradeBit = r.IntN(32)
	}
	if g.on("npa", 55) {
		s.NodePortAddresses = pick(r, p.npaForms)
	}
	s.LocalhostNodePorts = !r.pct(15)
	s.NFAcct = !r.pct(20)
	s.ConntrackTCPBeLiberal = r.pct(15)
	if r.pct(30) {
		s.IPVSScheduler = pick(r, []string{"sh", "mh", "lc", "wrr", "dh", "sed", "nq", "wlc"})
	}
	if r.pct(10) {
		s.IPVSExcludeCIDRs = strings.Join(r.subset(append(append([]string{}, p.excludeCIDRs...), o.excludeCIDRs...), 2), ",")
	}
	switch x := r.IntN(100); {
	case g.opt.Without["servicecidrs"]:
	case x < 45:
		s.ServiceCIDRs = p.serviceCIDR
	case x < 55:
		s.ServiceCIDRs = p.serviceCIDR + "," + o.serviceCIDR
	case x < 62:
		s.ServiceCIDRs = p.partialServiceCIDR
	}
	switch x := r.IntN(100); {
	case x < 35:
		s.Zone = "zone-a"
	case x < 40:
		s.Zone = "zone-b"
	}
	var gates []string
	if g.on("gates", 10) {
		gates = append(gates, "AllowServiceExternalIPs=false")
	}
	if g.on("gates", 12) {
		gates = append(gates, "KubeProxyNFTablesLocalhostNodePorts=true")
	}
	s.FeatureGates = strings.Join(gates, ",")

	if nodeObj || g.on("node", 10) {
		n := &Node{Name: "node1"}
		if s.NodeName != "" {
			n.Name = s.NodeName
		}
		if r.pct(60) {
			n.Zone = pick(r, []string{"zone-a", "zone-b"})
		}
		if nodeObj {
			switch x := r.IntN(100); {
			case x < 60:
				n.InternalIPs = []string{p.nodeIP[0]}
			case x < 80:
				n.InternalIPs = []string{o.nodeIP[0], p.nodeIP[0]}
			case x < 90:
				n.ExternalIPs = []string{p.nodeIP[0]}
			}
		}
		n.PodCIDRs = podCIDRs
		g.c.Nodes = append(g.c.Nodes, n)
	}
	if g.on("servicecidrs", 10) {
		g.c.ServiceCIDRs = append(g.c.ServiceCIDRs, &ServiceCIDR{Name: "kubernetes", CIDRs: []string{p.serviceCIDR}})
		if r.pct(40) {
			g.c.ServiceCIDRs[0].CIDRs = append(g.c.ServiceCIDRs[0].CIDRs, o.serviceCIDR)
		}
	}
}

// clusterFamilies are the families of the service CIDRs (flag and objects);
// all families when none is known.
func (g *state) clusterFamilies() map[string]bool {
	out := map[string]bool{}
	cidrs := splitComma(g.c.Settings.ServiceCIDRs)
	for _, o := range g.c.ServiceCIDRs {
		cidrs = append(cidrs, o.CIDRs...)
	}
	for _, c := range cidrs {
		if strings.Contains(c, ":") {
			out["IPv6"] = true
		} else {
			out["IPv4"] = true
		}
	}
	if len(out) == 0 {
		out["IPv4"], out["IPv6"] = true, true
	}
	return out
}

func splitComma(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func (g *state) freeIP(pool []string) string {
	for i := 0; i < 50; i++ {
		ip := pick(g.r, pool)
		if !g.usedIPs[ip] {
			g.usedIPs[ip] = true
			return ip
		}
	}
	return ""
}

// claimVIP reserves ip for every port of s; false if one is taken.
func (g *state) claimVIP(s *Service, ip string) bool {
	var keys []string
	for _, p := range s.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = "TCP"
		}
		keys = append(keys, fmt.Sprintf("%s %s %d", ip, proto, p.Port))
	}
	for _, k := range keys {
		if g.vips[k] {
			return false
		}
	}
	for _, k := range keys {
		g.vips[k] = true
	}
	return true
}

func (g *state) freeNodePort() int {
	for {
		p := 30000 + g.r.IntN(2768)
		if !g.nodePorts[p] {
			g.nodePorts[p] = true
			return p
		}
	}
}

var portNames = []string{"http", "https", "dns", "metrics", "p8080", "grpc", "a", "b-1"}
var protocols = []string{"TCP", "TCP", "TCP", "UDP", "UDP", "SCTP", ""}
var portNumbers = []int{80, 443, 53, 8080, 9000, 5353, 1}
var targetPorts = []int{8080, 80, 53, 9376, 443, 65535}

func (g *state) objects() {
	r := g.r
	nsvc := 1 + r.IntN(4)
	large := g.on("large", 1)
	names := map[string]bool{}
	for i := 0; i < nsvc; i++ {
		ns := pick(r, []string{"default", "default", "ns1", "kube-system"})
		name := fmt.Sprintf("svc%c", 'a'+i)
		if names[ns+"/"+name] {
			continue
		}
		names[ns+"/"+name] = true
		svc := g.service(ns, name)
		g.c.Services = append(g.c.Services, svc)
		g.endpointsFor(svc, large && i == 0)
	}
	if r.pct(4) {
		// an orphan slice: no Service of that name
		svc := &Service{Namespace: "default", Name: "ghost", Ports: []*ServicePort{{Name: "http", Port: 80, TargetPort: 8080}}, IPFamilies: []string{g.fam}}
		g.slices(svc, g.fam, 1, false)
	}
}

func (g *state) service(ns, name string) *Service {
	r := g.r
	s := &Service{Namespace: ns, Name: name, Selector: r.pct(85)}
	switch x := r.IntN(100); {
	case x < 30:
	case x < 38:
		s.Type = "ClusterIP"
	case x < 62:
		s.Type = "NodePort"
	case x < 92 && g.opt.Without["lb"]:
		s.Type = "NodePort"
	case x < 92:
		s.Type = "LoadBalancer"
	case x < 96:
		s.Type = "ExternalName"
		s.ExternalName = "example.com"
	default:
		s.Headless = true
	}
	if r.pct(3) {
		s.Labels = map[string]string{"service.kubernetes.io/service-proxy-name": "other-proxy"}
	}
	// families: only those the cluster has (svc2rules, like the API server,
	// rejects a family without a service CIDR when service CIDRs are known)
	fams := g.clusterFamilies()
	switch x := r.IntN(100); {
	case x < 70 && fams[g.fam], len(fams) == 1 && fams[g.fam]:
		s.IPFamilies = []string{g.fam}
	case x < 78 && fams[other(g.fam)], len(fams) == 1:
		s.IPFamilies = []string{other(g.fam)}
	case g.opt.Without["dualstack"]:
		s.IPFamilies = []string{g.fam}
	default:
		if r.pct(50) {
			s.IPFamilies = []string{g.fam, other(g.fam)}
		} else {
			s.IPFamilies = []string{other(g.fam), g.fam}
		}
		s.IPFamilyPolicy = pick(r, []string{"PreferDualStack", "RequireDualStack"})
	}
	if g.opt.Without["dualstack"] && len(fams) == 1 && !fams[g.fam] {
		s.IPFamilies = []string{other(g.fam)}
	}
	if s.Type == "ExternalName" {
		s.IPFamilies, s.IPFamilyPolicy = nil, ""
	} else if !s.Headless {
		for _, f := range s.IPFamilies {
			s.ClusterIPs = append(s.ClusterIPs, g.freeIP(poolsOf(f).clusterIPs))
		}
		if len(s.IPFamilies) == 1 && r.pct(30) {
			s.IPFamilies = nil // let clusterIP imply the family
		}
	}
	// ports
	nports := 1
	if x := r.IntN(100); x >= 55 {
		nports = 2
		if x >= 85 {
			nports = 3
		}
	}
	used := map[string]bool{}
	usedNames := map[string]bool{}
	for i := 0; i < nports; i++ {
		p := &ServicePort{Protocol: pick(r, protocols), Port: pick(r, portNumbers), TargetPort: pick(r, targetPorts)}
		if r.pct(15) {
			p.TargetPort = 0
		}
		proto := p.Protocol
		if proto == "" {
			proto = "TCP"
		}
		key := fmt.Sprintf("%d/%s", p.Port, proto)
		if used[key] {
			continue
		}
		used[key] = true
		if nports > 1 || r.pct(60) {
			for {
				n := pick(r, portNames)
				if !usedNames[n] {
					usedNames[n] = true
					p.Name = n
					break
				}
			}
		}
		s.Ports = append(s.Ports, p)
	}
	if len(s.Ports) > 1 {
		for _, p := range s.Ports {
			if p.Name == "" {
				p.Name = fmt.Sprintf("port%d", p.Port)
			}
		}
	}
	if s.Type == "ExternalName" || s.Headless {
		return s
	}
	external := s.Type == "NodePort" || s.Type == "LoadBalancer"
	if external {
		if s.Type == "LoadBalancer" && r.pct(12) {
			s.AllocateLBNodePorts = ptr(false)
		} else {
			for _, p := range s.Ports {
				p.NodePort = g.freeNodePort()
			}
		}
	}
	if g.on("externalips", 20) {
		var pool []string
		for _, f := range []string{g.fam, g.fam, other(g.fam)} {
			pool = append(pool, poolsOf(f).externalIPs...)
		}
		for _, ip := range r.subset(pool, 2) {
			if g.claimVIP(s, ip) {
				s.ExternalIPs = append(s.ExternalIPs, ip)
			}
		}
	}
	if s.Type == "LoadBalancer" && r.pct(85) {
		n := r.IntN(4)
		for i := 0; i < n; i++ {
			in := &Ingress{}
			switch x := r.IntN(100); {
			case x < 70:
				in.IP = pick(r, poolsOf(g.fam).lbIPs)
			case x < 82:
				in.IP = pick(r, poolsOf(other(g.fam)).lbIPs)
			case x < 92:
				in.Hostname = "lb.example.com"
			default:
				in.IP = pick(r, poolsOf(g.fam).lbIPs)
				in.Hostname = "lb2.example.com"
			}
			if in.IP != "" {
				switch x := r.IntN(100); {
				case x < 15:
					in.IPMode = "Proxy"
				case x < 25:
					in.IPMode = "VIP"
				}
			}
			dup := false
			for _, e := range s.Ingress {
				if e.IP == in.IP && e.Hostname == in.Hostname {
					dup = true
				}
			}
			if !dup && (in.IP == "" || g.claimVIP(s, in.IP)) {
				s.Ingress = append(s.Ingress, in)
			}
		}
		if r.pct(35) {
			var pool []string
			pool = append(pool, poolsOf(g.fam).sourceRanges...)
			pool = append(pool, poolsOf(g.fam).sourceRanges...)
			pool = append(pool, poolsOf(other(g.fam)).sourceRanges...)
			s.SourceRanges = r.subset(pool, 3)
		}
	}
	if (external || len(s.ExternalIPs) > 0) && r.pct(35) {
		s.ETP = "Local"
		if s.Type == "LoadBalancer" {
			// the API server always allocates it
			s.HealthCheckPort = g.freeNodePort()
		}
	} else if (external || len(s.ExternalIPs) > 0) && r.pct(15) {
		s.ETP = "Cluster"
	}
	if r.pct(18) {
		s.ITP = "Local"
	} else if r.pct(8) {
		s.ITP = "Cluster"
	}
	if g.on("affinity", 20) {
		s.Affinity = true
		switch x := r.IntN(100); {
		case x < 40:
		case x < 55:
			s.AffinityTimeout = 10800
		default:
			s.AffinityTimeout = 1 + r.IntN(86400)
		}
	}
	if g.on("hints", 15) {
		s.TrafficDist = pick(r, []string{"PreferClose", "PreferSameZone", "PreferSameNode"})
	}
	return s
}

// endpointsFor creates the EndpointSlices and/or Endpoints of a Service.
func (g *state) endpointsFor(svc *Service, large bool) {
	r := g.r
	if svc.Type == "ExternalName" {
		if r.pct(30) {
			g.slices(svc, g.fam, 1, false)
		}
		return
	}
	fams := svc.IPFamilies
	if len(fams) == 0 {
		fams = []string{g.fam}
		if len(svc.ClusterIPs) > 0 && strings.Contains(svc.ClusterIPs[0], ":") != (g.fam == "IPv6") {
			fams = []string{other(g.fam)}
		}
	}
	switch x := r.IntN(100); {
	case x < 78 || g.opt.Without["mirror"]:
		for _, f := range fams {
			n := 1
			if r.pct(25) {
				n = 2 + r.IntN(2)
			}
			g.slices(svc, f, n, large)
		}
		if g.on("mirror", 5) {
			g.endpoints(svc, fams)
		}
	case x < 92:
		g.endpoints(svc, fams)
	}
	if r.pct(3) {
		// an FQDN slice (ignored by kube-proxy)
		g.c.Slices = append(g.c.Slices, &Slice{Namespace: svc.Namespace, Name: svc.Name + "-fqdn", Service: svc.Name, AddressType: "FQDN",
			Ports:     []*SlicePort{{Name: ptr(portName(svc, 0)), Protocol: "TCP", Port: ptr(80)}},
			Endpoints: []*Endpoint{{Addresses: []string{"backend.example.com"}}}})
	}
}

func portName(svc *Service, i int) string {
	if i < len(svc.Ports) {
		return svc.Ports[i].Name
	}
	return ""
}

func (g *state) slicePorts(svc *Service) []*SlicePort {
	r := g.r
	var out []*SlicePort
	for _, sp := range svc.Ports {
		if r.pct(5) {
			continue // a port the slice does not carry
		}
		p := &SlicePort{Protocol: sp.Protocol, Port: ptr(sp.TargetPort)}
		if sp.TargetPort == 0 {
			p.Port = ptr(sp.Port)
		}
		if r.pct(10) {
			p.Port = ptr(pick(r, targetPorts))
		}
		switch {
		case sp.Name == "" && r.pct(50):
			// unnamed: name absent (defaulting makes it "")
		case r.pct(5):
			p.Name = ptr("other-name")
		default:
			p.Name = ptr(sp.Name)
		}
		out = append(out, p)
	}
	if r.pct(8) {
		out = nil
	}
	return out
}

func (g *state) endpoint(f string) *Endpoint {
	r := g.r
	p := poolsOf(f)
	e := &Endpoint{Addresses: []string{pick(r, p.podIPs)}}
	switch x := r.IntN(100); {
	case x < 40:
		e.Ready = ptr(true)
	case x < 55:
		// no conditions: ready
	case x < 65:
		e.Ready, e.Serving, e.Terminating = ptr(true), ptr(true), ptr(false)
	case x < 75:
		e.Ready = ptr(false)
		if r.pct(50) {
			e.Serving, e.Terminating = ptr(false), ptr(false)
		}
	case x < 90:
		e.Ready, e.Serving, e.Terminating = ptr(false), ptr(true), ptr(true)
	default:
		e.Ready, e.Serving, e.Terminating = ptr(false), ptr(false), ptr(true)
	}
	if g.opt.Without["terminating"] {
		e.Ready, e.Serving, e.Terminating = ptr(true), nil, nil
	}
	switch x := r.IntN(100); {
	case x < 38:
		e.NodeName = "node1"
	case x < 68:
		e.NodeName = "node2"
	case x < 82:
		e.NodeName = "node3"
	}
	if r.pct(60) {
		e.Zone = pick(r, []string{"zone-a", "zone-b", "zone-c"})
	}
	if r.pct(5) {
		e.Hostname = "pod-" + strings.NewReplacer(".", "-", ":", "-").Replace(e.Addresses[0])
	}
	return e
}

func (g *state) slices(svc *Service, f string, n int, large bool) {
	r := g.r
	addrType := f
	var all []*Endpoint
	hints := (svc.TrafficDist != "" && r.pct(80) || r.pct(20)) && !g.opt.Without["hints"]
	nodeHints := hints && (svc.TrafficDist == "PreferSameNode" || r.pct(25))
	for i := 0; i < n; i++ {
		sl := &Slice{Namespace: svc.Namespace, Name: fmt.Sprintf("%s-%s%d", svc.Name, strings.ToLower(f), i), Service: svc.Name, AddressType: addrType, Ports: g.slicePorts(svc)}
		if r.pct(2) {
			sl.Labels = map[string]string{"service.kubernetes.io/headless": ""}
		}
		neps := r.IntN(6)
		if large {
			neps = 1100 / n
		}
		for j := 0; j < neps; j++ {
			var e *Endpoint
			if len(all) > 0 && g.on("duplicates", 10) {
				// the same endpoint again (here or in another slice): an exact
				// copy, or another variant of it (see ambiguous)
				orig := pick(r, all)
				if r.pct(50) {
					e = cloneEndpoint(orig)
				} else {
					e = g.endpoint(f)
					e.Addresses = cloneStrings(orig.Addresses)
					g.hints(e, hints, nodeHints)
				}
			} else {
				e = g.endpoint(f)
				if large {
					e.Addresses = []string{largeIP(f, j+i*neps)}
				}
				g.hints(e, hints, nodeHints)
			}
			all = append(all, e)
			sl.Endpoints = append(sl.Endpoints, e)
		}
		g.c.Slices = append(g.c.Slices, sl)
	}
}

func (g *state) hints(e *Endpoint, hints, nodeHints bool) {
	r := g.r
	if hints && r.pct(92) {
		zone := e.Zone
		if zone == "" || r.pct(25) {
			zone = pick(r, []string{"zone-a", "zone-b"})
		}
		e.HintZones = []string{zone}
		if r.pct(10) {
			e.HintZones = []string{"zone-a", "zone-b"}
		}
	}
	if nodeHints && r.pct(92) {
		node := e.NodeName
		if node == "" || r.pct(20) {
			node = pick(r, []string{"node1", "node2"})
		}
		e.HintNodes = []string{node}
	}
}

func largeIP(f string, i int) string {
	if f == "IPv6" {
		return fmt.Sprintf("fd00:245::%x", i+1)
	}
	return fmt.Sprintf("10.245.%d.%d", (i+1)/250, (i+1)%250+1)
}

func (g *state) endpoints(svc *Service, fams []string) {
	r := g.r
	e := &Endpoints{Namespace: svc.Namespace, Name: svc.Name}
	// Each IP once per Endpoints object: the mirroring controller's result for
	// one IP with conflicting attributes depends on Go map order.
	usedIP := map[string]bool{}
	nsub := 1 + r.IntN(2)
	for i := 0; i < nsub; i++ {
		sub := &Subset{}
		for _, sp := range svc.Ports {
			if r.pct(5) {
				continue
			}
			port := sp.TargetPort
			if port == 0 {
				port = sp.Port
			}
			sub.Ports = append(sub.Ports, &EPPort{Name: sp.Name, Protocol: sp.Protocol, Port: port})
		}
		if len(sub.Ports) == 0 {
			sub.Ports = []*EPPort{{Name: portName(svc, 0), Port: 8080}}
		}
		addr := func() *EPAddress {
			ip := ""
			for k := 0; k < 20 && (ip == "" || usedIP[ip]); k++ {
				ip = pick(r, poolsOf(pick(r, fams)).mirrorIPs)
			}
			usedIP[ip] = true
			a := &EPAddress{IP: ip}
			switch x := r.IntN(100); {
			case x < 40:
				a.NodeName = "node1"
			case x < 75:
				a.NodeName = "node2"
			}
			if r.pct(5) {
				a.Hostname = "h" + fmt.Sprint(r.IntN(9))
			}
			return a
		}
		for j := r.IntN(5); j > 0; j-- {
			sub.Addresses = append(sub.Addresses, addr())
		}
		for j := r.IntN(3); j > 0 && r.pct(50); j-- {
			sub.NotReady = append(sub.NotReady, addr())
		}
		e.Subsets = append(e.Subsets, sub)
	}
	g.c.Endpoints = append(g.c.Endpoints, e)
}
