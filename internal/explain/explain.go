package explain

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/svc2rules/svc2rules/compiler"
	"github.com/svc2rules/svc2rules/internal/cli"
)

// Report is the explanation of some service ports on one node.
type Report struct {
	Backend string   `json:"backend"`
	Node    Node     `json:"node"`
	Ports   []Port   `json:"servicePorts"`
	Notes   []string `json:"notes,omitempty"`
}

// Node is the node the rules are for.
type Node struct {
	Name string            `json:"name,omitempty"`
	Zone string            `json:"zone,omitempty"`
	IPs  map[string]string `json:"ips,omitempty"` // family -> primary IP
}

// Port explains one service port for one IP family.
type Port struct {
	SPN       string `json:"servicePortName"`
	Family    string `json:"family"`
	Namespace string `json:"namespace"`
	Service   string `json:"service"`
	PortName  string `json:"portName,omitempty"`
	Protocol  string `json:"protocol"`
	Source    string `json:"source,omitempty"`

	ClusterIP           string    `json:"clusterIP"`
	Port                int32     `json:"port"`
	NodePort            *NodePort `json:"nodePort,omitempty"`
	HealthCheckNodePort int32     `json:"healthCheckNodePort,omitempty"`
	ExternalIPs         []string  `json:"externalIPs,omitempty"`
	ExternalIPsIgnored  string    `json:"externalIPsIgnored,omitempty"`
	LoadBalancerIPs     []string  `json:"loadBalancerIPs,omitempty"`
	SourceRanges        []string  `json:"loadBalancerSourceRanges,omitempty"`

	InternalTrafficPolicy string `json:"internalTrafficPolicy"`
	ExternalTrafficPolicy string `json:"externalTrafficPolicy,omitempty"`
	SessionAffinity       string `json:"sessionAffinity"`
	Topology              string `json:"topology"`

	Internal Traffic  `json:"internal"`
	External *Traffic `json:"external,omitempty"`

	Endpoints []Endpoint `json:"endpoints"`
	Objects   []Object   `json:"objects"`
	// Proxy is the userspace backend's own state for the port (its table).
	Proxy []string `json:"proxy,omitempty"`
}

// NodePort is where the NodePort answers.
type NodePort struct {
	Port  int32  `json:"port"`
	Where string `json:"where"`
}

// Traffic is what happens to one class of traffic.
type Traffic struct {
	// Via lists the addresses this traffic comes in on.
	Via []string `json:"via"`
	// Verdict: "load-balanced", "REJECT", "DROP".
	Verdict string  `json:"verdict"`
	Why     string  `json:"why"`
	Shares  []Share `json:"endpoints,omitempty"`
	// Masquerade says who is source-NATed.
	Masquerade string `json:"masquerade"`
	// Firewall is loadBalancerSourceRanges' effect.
	Firewall string `json:"firewall,omitempty"`
}

// Share is an endpoint's part of a traffic class.
type Share struct {
	Endpoint string  `json:"endpoint"`
	Weight   float64 `json:"weight"`
	How      string  `json:"how"`
}

// Endpoint is one endpoint and what kube-proxy does with it.
type Endpoint struct {
	Endpoint   string   `json:"endpoint"`
	Node       string   `json:"node,omitempty"`
	Local      bool     `json:"local"`
	Conditions string   `json:"conditions"`
	ZoneHints  []string `json:"zoneHints,omitempty"`
	NodeHints  []string `json:"nodeHints,omitempty"`
	Internal   Use      `json:"internal"`
	External   *Use     `json:"external,omitempty"`
}

// Use says whether an endpoint gets a traffic class, with which weight, and why.
type Use struct {
	Used   bool    `json:"used"`
	Weight float64 `json:"weight,omitempty"`
	Why    string  `json:"why"`
}

// Object is a backend object implementing the port.
type Object struct {
	Kind  string   `json:"kind"` // chain, set, map element, virtual server, ipset entry, address, proxy port, rule
	Table string   `json:"table,omitempty"`
	Name  string   `json:"name"`
	Role  string   `json:"role"`
	Rules []string `json:"rules,omitempty"`
}

// Options are the inputs of "svc2rules explain".
type Options struct {
	Compile cli.CompileOptions
	// Families to explain ("ipv4", "ipv6"); empty: both, keeping those where
	// the service has a cluster IP.
	Families []string
	// Services: "ns/name", "ns/name:port" (port name or number), "name"
	// (namespace default). Empty: every service port.
	Services []string
	Stdin    io.Reader
}

// Run compiles the manifests and explains the service ports asked for.
func Run(o Options) (*Report, error) {
	fams := o.Families
	explicit := len(fams) > 0
	if !explicit {
		fams = []string{"ipv4", "ipv6"}
	}
	var stdinData []byte
	for _, f := range o.Compile.Files {
		if f == "-" && o.Stdin != nil {
			data, err := io.ReadAll(o.Stdin)
			if err != nil {
				return nil, err
			}
			stdinData = data
			break
		}
	}
	stdin := func() io.Reader {
		if stdinData != nil {
			return bytes.NewReader(stdinData)
		}
		return o.Stdin
	}
	rep := &Report{Backend: o.Compile.Backend, Node: Node{Name: o.Compile.NodeName, IPs: map[string]string{}}}
	found := map[string]bool{}
	var skipped []string
	for _, fam := range fams {
		c := o.Compile
		c.IPFamily = fam
		c.Output = ""
		c.IPTablesView = "save"
		c.IPVSSection = ""
		c.UserspaceSection = "rules"
		res, err := cli.Compile(c, stdin())
		if err != nil {
			var ue *cli.UsageError
			if explicit || errors.As(err, &ue) || fam == fams[0] {
				return nil, err
			}
			// Both families implicitly: one that cannot be compiled (the
			// userspace mode without a node IP of it, say) is left out.
			skipped = append(skipped, fmt.Sprintf("%s not explained: %v", fam, err))
			continue
		}
		if fam == fams[0] {
			for _, n := range res.Notes {
				rep.Notes = append(rep.Notes, n.String())
			}
		}
		plan := res.Plan
		rep.Node.Zone = plan.Node.Zone
		if plan.Node.IP != "" {
			rep.Node.IPs[fam] = plan.Node.IP
		}
		out := res.Output
		var table string
		if c.Backend == "userspace" {
			c.UserspaceSection = "table"
			t, err := cli.Compile(c, stdin())
			if err != nil {
				return nil, err
			}
			table = t.Output
		}
		ctx := &context{o: c, plan: plan, output: out, table: table, npa: nodePortAddresses(c, plan), usc: map[string]*usPort{}}
		for _, sp := range plan.ServicePorts {
			q, ok := selected(sp, o.Services)
			if !ok {
				continue
			}
			found[q] = true
			rep.Ports = append(rep.Ports, ctx.port(sp))
		}
	}
	for _, q := range o.Services {
		if !found[q] {
			fam := "IPv4 or IPv6"
			if explicit {
				fam = strings.Join(fams, ", ")
			}
			msg := fmt.Sprintf("service port %q not found in the input (%s); give ns/name or ns/name:port (port name or number)", q, fam)
			if len(skipped) > 0 {
				msg += " (" + strings.Join(skipped, "; ") + ")"
			}
			return nil, errors.New(msg)
		}
	}
	rep.Notes = append(rep.Notes, skipped...)
	if len(rep.Ports) == 0 {
		return nil, errors.New("the input has no service port")
	}
	return rep, nil
}

// selected reports whether sp is asked for, and by which query.
func selected(sp *compiler.ServicePort, queries []string) (string, bool) {
	if len(queries) == 0 {
		return "", true
	}
	for _, q := range queries {
		svc, port, _ := strings.Cut(q, ":")
		ns, name, ok := strings.Cut(svc, "/")
		if !ok {
			ns, name = "default", svc
		}
		if sp.Namespace != ns || sp.Name != name {
			continue
		}
		if port == "" || port == sp.PortName || port == strconv.Itoa(int(sp.Port)) || strings.EqualFold(port, string(sp.Protocol)) {
			return q, true
		}
		if p, proto, ok := strings.Cut(port, "/"); ok && (p == sp.PortName || p == strconv.Itoa(int(sp.Port))) && strings.EqualFold(proto, string(sp.Protocol)) {
			return q, true
		}
	}
	return "", false
}

// nodePortAddresses is --nodeport-addresses resolved as compile does.
func nodePortAddresses(o cli.CompileOptions, plan *compiler.Plan) compiler.NodePortAddresses {
	var v4, v6 string
	for _, s := range o.NodeIPs {
		ip := net.ParseIP(s)
		if ip == nil {
			continue
		}
		if ip.To4() != nil && v4 == "" {
			v4 = ip.String()
		} else if ip.To4() == nil && v6 == "" {
			v6 = ip.String()
		}
	}
	if plan.Family == v1.IPv4Protocol && v4 == "" {
		v4 = plan.Node.IP
	}
	if plan.Family == v1.IPv6Protocol && v6 == "" {
		v6 = plan.Node.IP
	}
	raw := o.NodePortAddresses
	if len(raw) == 0 && o.Backend == "nft" {
		raw = []string{"primary"}
	}
	return compiler.ResolveNodePortAddresses(plan.Family, compiler.ExpandNodePortAddressKeywords(raw, v4, v6))
}

type context struct {
	o      cli.CompileOptions
	plan   *compiler.Plan
	output string
	table  string
	npa    compiler.NodePortAddresses
	usc    map[string]*usPort
}

func hostPort(ip string, port int32) string { return net.JoinHostPort(ip, strconv.Itoa(int(port))) }

func policy(local bool) string {
	if local {
		return "Local"
	}
	return "Cluster"
}

func conditions(ep *compiler.Endpoint) string {
	switch {
	case ep.Ready && ep.Terminating:
		return "ready, terminating"
	case ep.Ready:
		return "ready"
	case ep.Serving && ep.Terminating:
		return "serving, terminating"
	case ep.Terminating:
		return "terminating, not serving"
	case ep.Serving:
		return "not ready (serving)"
	}
	return "not ready"
}

func (x *context) family() string {
	if x.plan.Family == v1.IPv6Protocol {
		return "IPv6"
	}
	return "IPv4"
}

func (x *context) port(sp *compiler.ServicePort) Port {
	p := Port{
		SPN: sp.SPN, Family: x.family(), Namespace: sp.Namespace, Service: sp.Name, PortName: sp.PortName,
		Protocol: string(sp.Protocol), ClusterIP: sp.ClusterIP, Port: sp.Port,
		HealthCheckNodePort:   sp.HealthCheckNodePort,
		ExternalIPs:           sp.ExternalIPs,
		LoadBalancerIPs:       sp.LoadBalancerVIPs,
		SourceRanges:          sp.LoadBalancerSourceRanges,
		InternalTrafficPolicy: policy(sp.InternalPolicyLocal),
		SessionAffinity:       "None",
	}
	if sp.Source.File != "" {
		p.Source = sp.Source.File
		if sp.Source.Line > 0 {
			p.Source += ":" + strconv.Itoa(sp.Source.Line)
		}
	}
	if sp.ExternallyAccessible {
		p.ExternalTrafficPolicy = policy(sp.ExternalPolicyLocal)
	}
	if sp.SessionAffinityClientIP {
		p.SessionAffinity = fmt.Sprintf("ClientIP, %ds", sp.StickyMaxAgeSeconds)
	}
	if len(sp.ExternalIPs) > 0 && !x.plan.FeatureGates.AllowServiceExternalIPs && x.o.Backend != "userspace" {
		p.ExternalIPsIgnored = "feature gate AllowServiceExternalIPs=false: kube-proxy writes no rule for them"
	}
	if sp.NodePort != 0 {
		p.NodePort = &NodePort{Port: sp.NodePort, Where: x.nodePortWhere()}
		if x.o.Backend == "userspace" {
			if us := x.us(sp); !us.nodePortOpen {
				p.NodePort.Where = "nowhere: " + us.rows["nodePort"]
				if us.proxyNone {
					p.NodePort.Where = "nowhere: " + us.rows["proxy port"]
				}
			}
		}
	}
	p.Topology = x.topology(sp)
	if x.o.Backend == "userspace" {
		p.Topology = "not used by the userspace mode"
		p.InternalTrafficPolicy += " (ignored by the userspace mode)"
		if p.ExternalTrafficPolicy != "" {
			p.ExternalTrafficPolicy += " (ignored by the userspace mode)"
		}
	}

	internalEPs, external := x.endpointSets(sp)
	p.Internal = x.traffic(sp, false, internalEPs)
	if sp.ExternallyAccessible || x.o.Backend == "userspace" && (sp.NodePort != 0 || len(sp.ExternalIPs) > 0 || len(sp.LoadBalancerVIPs) > 0) {
		t := x.traffic(sp, true, external)
		p.External = &t
	}
	for _, ep := range sp.Endpoints {
		e := Endpoint{Endpoint: ep.String(), Node: ep.NodeName, Local: ep.IsLocal, Conditions: conditions(ep), ZoneHints: ep.ZoneHints, NodeHints: ep.NodeHints}
		e.Internal = x.use(sp, ep, false, internalEPs)
		if p.External != nil {
			u := x.use(sp, ep, true, external)
			e.External = &u
		}
		p.Endpoints = append(p.Endpoints, e)
	}
	p.Objects = x.objects(sp)
	if x.o.Backend == "userspace" {
		p.Proxy = userspaceBlock(x.table, sp.SPN)
	}
	return p
}

// nodePortWhere says on which addresses the NodePort answers.
func (x *context) nodePortWhere() string {
	switch x.o.Backend {
	case "userspace":
		return "every node address (kube-proxy v1.25's userspace mode ignores --nodeport-addresses)"
	case "ipvs":
		var ips []string
		for _, a := range x.plan.Node.Addresses {
			if !compiler.IsLoopback(a) && (x.npa.MatchAll || len(x.npa.NodeIPs([]string{a})) > 0) {
				ips = append(ips, a)
			}
		}
		if len(ips) == 0 {
			return "nowhere: the node has no address for it (give --node-ip / --node-addresses); kube-proxy skips the NodePort"
		}
		return strings.Join(ips, ", ") + " (a virtual server on each node address svc2rules knows; give the others with --node-addresses)"
	}
	if x.npa.MatchAll {
		s := "every local address (destination type LOCAL)"
		if x.o.Backend == "iptables" {
			if x.plan.Family == v1.IPv4Protocol && x.o.LocalhostNodePorts {
				s += ", 127.0.0.1 included (localhost NodePorts)"
			} else {
				s += ", loopback excluded"
			}
		} else {
			s += ", loopback excluded"
		}
		return s
	}
	ips := x.npa.NodeIPs(x.plan.Node.Addresses)
	var keep []string
	for _, ip := range ips {
		if !compiler.IsLoopback(ip) || x.o.Backend == "iptables" && x.plan.Family == v1.IPv4Protocol && x.o.LocalhostNodePorts && x.npa.ContainsIPv4Loopback {
			keep = append(keep, ip)
		}
	}
	if len(keep) == 0 {
		return "nowhere: no node address is inside --nodeport-addresses " + strings.Join(x.npa.CIDRs, ",")
	}
	return strings.Join(keep, ", ") + " (--nodeport-addresses " + strings.Join(x.npa.CIDRs, ",") + ")"
}

// topology explains the topology mode kube-proxy applied.
func (x *context) topology(sp *compiler.ServicePort) string {
	switch sp.TopologyMode {
	case "PreferSameZone":
		return fmt.Sprintf("PreferSameZone: only endpoints hinted for zone %q serve cluster traffic", x.plan.Node.Zone)
	case "PreferSameNode":
		return fmt.Sprintf("PreferSameNode: only endpoints hinted for node %q serve cluster traffic", x.plan.Node.Name)
	}
	hasZone, hasNode, allZone, allNode, ready := false, false, true, true, 0
	for _, ep := range sp.Endpoints {
		if !ep.Ready {
			continue
		}
		ready++
		if len(ep.ZoneHints) > 0 {
			hasZone = true
		} else {
			allZone = false
		}
		if len(ep.NodeHints) > 0 {
			hasNode = true
		} else {
			allNode = false
		}
	}
	switch {
	case !sp.UsesClusterEndpoints:
		return "not applied (only node-local endpoints are used)"
	case !hasZone && !hasNode:
		return "none: no endpoint carries hints, every ready endpoint serves"
	case hasNode && allNode:
		if x.plan.Node.Zone == "" && hasZone {
			return fmt.Sprintf("hints ignored: no endpoint is hinted for node %q and the node has no zone", x.plan.Node.Name)
		}
		return fmt.Sprintf("hints ignored: no endpoint is hinted for node %q or this node's zone %q", x.plan.Node.Name, x.plan.Node.Zone)
	case hasZone && !allZone:
		return "hints ignored: not every ready endpoint has zone hints"
	case hasZone && x.plan.Node.Zone == "":
		return "hints ignored: the node's zone is unknown (give --zone or a Node object)"
	case hasZone:
		return fmt.Sprintf("hints ignored: no ready endpoint is hinted for zone %q", x.plan.Node.Zone)
	}
	_ = ready
	return "hints ignored"
}

// endpointSets returns the endpoints of internal and external traffic in
// the chosen backend.
func (x *context) endpointSets(sp *compiler.ServicePort) (internal, external []*compiler.Endpoint) {
	switch x.o.Backend {
	case "ipvs":
		pick := func(onlyLocal bool) []*compiler.Endpoint {
			if onlyLocal && len(sp.LocalEndpoints) > 0 {
				return sp.LocalEndpoints
			}
			return sp.ClusterEndpoints
		}
		return pick(sp.InternalPolicyLocal), pick(sp.ExternalPolicyLocal)
	case "userspace":
		var used []*compiler.Endpoint
		us := x.us(sp)
		for _, ep := range sp.Endpoints {
			if us.weight[ep.String()] > 0 {
				used = append(used, ep)
			}
		}
		return used, used
	}
	if sp.HasInternalEndpoints() {
		if sp.InternalPolicyLocal {
			internal = sp.LocalEndpoints
		} else {
			internal = sp.ClusterEndpoints
		}
	}
	if sp.HasExternalEndpoints() {
		if sp.ExternalPolicyLocal {
			external = sp.LocalEndpoints
		} else {
			external = sp.ClusterEndpoints
		}
	}
	return internal, external
}

func (x *context) traffic(sp *compiler.ServicePort, external bool, eps []*compiler.Endpoint) Traffic {
	var t Traffic
	if !external {
		t.Via = []string{"cluster IP " + hostPort(sp.ClusterIP, sp.Port)}
	} else {
		if sp.NodePort != 0 {
			t.Via = append(t.Via, fmt.Sprintf("NodePort %d", sp.NodePort))
		}
		if x.plan.FeatureGates.AllowServiceExternalIPs || x.o.Backend == "userspace" {
			for _, ip := range sp.ExternalIPs {
				t.Via = append(t.Via, "external IP "+hostPort(ip, sp.Port))
			}
		}
		for _, ip := range sp.LoadBalancerVIPs {
			t.Via = append(t.Via, "load balancer IP "+hostPort(ip, sp.Port))
		}
	}
	if x.o.Backend == "userspace" {
		return x.userspaceTraffic(sp, external, t)
	}
	node := x.plan.Node.Name
	if node == "" {
		node = "this node (no --node-name: no endpoint is local)"
	}
	localPolicy := sp.InternalPolicyLocal
	pname := "internalTrafficPolicy"
	if external {
		localPolicy, pname = sp.ExternalPolicyLocal, "externalTrafficPolicy"
	}
	switch {
	case len(eps) > 0:
		t.Verdict = "load-balanced"
		t.Why = x.why(sp, eps, localPolicy, pname, node)
		t.Shares = x.shares(sp, eps)
	case x.o.Backend == "userspace":
		t.Verdict = "REJECT"
		t.Why = "no ready address in the Endpoints: kube-proxy's userspace proxy accepts the connection and closes it"
	case x.o.Backend == "ipvs":
		t.Verdict = "REJECT"
		t.Why = "the virtual server has no real server: IPVS answers ICMP port unreachable"
		if sp.HasEndpoints && localPolicy {
			t.Why += fmt.Sprintf(" (%s Local with no endpoint on %s, and no cluster endpoint to fall back to)", pname, node)
		}
	case !sp.HasEndpoints:
		t.Verdict = "REJECT"
		t.Why = "no usable endpoint (none ready, and none serving while terminating): kube-proxy rejects it (connection refused)"
	default:
		t.Verdict = "DROP"
		t.Why = fmt.Sprintf("%s Local and no ready (or serving terminating) endpoint on %s: kube-proxy drops it (the client times out)", pname, node)
		if external && sp.UsesExternalChain() {
			t.Why += "; traffic from the node itself"
			if x.detector().IsImplemented() {
				t.Why += " and from local pods"
			}
			t.Why += " still goes to the cluster's endpoints"
		}
	}
	t.Masquerade = x.masquerade(sp, external)
	if external && len(sp.LoadBalancerVIPs) > 0 && len(sp.LoadBalancerSourceRanges) > 0 {
		switch x.o.Backend {
		case "userspace":
			t.Firewall = "loadBalancerSourceRanges " + strings.Join(sp.LoadBalancerSourceRanges, ", ") + " are ignored by the userspace mode: every source reaches the load balancer IPs"
		case "iptables":
			if !sp.HasEndpoints {
				t.Firewall = "no firewall while the service has no endpoints (everything is rejected)"
				break
			}
			fallthrough
		default:
			t.Firewall = "load balancer IP traffic only from " + strings.Join(sp.LoadBalancerSourceRanges, ", ")
			nodeIP := x.plan.Node.PrimaryIPOrLoopback(x.plan.Family)
			allow := false
			for _, c := range sp.LoadBalancerSourceRanges {
				if compiler.CIDRContains(c, nodeIP) {
					allow = true
				}
			}
			if allow {
				t.Firewall += " (and from the load balancer IPs themselves: a range holds the node IP " + nodeIP + ")"
			}
			t.Firewall += "; other sources are dropped"
		}
	}
	return t
}

// why explains which endpoints serve a traffic class.
func (x *context) why(sp *compiler.ServicePort, eps []*compiler.Endpoint, localPolicy bool, pname, node string) string {
	ready := true
	for _, ep := range eps {
		if !ep.Ready {
			ready = false
		}
	}
	var parts []string
	switch x.o.Backend {
	case "userspace":
		return "the ready addresses of the Endpoints (kube-proxy v1.25's userspace mode ignores policies, topology and terminating endpoints)"
	case "ipvs":
		if localPolicy && len(sp.LocalEndpoints) == 0 {
			parts = append(parts, fmt.Sprintf("%s Local but no endpoint on %s: IPVS falls back to all cluster endpoints (kube-proxy PR 97081; iptables and nftables drop instead)", pname, node))
		}
	}
	if localPolicy && (x.o.Backend != "ipvs" || len(sp.LocalEndpoints) > 0) {
		parts = append(parts, fmt.Sprintf("%s Local: only endpoints on %s", pname, node))
	} else if len(parts) == 0 {
		parts = append(parts, "every ready endpoint of the cluster")
		if sp.TopologyMode != "" {
			parts[0] = "the ready endpoints " + map[string]string{"PreferSameZone": "hinted for this node's zone", "PreferSameNode": "hinted for this node"}[sp.TopologyMode]
		}
	}
	if !ready {
		parts = append(parts, "no ready endpoint, so the serving terminating ones are used (fallback)")
	}
	return strings.Join(parts, "; ")
}

// shares gives each endpoint's part of the connections and how the backend
// picks it.
func (x *context) shares(sp *compiler.ServicePort, eps []*compiler.Endpoint) []Share {
	n := len(eps)
	var out []Share
	for i, ep := range eps {
		s := Share{Endpoint: ep.String(), Weight: 1 / float64(n)}
		switch x.o.Backend {
		case "iptables":
			if i < n-1 {
				s.How = fmt.Sprintf("rule %d of %d: statistic random probability %0.10f (1/%d of what is left)", i+1, n, 1/float64(n-i), n-i)
			} else if n > 1 {
				s.How = fmt.Sprintf("rule %d of %d: the rest", i+1, n)
			} else {
				s.How = "the only endpoint"
			}
		case "nft":
			if n > 1 {
				s.How = fmt.Sprintf("numgen random mod %d = %d", n, i)
			} else if sp.SessionAffinityClientIP {
				s.How = "numgen random mod 1 = 0"
			} else {
				s.How = "the only endpoint (plain dnat)"
			}
		case "ipvs":
			sched := x.o.IPVSScheduler
			if sched == "" {
				sched = "rr"
			}
			s.How = fmt.Sprintf("real server, weight 1, scheduler %s", sched)
		case "userspace":
			s.How = "round robin"
		}
		if sp.SessionAffinityClientIP {
			s.How += fmt.Sprintf("; a client's later connections within %ds stick to the endpoint of its first", sp.StickyMaxAgeSeconds)
		}
		out = append(out, s)
	}
	return out
}

// use says whether ep gets a traffic class and why (not).
func (x *context) use(sp *compiler.ServicePort, ep *compiler.Endpoint, external bool, eps []*compiler.Endpoint) Use {
	for _, e := range eps {
		if e == ep {
			u := Use{Used: true, Weight: 1 / float64(len(eps))}
			if x.o.Backend == "userspace" {
				u.Weight = x.us(sp).weight[ep.String()]
			}
			switch {
			case x.o.Backend == "userspace":
				u.Why = "ready address of the Endpoints"
			case !ep.Ready:
				u.Why = "serving while terminating: used because no endpoint is ready (fallback)"
			case ep.IsLocal && (external && sp.ExternalPolicyLocal || !external && sp.InternalPolicyLocal):
				u.Why = "ready, on this node"
			case sp.TopologyMode == "PreferSameZone":
				u.Why = "ready, hinted for this node's zone"
			case sp.TopologyMode == "PreferSameNode":
				u.Why = "ready, hinted for this node"
			default:
				u.Why = "ready"
			}
			if x.o.Backend == "ipvs" && (external && sp.ExternalPolicyLocal || !external && sp.InternalPolicyLocal) && len(sp.LocalEndpoints) == 0 {
				u.Why += " (IPVS falls back to cluster endpoints: none is on this node)"
			}
			return u
		}
	}
	u := Use{}
	localPolicy := sp.InternalPolicyLocal
	pname := "internalTrafficPolicy"
	if external {
		localPolicy, pname = sp.ExternalPolicyLocal, "externalTrafficPolicy"
	}
	anyReady := false
	for _, e := range sp.Endpoints {
		if e.Ready && (!localPolicy || e.IsLocal) {
			anyReady = true
		}
	}
	switch {
	case x.o.Backend == "userspace" && !ep.Ready:
		u.Why = "not ready (the userspace mode uses ready addresses only)"
	case x.o.Backend == "userspace":
		u.Why = "not an address of the Endpoints object the userspace mode reads"
	case !ep.Ready && ep.Serving && ep.Terminating:
		if anyReady {
			u.Why = "terminating: serving terminating endpoints are only used when no endpoint is ready"
		} else {
			u.Why = "terminating: not used"
		}
		if localPolicy && !ep.IsLocal {
			u.Why = fmt.Sprintf("terminating, and on node %s, not this one (%s Local)", nodeOr(ep.NodeName), pname)
		}
	case !ep.Ready && ep.Terminating:
		u.Why = "terminating and no longer serving"
	case !ep.Ready:
		u.Why = "not ready"
	case localPolicy && !ep.IsLocal && (x.o.Backend != "ipvs" || len(sp.LocalEndpoints) > 0):
		u.Why = fmt.Sprintf("on node %s, not this one (%s Local)", nodeOr(ep.NodeName), pname)
		if ep.NodeName == "" {
			u.Why = fmt.Sprintf("has no nodeName, so never local (%s Local)", pname)
		}
	case sp.TopologyMode == "PreferSameZone":
		u.Why = fmt.Sprintf("topology: hinted for zone(s) %s, not this node's zone %q", strings.Join(ep.ZoneHints, ","), x.plan.Node.Zone)
	case sp.TopologyMode == "PreferSameNode":
		u.Why = fmt.Sprintf("topology: hinted for node(s) %s, not this node %q", strings.Join(ep.NodeHints, ","), x.plan.Node.Name)
	case !sp.UsesClusterEndpoints:
		u.Why = "not on this node (internalTrafficPolicy Local)"
	default:
		u.Why = "not used"
	}
	return u
}

func nodeOr(n string) string {
	if n == "" {
		return "(none)"
	}
	return n
}

// detector is the local-traffic detector of the plan's family.
func (x *context) detector() compiler.LocalDetector {
	iface := x.o.PodInterfaceNamePrefix
	if x.o.DetectLocalMode == "BridgeInterface" {
		iface = x.o.PodBridgeInterface
	}
	cidrs := x.o.ClusterCIDRs
	if x.o.DetectLocalMode == "NodeCIDR" && len(x.plan.Node.PodCIDRs) > 0 {
		// kube-proxy's NodeCIDR detector reads the Node's spec.podCIDRs.
		cidrs = x.plan.Node.PodCIDRs
	}
	det, _ := compiler.NewLocalDetector(x.plan.Family, x.o.DetectLocalMode, cidrs, iface)
	return det
}

// masquerade says who is source-NATed.
func (x *context) masquerade(sp *compiler.ServicePort, external bool) string {
	o := x.o
	det := x.detector()
	local := ""
	switch det.Mode {
	case "ClusterCIDR", "NodeCIDR":
		local = "from outside " + det.Value
	case "BridgeInterface":
		local = "not coming in on " + det.Value
	case "InterfaceNamePrefix":
		local = "not coming in on " + det.Value + "*"
	}
	if o.Backend == "userspace" {
		return "always: kube-proxy's proxy opens a new connection from the node, endpoints never see the client's address"
	}
	hairpin := "; a pod that reaches itself through the service is masqueraded (hairpin)"
	if !external {
		switch {
		case o.MasqueradeAll:
			return "every connection (--masquerade-all)"
		case det.IsImplemented():
			return "traffic " + local + " (the node itself, other hosts) is masqueraded; pods' traffic keeps its source" + hairpin
		default:
			return "not masqueraded: no local-traffic detector (give --cluster-cidr)" + hairpin
		}
	}
	if !sp.ExternalPolicyLocal {
		return "masqueraded: endpoints see the node's address (externalTrafficPolicy Cluster)"
	}
	if o.Backend == "ipvs" {
		return "not masqueraded: endpoints see the client's address (externalTrafficPolicy Local)" + hairpin
	}
	s := "not masqueraded: endpoints see the client's address (externalTrafficPolicy Local); traffic from the node itself is masqueraded and goes to any endpoint"
	if det.IsImplemented() {
		s += "; traffic from pods (" + strings.TrimPrefix(local, "from outside ") + ") is handled like cluster IP traffic"
	}
	return s
}

// sortedKeys returns a map's keys in order.
func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// userspaceTraffic is a traffic class in kube-proxy v1.25's userspace mode,
// read from its proxy table: which addresses have a portal, and the
// proxy's backends.
func (x *context) userspaceTraffic(sp *compiler.ServicePort, external bool, t Traffic) Traffic {
	us := x.us(sp)
	var via, lost []string
	add := func(label, hp string) {
		if us.portals[hp] {
			via = append(via, label+" "+hp)
		} else {
			lost = append(lost, label+" "+hp)
		}
	}
	if !external {
		add("cluster IP", hostPort(sp.ClusterIP, sp.Port))
	} else {
		if sp.NodePort != 0 {
			if us.nodePortOpen {
				via = append(via, fmt.Sprintf("NodePort %d", sp.NodePort))
			} else {
				lost = append(lost, fmt.Sprintf("NodePort %d", sp.NodePort))
			}
		}
		for _, ip := range sp.ExternalIPs {
			add("external IP", hostPort(ip, sp.Port))
		}
		for _, ip := range sp.LoadBalancerVIPs {
			add("load balancer IP", hostPort(ip, sp.Port))
		}
	}
	t.Via = via
	t.Masquerade = x.masquerade(sp, external)
	switch {
	case us.proxyNone:
		t.Via = append(via, lost...)
		t.Verdict = "NO-MATCH"
		t.Why = "kube-proxy does not proxy this port: " + strings.TrimPrefix(us.rows["proxy port"], "none: ")
		t.Masquerade = "no rule"
		return t
	case len(via) == 0:
		t.Via = lost
		t.Verdict = "NO-MATCH"
		t.Why = "kube-proxy writes no portal rule for it"
		if w := us.rows["warning"]; w != "" {
			t.Why += ": " + w
		}
		t.Masquerade = "no rule"
		return t
	case len(us.backends) == 0:
		t.Verdict = "REJECT"
		t.Why = "no ready address in the Endpoints: kube-proxy's userspace proxy accepts the connection and closes it"
	default:
		t.Verdict = "load-balanced"
		t.Why = "the ready addresses of the Endpoints (kube-proxy v1.25's userspace mode ignores policies, topology and terminating endpoints)"
		seen := map[string]bool{}
		for _, b := range us.backends {
			if seen[b] {
				continue
			}
			seen[b] = true
			t.Shares = append(t.Shares, Share{Endpoint: b, Weight: us.weight[b], How: "round robin"})
		}
		if sp.SessionAffinityClientIP {
			for i := range t.Shares {
				t.Shares[i].How += "; " + us.rows["affinity"]
			}
		}
	}
	if len(lost) > 0 {
		t.Why += "; no portal for " + strings.Join(lost, ", ")
	}
	if len(sp.LoadBalancerVIPs) > 0 && len(sp.LoadBalancerSourceRanges) > 0 && external {
		t.Firewall = "loadBalancerSourceRanges " + strings.Join(sp.LoadBalancerSourceRanges, ", ") + " are ignored by the userspace mode: every source reaches the load balancer IPs"
	}
	return t
}
