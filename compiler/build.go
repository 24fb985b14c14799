package compiler

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	netutils "k8s.io/utils/net"
)

const labelTopologyZone = "topology.kubernetes.io/zone"

// Build turns normalised inputs into the plan for one node and IP family.
// It is deterministic: the same inputs and options give the same plan.
func Build(in *Inputs, opts Options) (*Plan, []Note, error) {
	var notes []Note
	family := opts.Family
	if family == "" {
		family = v1.IPv4Protocol
	}
	if family != v1.IPv4Protocol && family != v1.IPv6Protocol {
		return nil, nil, fmt.Errorf("unknown IP family %q", family)
	}
	fg, err := ParseFeatureGates(opts.FeatureGates)
	if err != nil {
		return nil, nil, err
	}
	node, err := resolveNode(in, opts, family)
	if err != nil {
		return nil, nil, err
	}
	plan := &Plan{Family: family, Node: node, FeatureGates: fg}

	cidrs := append([]string(nil), opts.ServiceCIDRs...)
	for _, c := range in.ServiceCIDRs {
		cidrs = append(cidrs, c.CIDRs...)
	}
	seen := map[string]bool{}
	for _, c := range cidrs {
		if _, _, err := netutils.ParseCIDRSloppy(c); err != nil {
			return nil, nil, fmt.Errorf("invalid service CIDR %q", c)
		}
		if netutils.IsIPv6CIDRString(c) == (family == v1.IPv6Protocol) && !seen[c] {
			seen[c] = true
			plan.ServiceCIDRs = append(plan.ServiceCIDRs, c)
		}
	}
	sort.Strings(plan.ServiceCIDRs)

	// Endpoints per service port key, from the slices of this family.
	addrType := discovery.AddressTypeIPv4
	if family == v1.IPv6Protocol {
		addrType = discovery.AddressTypeIPv6
	}
	slices := make([]*EndpointSliceObject, 0, len(in.EndpointSlices))
	for _, s := range in.EndpointSlices {
		if s.AddressType != addrType {
			continue
		}
		if s.Labels[discovery.LabelServiceName] == "" || s.Name == "" {
			notes = append(notes, Note{Source: s.Source, Object: "EndpointSlice " + s.Namespace + "/" + s.Name, Message: "ignored: no " + discovery.LabelServiceName + " label"})
			continue
		}
		slices = append(slices, s)
	}
	// kube-proxy iterates a service's slices in Go map order; sorting by name
	// makes the (rare) duplicate-endpoint resolution deterministic.
	sort.SliceStable(slices, func(i, j int) bool {
		a, b := slices[i], slices[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	type epKey struct {
		ns, svc, port string
		proto         v1.Protocol
	}
	endpointSets := map[epKey]map[string]*Endpoint{}
	for _, s := range slices {
		svc := s.Labels[discovery.LabelServiceName]
		for _, p := range s.Ports {
			if p.Name == nil || p.Port == nil || *p.Port == 0 || p.Protocol == nil {
				continue
			}
			k := epKey{s.Namespace, svc, *p.Name, *p.Protocol}
			set := endpointSets[k]
			if set == nil {
				set = map[string]*Endpoint{}
				endpointSets[k] = set
			}
			for i := range s.Endpoints {
				ep := newEndpoint(&s.Endpoints[i], *p.Port, node.Name)
				if ep == nil {
					continue
				}
				str := ep.String()
				if _, exists := set[str]; !exists || !ep.Terminating {
					set[str] = ep
				}
			}
		}
	}

	for _, so := range in.Services {
		s := so.Service
		obj := "Service " + s.Namespace + "/" + s.Name
		if s.Spec.ClusterIP == "" {
			notes = append(notes, Note{Source: so.Source, Object: obj, Message: "has no clusterIP: kube-proxy skips it (svc2rules does not allocate ClusterIPs)"})
			continue
		}
		if s.Spec.Type == v1.ServiceTypeExternalName {
			continue
		}
		cip := clusterIPByFamily(family, s)
		if cip == "" {
			continue
		}
		for i := range s.Spec.Ports {
			sp := newServicePort(s, &s.Spec.Ports[i], family, cip)
			sp.Source = so.Source
			if set := endpointSets[epKey{s.Namespace, s.Name, sp.PortName, sp.Protocol}]; len(set) > 0 {
				sp.Endpoints = make([]*Endpoint, 0, len(set))
				for _, ep := range set {
					sp.Endpoints = append(sp.Endpoints, ep)
				}
				sort.Slice(sp.Endpoints, func(i, j int) bool { return sp.Endpoints[i].String() < sp.Endpoints[j].String() })
			}
			plan.TotalEndpoints += len(sp.Endpoints)
			categorizeEndpoints(sp, node.Name, node.Zone)
			plan.ServicePorts = append(plan.ServicePorts, sp)
		}
	}
	sort.SliceStable(plan.ServicePorts, func(i, j int) bool {
		a, b := plan.ServicePorts[i], plan.ServicePorts[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.PortName != b.PortName {
			return a.PortName < b.PortName
		}
		return a.Protocol < b.Protocol
	})
	return plan, notes, nil
}

// resolveNode gathers the node facts for the family: name, zone (a Node object
// named like the node overrides --zone, as kube-proxy's node informer does),
// primary IP (flags first, else the Node object's InternalIP) and interface
// addresses.
func resolveNode(in *Inputs, opts Options, family v1.IPFamily) (Node, error) {
	n := Node{Name: opts.NodeName, Zone: opts.Zone}
	var nodeObj *NodeObject
	if opts.NodeName != "" {
		for _, no := range in.Nodes {
			if no.Name == opts.NodeName {
				nodeObj = no
			}
		}
	}
	if nodeObj != nil {
		n.Zone = nodeObj.Labels[labelTopologyZone]
	}
	isMine := func(ip net.IP) bool { return (ip.To4() == nil) == (family == v1.IPv6Protocol) }
	var primaries []string
	for _, s := range opts.NodeIPs {
		ip := netutils.ParseIPSloppy(s)
		if ip == nil {
			return n, fmt.Errorf("invalid node IP %q", s)
		}
		primaries = append(primaries, ip.String())
		if isMine(ip) && n.IP == "" {
			n.IP = ip.String()
		}
	}
	if nodeObj != nil {
		n.PodCIDRs = append([]string(nil), nodeObj.Spec.PodCIDRs...)
		if len(n.PodCIDRs) == 0 && nodeObj.Spec.PodCIDR != "" {
			n.PodCIDRs = []string{nodeObj.Spec.PodCIDR}
		}
	}
	if len(opts.NodeIPs) == 0 && nodeObj != nil {
		// kube-proxy takes the Node's host IPs as utilnode.GetNodeHostIPs
		// orders them: InternalIPs first, then ExternalIPs.
		for _, typ := range []v1.NodeAddressType{v1.NodeInternalIP, v1.NodeExternalIP} {
			for _, a := range nodeObj.Status.Addresses {
				if a.Type != typ {
					continue
				}
				if ip := netutils.ParseIPSloppy(a.Address); ip != nil && isMine(ip) && n.IP == "" {
					n.IP = ip.String()
				}
			}
		}
	}
	addrs := map[string]bool{}
	if n.IP != "" {
		addrs[n.IP] = true
	}
	for _, s := range opts.NodeAddresses {
		ip := netutils.ParseIPSloppy(s)
		if ip == nil {
			return n, fmt.Errorf("invalid node address %q", s)
		}
		if isMine(ip) {
			addrs[ip.String()] = true
		}
	}
	if family == v1.IPv6Protocol {
		addrs["::1"] = true
	} else {
		addrs["127.0.0.1"] = true
	}
	for a := range addrs {
		n.Addresses = append(n.Addresses, a)
	}
	sort.Strings(n.Addresses)
	return n, nil
}

// clusterIPByFamily is proxyutil.GetClusterIPByFamily, normalised.
func clusterIPByFamily(family v1.IPFamily, s *v1.Service) string {
	raw := ""
	if len(s.Spec.IPFamilies) == 0 {
		if s.Spec.ClusterIP == "" || s.Spec.ClusterIP == v1.ClusterIPNone {
			return ""
		}
		if netutils.IsIPv6String(s.Spec.ClusterIP) == (family == v1.IPv6Protocol) {
			raw = s.Spec.ClusterIP
		}
	} else {
		for i, f := range s.Spec.IPFamilies {
			if f == family && i < len(s.Spec.ClusterIPs) {
				raw = s.Spec.ClusterIPs[i]
			}
		}
	}
	if raw == "" {
		return ""
	}
	return netutils.ParseIPSloppy(raw).String()
}

// externallyAccessibleType is apiservice.ExternallyAccessible.
func externallyAccessibleType(s *v1.Service) bool {
	return s.Spec.Type == v1.ServiceTypeLoadBalancer || s.Spec.Type == v1.ServiceTypeNodePort ||
		(s.Spec.Type == v1.ServiceTypeClusterIP && len(s.Spec.ExternalIPs) > 0)
}

// newServicePort is pkg/proxy newBaseServiceInfo for one port and family.
func newServicePort(s *v1.Service, p *v1.ServicePort, family v1.IPFamily, clusterIP string) *ServicePort {
	sp := &ServicePort{
		Namespace: s.Namespace,
		Name:      s.Name,
		PortName:  p.Name,
		Protocol:  p.Protocol,
		ClusterIP: clusterIP,
		Port:      p.Port,
		NodePort:  p.NodePort,
	}
	sp.SPN = s.Namespace + "/" + s.Name
	if p.Name != "" {
		sp.SPN += ":" + p.Name
	}
	sp.ExternalPolicyLocal = externallyAccessibleType(s) && s.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal
	sp.InternalPolicyLocal = s.Spec.InternalTrafficPolicy != nil && *s.Spec.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal
	if s.Spec.SessionAffinity == v1.ServiceAffinityClientIP {
		sp.SessionAffinityClientIP = true
		sp.StickyMaxAgeSeconds = *s.Spec.SessionAffinityConfig.ClientIP.TimeoutSeconds
	}
	for _, e := range s.Spec.ExternalIPs {
		ip := netutils.ParseIPSloppy(e)
		if ip == nil {
			continue
		}
		if (ip.To4() == nil) == (family == v1.IPv6Protocol) {
			sp.ExternalIPs = append(sp.ExternalIPs, ip.String())
		}
	}
	zero := false
	for _, r := range s.Spec.LoadBalancerSourceRanges {
		_, cidr, err := netutils.ParseCIDRSloppy(strings.TrimSpace(r))
		if err != nil {
			continue
		}
		if netutils.IsIPv6CIDR(cidr) != (family == v1.IPv6Protocol) {
			continue
		}
		if ones, _ := cidr.Mask.Size(); ones == 0 {
			zero = true
		}
		sp.LoadBalancerSourceRanges = append(sp.LoadBalancerSourceRanges, cidr.String())
	}
	if zero {
		sp.LoadBalancerSourceRanges = nil
	}
	for _, ing := range s.Status.LoadBalancer.Ingress {
		if ing.IP == "" || (ing.IPMode != nil && *ing.IPMode != v1.LoadBalancerIPModeVIP) {
			continue
		}
		ip := netutils.ParseIPSloppy(ing.IP)
		if ip != nil && (ip.To4() == nil) == (family == v1.IPv6Protocol) {
			sp.LoadBalancerVIPs = append(sp.LoadBalancerVIPs, ip.String())
		}
	}
	if s.Spec.Type == v1.ServiceTypeLoadBalancer && sp.ExternalPolicyLocal {
		sp.HealthCheckNodePort = s.Spec.HealthCheckNodePort
	}
	sp.ExternallyAccessible = sp.NodePort != 0 || len(sp.LoadBalancerVIPs) > 0 || len(sp.ExternalIPs) > 0
	sp.UsesClusterEndpoints = !sp.InternalPolicyLocal || sp.ExternallyAccessible
	sp.UsesLocalEndpoints = sp.InternalPolicyLocal || (sp.ExternalPolicyLocal && sp.ExternallyAccessible)
	return sp
}

// newEndpoint is the part of EndpointSliceCache.addEndpoints that builds one
// endpoint; nil for an endpoint without addresses.
func newEndpoint(e *discovery.Endpoint, port int32, nodeName string) *Endpoint {
	if len(e.Addresses) == 0 {
		return nil
	}
	ip := netutils.ParseIPSloppy(e.Addresses[0])
	if ip == nil {
		return nil
	}
	ep := &Endpoint{
		IP:          ip.String(),
		Port:        port,
		Ready:       e.Conditions.Ready == nil || *e.Conditions.Ready,
		Serving:     e.Conditions.Serving == nil || *e.Conditions.Serving,
		Terminating: e.Conditions.Terminating != nil && *e.Conditions.Terminating,
	}
	ep.hostPort = joinHostPort(ep.IP, port)
	if e.NodeName != nil {
		ep.NodeName = *e.NodeName
		ep.IsLocal = nodeName != "" && *e.NodeName == nodeName
	}
	if e.Hints != nil {
		ep.ZoneHints = uniqueSorted(func(yield func(string)) {
			for _, z := range e.Hints.ForZones {
				yield(z.Name)
			}
		})
		ep.NodeHints = uniqueSorted(func(yield func(string)) {
			for _, n := range e.Hints.ForNodes {
				yield(n.Name)
			}
		})
	}
	return ep
}

func uniqueSorted(each func(yield func(string))) []string {
	m := map[string]bool{}
	each(func(s string) { m[s] = true })
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// categorizeEndpoints is pkg/proxy CategorizeEndpoints. The union case, which
// kube-proxy builds from a Go map, is sorted by endpoint string.
func categorizeEndpoints(sp *ServicePort, nodeName, zone string) {
	eps := sp.Endpoints
	if len(eps) == 0 {
		return
	}
	filter := func(keep func(*Endpoint) bool) []*Endpoint {
		var out []*Endpoint
		for _, ep := range eps {
			if keep(ep) {
				out = append(out, ep)
			}
		}
		return out
	}
	var useServingTerminating bool
	if sp.UsesClusterEndpoints {
		sp.TopologyMode = topologyModeFromHints(eps, nodeName, zone)
		sp.ClusterEndpoints = filter(func(ep *Endpoint) bool {
			return ep.Ready && availableForTopology(ep, sp.TopologyMode, nodeName, zone)
		})
		if len(sp.ClusterEndpoints) == 0 {
			sp.ClusterEndpoints = filter(func(ep *Endpoint) bool { return ep.Serving && ep.Terminating })
		}
		if len(sp.ClusterEndpoints) > 0 {
			sp.HasEndpoints = true
		}
	}
	if !sp.UsesLocalEndpoints {
		sp.ReachableEndpoints = sp.ClusterEndpoints
		return
	}
	var localReady, localServingTerminating bool
	for _, ep := range eps {
		if ep.Ready {
			sp.HasEndpoints = true
			if ep.IsLocal {
				localReady = true
			}
		} else if ep.Serving && ep.Terminating {
			sp.HasEndpoints = true
			if ep.IsLocal {
				localServingTerminating = true
			}
		}
	}
	if localReady {
		sp.LocalEndpoints = filter(func(ep *Endpoint) bool { return ep.IsLocal && ep.Ready })
	} else if localServingTerminating {
		useServingTerminating = true
		sp.LocalEndpoints = filter(func(ep *Endpoint) bool { return ep.IsLocal && ep.Serving && ep.Terminating })
	}
	if !sp.UsesClusterEndpoints {
		sp.ReachableEndpoints = sp.LocalEndpoints
		return
	}
	if sp.TopologyMode == "" && !useServingTerminating {
		sp.ReachableEndpoints = sp.ClusterEndpoints
		return
	}
	inUnion := map[*Endpoint]bool{}
	for _, ep := range sp.ClusterEndpoints {
		inUnion[ep] = true
	}
	for _, ep := range sp.LocalEndpoints {
		inUnion[ep] = true
	}
	sp.ReachableEndpoints = filter(func(ep *Endpoint) bool { return inUnion[ep] })
}

// topologyModeFromHints is pkg/proxy topologyModeFromHints (v1.37:
// PreferSameTrafficDistribution is GA, so node hints are always honoured).
func topologyModeFromHints(eps []*Endpoint, nodeName, zone string) string {
	hasReady := false
	hasForNode, allNodeHints := false, true
	hasForZone, allZoneHints := false, true
	for _, ep := range eps {
		if !ep.Ready {
			continue
		}
		hasReady = true
		if len(ep.NodeHints) == 0 {
			allNodeHints = false
		} else if contains(ep.NodeHints, nodeName) {
			hasForNode = true
		}
		if len(ep.ZoneHints) == 0 {
			allZoneHints = false
		} else if contains(ep.ZoneHints, zone) {
			hasForZone = true
		}
	}
	if !hasReady {
		return ""
	}
	if allNodeHints {
		if hasForNode {
			return "PreferSameNode"
		}
	}
	if allZoneHints {
		if hasForZone {
			return "PreferSameZone"
		}
		if zone == "" {
			return ""
		}
	}
	return ""
}

func availableForTopology(ep *Endpoint, mode, nodeName, zone string) bool {
	switch mode {
	case "PreferSameNode":
		return contains(ep.NodeHints, nodeName)
	case "PreferSameZone":
		return contains(ep.ZoneHints, zone)
	}
	return true
}

func joinHostPort(ip string, port int32) string {
	return net.JoinHostPort(ip, strconv.Itoa(int(port)))
}

func sortStrings(s []string) { sort.Strings(s) }
