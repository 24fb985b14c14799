package diff

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/svc2rules/svc2rules/compiler"
)

// Side is one compiled side of a diff.
type Side struct {
	// Label names the side: the manifest path (OLD, NEW) or the backend.
	Label   string
	Backend string
	Plan    *compiler.Plan
	Output  string
	// NodePorts says where NodePorts are accepted on the node with this
	// side's backend and settings ("every local address", or a list).
	NodePorts string
}

// Report is the result of Compare.
type Report struct {
	Old SideSummary `json:"old"`
	New SideSummary `json:"new"`
	// Mode is "manifests" (OLD vs NEW manifests, one backend) or "backends"
	// (one manifest set, two backends).
	Mode     string `json:"mode"`
	Family   string `json:"family"`
	NodeName string `json:"nodeName,omitempty"`

	Ports     []PortChange `json:"ports"`
	Unchanged int          `json:"unchangedPorts"`
	// Impact lists what traffic starts to be rejected, dropped or becomes
	// unreachable (Breaks), then what starts to be forwarded.
	Impact []Impact `json:"impact"`
	// Node lists differences of the node as a whole (backends mode: where
	// NodePorts are accepted, service CIDR handling).
	Node []string `json:"nodeChanges,omitempty"`

	Rules RuleDiff `json:"rules"`
}

// Impact is one change of what happens to traffic.
type Impact struct {
	// Breaks is true when traffic that was forwarded no longer is (or an
	// endpoint stops receiving traffic), false when traffic starts to be
	// forwarded.
	Breaks bool   `json:"breaks"`
	Text   string `json:"text"`
}

// SideSummary is what the report says about one side.
type SideSummary struct {
	Label   string `json:"label"`
	Backend string `json:"backend"`
	Ports   int    `json:"servicePorts"`
	Lines   int    `json:"ruleLines"`
}

// RuleDiff is the unified diff of the compiled outputs.
type RuleDiff struct {
	OldLabel string `json:"old"`
	NewLabel string `json:"new"`
	Added    int    `json:"added"`
	Removed  int    `json:"removed"`
	Hunks    []Hunk `json:"hunks"`
	// Chains names what every hashed chain of an added or removed line
	// belongs to.
	Chains []Chain `json:"chains"`
}

// Chain is one of kube-proxy's hashed chain names and its owner.
type Chain struct {
	Name string `json:"name"`
	// Service is the SPN and protocol ("ns/svc:port tcp").
	Service string `json:"service"`
	// Role is cluster, local, external, firewall or endpoint IP:port.
	Role string `json:"role"`
}

// Changed reports whether the two sides differ.
func (r *Report) Changed() bool {
	return len(r.Ports) > 0 || len(r.Rules.Hunks) > 0 || len(r.Node) > 0
}

// PortChange is what happened to one service port.
type PortChange struct {
	// Key is "ns/name:port/PROTO" (stable sort key).
	Key      string `json:"key"`
	SPN      string `json:"service"`
	Protocol string `json:"protocol"`
	// Change is "added", "removed" or "changed".
	Change string `json:"change"`
	// Fields are the changed settings, "what: before → after".
	Fields []string `json:"fields,omitempty"`
	// EndpointsAdded / EndpointsRemoved are "IP:port" (with their condition
	// when not simply ready); EndpointsChanged "IP:port: before → after".
	EndpointsAdded   []string `json:"endpointsAdded,omitempty"`
	EndpointsRemoved []string `json:"endpointsRemoved,omitempty"`
	EndpointsChanged []string `json:"endpointsChanged,omitempty"`
	// Balancing is the load-balancing share of each endpoint, before → after.
	Balancing []string `json:"balancing,omitempty"`
	// Traffic is the verdict of every way in, before → after (only those
	// that change; for added and removed ports, all of them).
	Traffic []Traffic `json:"traffic,omitempty"`
}

// Traffic is the fate of one way into a service port.
type Traffic struct {
	// Path is "cluster IP 10.96.0.10:80", "NodePort 30080", "external IP
	// 1.2.3.4:80" or "load balancer IP 5.6.7.8:80".
	Path   string `json:"path"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// Verdicts of a way in.
const (
	verdictNone = "unreachable (no rule)"
)

// portKey identifies a service port across sides.
func portKey(sp *compiler.ServicePort) string {
	return sp.SPN + "/" + string(sp.Protocol)
}

// Compare compares two compiled sides. mode is "manifests" or "backends".
func Compare(old, new Side, mode string) *Report {
	r := &Report{Mode: mode}
	if new.Plan != nil {
		r.Family = string(new.Plan.Family)
		r.NodeName = new.Plan.Node.Name
	}
	r.Old = SideSummary{Label: old.Label, Backend: old.Backend, Ports: portCount(old.Plan), Lines: len(splitLines(old.Output))}
	r.New = SideSummary{Label: new.Label, Backend: new.Backend, Ports: portCount(new.Plan), Lines: len(splitLines(new.Output))}

	oldPorts, newPorts := index(old.Plan), index(new.Plan)
	keys := map[string]bool{}
	for k := range oldPorts {
		keys[k] = true
	}
	for k := range newPorts {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var oldGate, newGate bool
	if old.Plan != nil {
		oldGate = old.Plan.FeatureGates.AllowServiceExternalIPs
	}
	if new.Plan != nil {
		newGate = new.Plan.FeatureGates.AllowServiceExternalIPs
	}
	nodeName := r.NodeName
	for _, k := range sorted {
		o, n := oldPorts[k], newPorts[k]
		pc := comparePort(o, n, oldGate, newGate, nodeName)
		if pc == nil {
			r.Unchanged++
			continue
		}
		r.Ports = append(r.Ports, *pc)
	}
	r.Impact = impact(r.Ports)
	if old.NodePorts != new.NodePorts && old.NodePorts != "" && new.NodePorts != "" {
		r.Node = append(r.Node, fmt.Sprintf("NodePorts accepted on: %s → %s", old.NodePorts, new.NodePorts))
	}
	if mode == "backends" {
		r.Node = append(r.Node, backendNotes(old, new)...)
	}

	r.Rules = RuleDiff{OldLabel: old.Label, NewLabel: new.Label, Hunks: Unified(old.Output, new.Output)}
	chains := chainIndex(old.Plan, new.Plan)
	used := map[string]bool{}
	for i := range r.Rules.Hunks {
		h := &r.Rules.Hunks[i]
		svcs := map[string]bool{}
		for _, l := range h.Lines {
			switch l[0] {
			case '+':
				r.Rules.Added++
			case '-':
				r.Rules.Removed++
			default:
				continue // context: its chains are not what changed
			}
			for _, name := range chainNameRE.FindAllString(l, -1) {
				if c, ok := chains[name]; ok {
					used[name] = true
					svcs[c.Service] = true
				}
			}
		}
		for s := range svcs {
			h.Services = append(h.Services, s)
		}
		sort.Strings(h.Services)
	}
	for name := range used {
		r.Rules.Chains = append(r.Rules.Chains, chains[name])
	}
	sort.Slice(r.Rules.Chains, func(i, j int) bool { return r.Rules.Chains[i].Name < r.Rules.Chains[j].Name })
	return r
}

func portCount(p *compiler.Plan) int {
	if p == nil {
		return 0
	}
	return len(p.ServicePorts)
}

func index(p *compiler.Plan) map[string]*compiler.ServicePort {
	m := map[string]*compiler.ServicePort{}
	if p == nil {
		return m
	}
	for _, sp := range p.ServicePorts {
		m[portKey(sp)] = sp
	}
	return m
}

// comparePort compares one service port on both sides (nil: unchanged).
func comparePort(o, n *compiler.ServicePort, oldGate, newGate bool, node string) *PortChange {
	sp := n
	if sp == nil {
		sp = o
	}
	pc := &PortChange{Key: portKey(sp), SPN: sp.SPN, Protocol: string(sp.Protocol)}
	oldWays, newWays := ways(o, oldGate, node), ways(n, newGate, node)
	switch {
	case o == nil:
		pc.Change = "added"
		for _, w := range newWays {
			pc.Traffic = append(pc.Traffic, Traffic{Path: w.path, Before: verdictNone, After: w.verdict})
		}
		for _, ep := range n.Endpoints {
			pc.EndpointsAdded = append(pc.EndpointsAdded, describeEndpoint(ep))
		}
		pc.Balancing = balancing(nil, n)
		return pc
	case n == nil:
		pc.Change = "removed"
		for _, w := range oldWays {
			pc.Traffic = append(pc.Traffic, Traffic{Path: w.path, Before: w.verdict, After: verdictNone})
		}
		for _, ep := range o.Endpoints {
			pc.EndpointsRemoved = append(pc.EndpointsRemoved, describeEndpoint(ep))
		}
		return pc
	}
	pc.Change = "changed"
	field := func(what, before, after string) {
		if before != after {
			pc.Fields = append(pc.Fields, fmt.Sprintf("%s: %s → %s", what, before, after))
		}
	}
	field("cluster IP", o.ClusterIP, n.ClusterIP)
	field("port", itoa(o.Port), itoa(n.Port))
	field("nodePort", orNone(o.NodePort), orNone(n.NodePort))
	field("healthCheckNodePort", orNone(o.HealthCheckNodePort), orNone(n.HealthCheckNodePort))
	field("externalIPs", list(o.ExternalIPs), list(n.ExternalIPs))
	field("load balancer IPs", list(o.LoadBalancerVIPs), list(n.LoadBalancerVIPs))
	field("loadBalancerSourceRanges", list(o.LoadBalancerSourceRanges), list(n.LoadBalancerSourceRanges))
	field("sessionAffinity", affinity(o), affinity(n))
	field("externalTrafficPolicy", policy(o.ExternalPolicyLocal), policy(n.ExternalPolicyLocal))
	field("internalTrafficPolicy", policy(o.InternalPolicyLocal), policy(n.InternalPolicyLocal))
	field("topology", topology(o.TopologyMode), topology(n.TopologyMode))

	oldEps, newEps := map[string]*compiler.Endpoint{}, map[string]*compiler.Endpoint{}
	for _, ep := range o.Endpoints {
		oldEps[ep.String()] = ep
	}
	for _, ep := range n.Endpoints {
		newEps[ep.String()] = ep
		if prev, ok := oldEps[ep.String()]; !ok {
			pc.EndpointsAdded = append(pc.EndpointsAdded, describeEndpoint(ep))
		} else if a, b := condition(prev), condition(ep); a != b {
			pc.EndpointsChanged = append(pc.EndpointsChanged, fmt.Sprintf("%s: %s → %s", ep.String(), a, b))
		}
	}
	for _, ep := range o.Endpoints {
		if _, ok := newEps[ep.String()]; !ok {
			pc.EndpointsRemoved = append(pc.EndpointsRemoved, describeEndpoint(ep))
		}
	}
	pc.Balancing = balancing(o, n)

	oldBy := map[string]string{}
	for _, w := range oldWays {
		oldBy[w.path] = w.verdict
	}
	newBy := map[string]string{}
	for _, w := range newWays {
		newBy[w.path] = w.verdict
		before, ok := oldBy[w.path]
		if !ok {
			before = verdictNone
		}
		if before != w.verdict {
			pc.Traffic = append(pc.Traffic, Traffic{Path: w.path, Before: before, After: w.verdict})
		}
	}
	for _, w := range oldWays {
		if _, ok := newBy[w.path]; !ok {
			pc.Traffic = append(pc.Traffic, Traffic{Path: w.path, Before: w.verdict, After: verdictNone})
		}
	}
	if len(pc.Fields) == 0 && len(pc.EndpointsAdded) == 0 && len(pc.EndpointsRemoved) == 0 && len(pc.EndpointsChanged) == 0 && len(pc.Balancing) == 0 && len(pc.Traffic) == 0 {
		return nil
	}
	return pc
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func orNone(n int32) string {
	if n == 0 {
		return "none"
	}
	return itoa(n)
}

func list(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

func affinity(sp *compiler.ServicePort) string {
	if sp.SessionAffinityClientIP {
		return fmt.Sprintf("ClientIP (%ds)", sp.StickyMaxAgeSeconds)
	}
	return "None"
}

func policy(local bool) string {
	if local {
		return "Local"
	}
	return "Cluster"
}

func topology(mode string) string {
	if mode == "" {
		return "all endpoints"
	}
	return mode
}

// condition is an endpoint's state as kube-proxy reads it.
func condition(ep *compiler.Endpoint) string {
	switch {
	case ep.Ready && ep.Terminating:
		return "ready, terminating"
	case ep.Ready:
		return "ready"
	case ep.Serving && ep.Terminating:
		return "serving, terminating"
	case ep.Terminating:
		return "terminating"
	}
	return "not ready"
}

func describeEndpoint(ep *compiler.Endpoint) string {
	s := ep.String()
	var notes []string
	if c := condition(ep); c != "ready" {
		notes = append(notes, c)
	}
	if ep.NodeName != "" {
		notes = append(notes, "node "+ep.NodeName)
	}
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, ", ") + ")"
	}
	return s
}

// balancing gives the share of traffic each endpoint gets, per chain,
// before → after. kube-proxy spreads traffic evenly over the endpoints of a
// chain (iptables: probabilities 1/n, 1/(n-1), ...; nftables: numgen mod n;
// ipvs: weight 1 each).
func balancing(o, n *compiler.ServicePort) []string {
	var out []string
	share := func(eps []*compiler.Endpoint) string {
		if len(eps) == 0 {
			return "no endpoints"
		}
		return fmt.Sprintf("%d × %s", len(eps), percent(1, len(eps)))
	}
	chains := []struct {
		what string
		get  func(*compiler.ServicePort) []*compiler.Endpoint
		use  func(*compiler.ServicePort) bool
	}{
		{"cluster", func(sp *compiler.ServicePort) []*compiler.Endpoint { return sp.ClusterEndpoints }, (*compiler.ServicePort).UsesClusterChain},
		{"node-local", func(sp *compiler.ServicePort) []*compiler.Endpoint { return sp.LocalEndpoints }, (*compiler.ServicePort).UsesLocalChain},
	}
	for _, c := range chains {
		var before, after string
		if o != nil && c.use(o) {
			before = share(c.get(o))
		}
		if n != nil && c.use(n) {
			after = share(c.get(n))
		}
		if before == after {
			if before != "" && o != nil && n != nil && !sameEndpoints(c.get(o), c.get(n)) {
				out = append(out, fmt.Sprintf("%s traffic: %s (other endpoints)", c.what, after))
			}
			continue
		}
		if before == "" {
			before = "not used"
		}
		if after == "" {
			after = "not used"
		}
		out = append(out, fmt.Sprintf("%s traffic: %s → %s", c.what, before, after))
	}
	return out
}

func sameEndpoints(a, b []*compiler.Endpoint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].String() != b[i].String() {
			return false
		}
	}
	return true
}

func percent(num, den int) string {
	p := 100 * float64(num) / float64(den)
	s := strconv.FormatFloat(p, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + "%"
}

// way is one way into a service port and what kube-proxy does with it.
type way struct{ path, verdict string }

// ways lists the ways into a service port with kube-proxy's verdict for
// each: forwarded (to how many endpoints), REJECTed (no endpoints at all) or
// DROPped (traffic policy Local and no endpoint on this node).
func ways(sp *compiler.ServicePort, externalIPsGate bool, node string) []way {
	if sp == nil {
		return nil
	}
	if node == "" {
		node = "this node"
	}
	hostPort := func(ip string, port int32) string {
		if strings.Contains(ip, ":") {
			return fmt.Sprintf("[%s]:%d", ip, port)
		}
		return fmt.Sprintf("%s:%d", ip, port)
	}
	forwarded := func(eps []*compiler.Endpoint) string {
		if len(eps) == 1 {
			return "forwarded to 1 endpoint"
		}
		return fmt.Sprintf("forwarded to %d endpoints", len(eps))
	}
	var internal, external string
	switch {
	case !sp.HasEndpoints:
		internal = "REJECTED (no endpoints)"
		external = internal
	default:
		if sp.HasInternalEndpoints() {
			if sp.InternalPolicyLocal {
				internal = forwarded(sp.LocalEndpoints) + " on " + node
			} else {
				internal = forwarded(sp.ClusterEndpoints)
			}
		} else {
			internal = "DROPPED (internalTrafficPolicy Local, no endpoint on " + node + ")"
		}
		if sp.HasExternalEndpoints() {
			if sp.ExternalPolicyLocal {
				external = forwarded(sp.LocalEndpoints) + " on " + node
			} else {
				external = forwarded(sp.ClusterEndpoints)
			}
		} else {
			external = "DROPPED (externalTrafficPolicy Local, no endpoint on " + node + ")"
		}
	}
	out := []way{{"cluster IP " + hostPort(sp.ClusterIP, sp.Port), internal}}
	if sp.NodePort != 0 {
		out = append(out, way{fmt.Sprintf("NodePort %d", sp.NodePort), external})
	}
	if externalIPsGate {
		for _, ip := range sp.ExternalIPs {
			out = append(out, way{"external IP " + hostPort(ip, sp.Port), external})
		}
	}
	for _, ip := range sp.LoadBalancerVIPs {
		v := external
		if len(sp.LoadBalancerSourceRanges) > 0 && sp.HasEndpoints {
			v += ", only from " + strings.Join(sp.LoadBalancerSourceRanges, ", ")
		}
		out = append(out, way{"load balancer IP " + hostPort(ip, sp.Port), v})
	}
	return out
}

// impact lists the changes of verdict that break traffic, then those that
// start to carry it.
func impact(ports []PortChange) []Impact {
	var bad, good []Impact
	for _, pc := range ports {
		for _, t := range pc.Traffic {
			what := ""
			switch {
			case t.After == verdictNone && t.Before != verdictNone:
				what = "becomes unreachable (its rules are removed)"
			case strings.HasPrefix(t.After, "REJECTED") && !strings.HasPrefix(t.Before, "REJECTED"):
				what = "starts to be " + t.After
			case strings.HasPrefix(t.After, "DROPPED") && !strings.HasPrefix(t.Before, "DROPPED"):
				what = "starts to be " + t.After
			case strings.HasPrefix(t.After, "forwarded") && !strings.HasPrefix(t.Before, "forwarded"):
				good = append(good, Impact{false, fmt.Sprintf("%s %s %s: starts to be %s", pc.SPN, pc.Protocol, t.Path, t.After)})
			}
			if what != "" {
				bad = append(bad, Impact{true, fmt.Sprintf("%s %s %s: %s", pc.SPN, pc.Protocol, t.Path, what)})
			}
		}
		if pc.Change == "changed" {
			for _, ep := range pc.EndpointsRemoved {
				bad = append(bad, Impact{true, fmt.Sprintf("%s %s: endpoint %s no longer receives traffic", pc.SPN, pc.Protocol, ep)})
			}
		}
	}
	return append(bad, good...)
}

// chainNameRE matches kube-proxy's hashed iptables chain names.
var chainNameRE = regexp.MustCompile(`KUBE-(?:SVC|SVL|EXT|FW|SEP)-[A-Z2-7]{16}`)

// hash16 is kube-proxy's chain-name hash (pkg/proxy/iptables servicePortChainName).
func hash16(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(sum[:])[:16]
}

// chainIndex names every hashed iptables chain of both plans' service ports
// (the ipvs backend's iptables part uses none; nftables names are readable).
func chainIndex(plans ...*compiler.Plan) map[string]Chain {
	m := map[string]Chain{}
	for _, p := range plans {
		if p == nil {
			continue
		}
		for _, sp := range p.ServicePorts {
			proto := strings.ToLower(string(sp.Protocol))
			svc := sp.SPN + " " + proto
			h := hash16(sp.SPN + proto)
			for prefix, role := range map[string]string{"KUBE-SVC-": "cluster", "KUBE-SVL-": "local", "KUBE-EXT-": "external", "KUBE-FW-": "firewall"} {
				m[prefix+h] = Chain{Name: prefix + h, Service: svc, Role: role}
			}
			for _, ep := range sp.Endpoints {
				name := "KUBE-SEP-" + hash16(sp.SPN+proto+ep.String())
				m[name] = Chain{Name: name, Service: svc, Role: "endpoint " + ep.String()}
			}
		}
	}
	return m
}

// backendNotes are the node-wide differences of two proxy modes for the
// same plan.
func backendNotes(old, new Side) []string {
	var out []string
	if new.Plan == nil {
		return nil
	}
	plan := new.Plan
	has := func(b string) bool { return old.Backend == b || new.Backend == b }
	if has("nft") && len(plan.ServiceCIDRs) > 0 {
		out = append(out, fmt.Sprintf("nft rejects traffic to addresses of the service CIDRs (%s) that no Service uses; %s does not", strings.Join(plan.ServiceCIDRs, ", "), other(old, new, "nft")))
	}
	if has("nft") && len(plan.ServiceCIDRs) == 0 {
		out = append(out, "nft: no service CIDR known (--service-cidrs or ServiceCIDR objects), so no rule rejects traffic to unused service addresses")
	}
	if has("ipvs") {
		out = append(out, "ipvs binds every ClusterIP, external IP and load balancer IP to the kube-ipvs0 interface of the node")
	}
	if has("iptables") && plan.TotalEndpoints > 1000 {
		out = append(out, fmt.Sprintf("iptables drops its per-endpoint comments above 1000 endpoints (here %d)", plan.TotalEndpoints))
	}
	return out
}

func other(old, new Side, b string) string {
	if old.Backend == b {
		return new.Backend
	}
	return old.Backend
}
