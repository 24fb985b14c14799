package compiler

import (
	"net"
	"sort"
	"strconv"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	netutils "k8s.io/utils/net"
)

// UserspacePort is one service port as kube-proxy v1.25.16's userspace mode
// saw it. That mode read v1 Services and v1 Endpoints only (never
// EndpointSlices), used spec.clusterIP whatever its family, all of
// spec.externalIPs and every status.loadBalancer.ingress[].ip, and kept no
// traffic policy, topology or firewall: see backends/userspace.
type UserspacePort struct {
	Namespace string
	Name      string
	PortName  string
	Protocol  v1.Protocol
	// SPN is the ServicePortName string: "ns/name" or "ns/name:port".
	SPN string

	// ClusterIP is spec.clusterIP, canonical text (it may be of the other
	// family than the proxier's: kube-proxy then fails to write any rule).
	ClusterIP string
	Port      int32
	NodePort  int32
	// ExternalIPs: spec.externalIPs, canonical, spec order, every family.
	ExternalIPs []string
	// LoadBalancerIPs: status.loadBalancer.ingress[].ip, canonical, status
	// order, every family and ipMode (ipMode came after v1.25).
	LoadBalancerIPs []string
	// HostnameOnlyIngress counts ingress entries with a hostname and no IP.
	HostnameOnlyIngress int

	SessionAffinityClientIP bool
	// StickyMaxAgeSeconds is sessionAffinityConfig.clientIP.timeoutSeconds.
	StickyMaxAgeSeconds int32

	// Backends are "IP:port" of the ready addresses of the Endpoints port
	// with the same name (the protocol is not compared), in Endpoints order
	// (subsets, then addresses); duplicates are kept, as kube-proxy keeps them.
	Backends []string
	// NotReadyBackends counts notReadyAddresses of that port (never used).
	NotReadyBackends int
	// TerminatingBackends counts serving, terminating endpoints of converted
	// EndpointSlices (never used by this mode).
	TerminatingBackends int
	// EndpointsFrom says where Backends came from: "Endpoints",
	// "EndpointSlice" (no Endpoints object in the input: its EndpointSlices
	// were converted) or "" (neither).
	EndpointsFrom string

	// What the mode ignores, kept to say so.
	ExternalTrafficPolicyLocal bool
	InternalTrafficPolicyLocal bool
	LoadBalancerSourceRanges   []string
	HealthCheckNodePort        int32
	TopologyHints              bool
	TrafficDistribution        string
	// OtherFamilyClusterIPs are spec.clusterIPs after the first (dual-stack).
	OtherFamilyClusterIPs []string

	Source Source
}

// BuildUserspace returns the service ports of kube-proxy v1.25.16's userspace
// mode for normalised inputs (after Normalize), sorted by (namespace, name,
// port name, protocol). Services are those kube-proxy kept (Normalize already
// dropped service-proxy-name and headless ones; this also drops Services
// labelled service.kubernetes.io/headless, which the v1.25 informer filtered
// out, ExternalName and clusterIP-less ones). Backends come from the v1
// Endpoints of the same name; a Service with no Endpoints object gets the
// ready endpoints of its (non-mirrored) EndpointSlices of its primary family,
// which is what the Endpoints controller would have written.
func BuildUserspace(in *Inputs) []*UserspacePort {
	type key struct{ ns, name string }
	// Endpoints objects (the v1.25 informer skipped labelled ones).
	eps := map[key]*v1.Endpoints{}
	for _, e := range in.Endpoints {
		if hasLabel(e.Labels, labelServiceProxyName) || hasLabel(e.Labels, labelHeadless) {
			continue
		}
		eps[key{e.Namespace, e.Name}] = e.Endpoints
	}
	slices := map[key][]*discovery.EndpointSlice{}
	for _, s := range in.EndpointSlices {
		if s.Mirrored || hasLabel(s.Labels, labelServiceProxyName) || hasLabel(s.Labels, labelHeadless) {
			continue
		}
		svc := s.Labels[discovery.LabelServiceName]
		if svc == "" {
			continue
		}
		k := key{s.Namespace, svc}
		slices[k] = append(slices[k], s.EndpointSlice)
	}
	for _, l := range slices {
		sort.SliceStable(l, func(i, j int) bool { return l[i].Name < l[j].Name })
	}

	var out []*UserspacePort
	for _, so := range in.Services {
		s := so.Service
		if hasLabel(s.Labels, labelServiceProxyName) || hasLabel(s.Labels, labelHeadless) {
			continue
		}
		if s.Spec.ClusterIP == "" || s.Spec.ClusterIP == v1.ClusterIPNone || s.Spec.Type == v1.ServiceTypeExternalName {
			continue
		}
		cip := canonicalIP(s.Spec.ClusterIP)
		var backends map[string]*userspaceBackends
		from := ""
		if e := eps[key{s.Namespace, s.Name}]; e != nil {
			backends, from = backendsFromEndpoints(e), "Endpoints"
		} else if l := slices[key{s.Namespace, s.Name}]; len(l) > 0 {
			backends, from = backendsFromSlices(l, s.Spec.ClusterIP), "EndpointSlice"
		}
		var hints bool
		for _, sl := range slices[key{s.Namespace, s.Name}] {
			for _, ep := range sl.Endpoints {
				if ep.Hints != nil && (len(ep.Hints.ForZones) > 0 || len(ep.Hints.ForNodes) > 0) {
					hints = true
				}
			}
		}
		for i := range s.Spec.Ports {
			p := &s.Spec.Ports[i]
			up := &UserspacePort{
				Namespace: s.Namespace,
				Name:      s.Name,
				PortName:  p.Name,
				Protocol:  p.Protocol,
				SPN:       s.Namespace + "/" + s.Name,
				ClusterIP: cip,
				Port:      p.Port,
				NodePort:  p.NodePort,
				Source:    so.Source,
			}
			if p.Name != "" {
				up.SPN += ":" + p.Name
			}
			for _, e := range s.Spec.ExternalIPs {
				up.ExternalIPs = append(up.ExternalIPs, canonicalIP(e))
			}
			for _, ing := range s.Status.LoadBalancer.Ingress {
				if ing.IP != "" {
					up.LoadBalancerIPs = append(up.LoadBalancerIPs, canonicalIP(ing.IP))
				} else if ing.Hostname != "" {
					up.HostnameOnlyIngress++
				}
			}
			if s.Spec.SessionAffinity == v1.ServiceAffinityClientIP {
				up.SessionAffinityClientIP = true
				up.StickyMaxAgeSeconds = defaultClientIPTimeout
				if c := s.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
					up.StickyMaxAgeSeconds = *c.ClientIP.TimeoutSeconds
				}
			}
			if b := backends[p.Name]; b != nil {
				up.Backends = b.ready
				up.NotReadyBackends = b.notReady
				up.TerminatingBackends = b.terminating
			}
			up.EndpointsFrom = from
			up.ExternalTrafficPolicyLocal = s.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal
			up.InternalTrafficPolicyLocal = s.Spec.InternalTrafficPolicy != nil && *s.Spec.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal
			up.LoadBalancerSourceRanges = append([]string(nil), s.Spec.LoadBalancerSourceRanges...)
			up.HealthCheckNodePort = s.Spec.HealthCheckNodePort
			up.TopologyHints = hints
			if s.Spec.TrafficDistribution != nil {
				up.TrafficDistribution = *s.Spec.TrafficDistribution
			}
			if len(s.Spec.ClusterIPs) > 1 {
				for _, ip := range s.Spec.ClusterIPs[1:] {
					up.OtherFamilyClusterIPs = append(up.OtherFamilyClusterIPs, canonicalIP(ip))
				}
			}
			out = append(out, up)
		}
	}
	SortUserspacePorts(out)
	return out
}

// UserspacePortsFromPlan approximates the userspace view from a plan alone
// (for callers without the inputs): the plan's family-filtered addresses and
// its ready endpoints. BuildUserspace is exact; prefer it.
func UserspacePortsFromPlan(plan *Plan) []*UserspacePort {
	var out []*UserspacePort
	for _, sp := range plan.ServicePorts {
		up := &UserspacePort{
			Namespace:                  sp.Namespace,
			Name:                       sp.Name,
			PortName:                   sp.PortName,
			Protocol:                   sp.Protocol,
			SPN:                        sp.SPN,
			ClusterIP:                  sp.ClusterIP,
			Port:                       sp.Port,
			NodePort:                   sp.NodePort,
			ExternalIPs:                append([]string(nil), sp.ExternalIPs...),
			LoadBalancerIPs:            append([]string(nil), sp.LoadBalancerVIPs...),
			SessionAffinityClientIP:    sp.SessionAffinityClientIP,
			StickyMaxAgeSeconds:        sp.StickyMaxAgeSeconds,
			ExternalTrafficPolicyLocal: sp.ExternalPolicyLocal,
			InternalTrafficPolicyLocal: sp.InternalPolicyLocal,
			LoadBalancerSourceRanges:   append([]string(nil), sp.LoadBalancerSourceRanges...),
			HealthCheckNodePort:        sp.HealthCheckNodePort,
			TopologyHints:              sp.TopologyMode != "",
			Source:                     sp.Source,
		}
		for _, ep := range sp.Endpoints {
			switch {
			case ep.Ready:
				up.Backends = append(up.Backends, ep.String())
			case ep.Serving && ep.Terminating:
				up.TerminatingBackends++
			default:
				up.NotReadyBackends++
			}
		}
		if len(sp.Endpoints) > 0 {
			up.EndpointsFrom = "EndpointSlice"
		}
		out = append(out, up)
	}
	SortUserspacePorts(out)
	return out
}

// SortUserspacePorts sorts by (namespace, name, port name, protocol), byte-wise.
func SortUserspacePorts(ports []*UserspacePort) {
	sort.SliceStable(ports, func(i, j int) bool {
		a, b := ports[i], ports[j]
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
}

type userspaceBackends struct {
	ready                 []string
	notReady, terminating int
}

// backendsFromEndpoints is pkg/proxy/util.BuildPortsToEndpointsMap (v1.25.16):
// per port name, every subset's ready addresses with a non-empty IP and a
// positive port, in order, duplicates kept.
func backendsFromEndpoints(e *v1.Endpoints) map[string]*userspaceBackends {
	m := map[string]*userspaceBackends{}
	get := func(name string) *userspaceBackends {
		b := m[name]
		if b == nil {
			b = &userspaceBackends{}
			m[name] = b
		}
		return b
	}
	for _, ss := range e.Subsets {
		for _, p := range ss.Ports {
			if p.Port <= 0 {
				continue
			}
			for _, a := range ss.Addresses {
				if a.IP != "" {
					b := get(p.Name)
					b.ready = append(b.ready, net.JoinHostPort(a.IP, strconv.Itoa(int(p.Port))))
				}
			}
			if len(ss.NotReadyAddresses) > 0 {
				get(p.Name).notReady += len(ss.NotReadyAddresses)
			}
		}
	}
	return m
}

// backendsFromSlices is what the Endpoints controller would have written for a
// Service that the input describes with EndpointSlices only: the ready
// endpoints of the slices of the Service's primary family (the family of
// spec.clusterIP), per port name, slices by name, endpoints in order, each
// address once per port.
func backendsFromSlices(slices []*discovery.EndpointSlice, clusterIP string) map[string]*userspaceBackends {
	want := discovery.AddressTypeIPv4
	if netutils.IsIPv6String(clusterIP) {
		want = discovery.AddressTypeIPv6
	}
	m := map[string]*userspaceBackends{}
	seen := map[string]bool{}
	for _, s := range slices {
		if s.AddressType != want {
			continue
		}
		for _, p := range s.Ports {
			if p.Port == nil || *p.Port <= 0 {
				continue
			}
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			b := m[name]
			if b == nil {
				b = &userspaceBackends{}
				m[name] = b
			}
			for _, ep := range s.Endpoints {
				if len(ep.Addresses) == 0 {
					continue
				}
				ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
				if !ready {
					if ep.Conditions.Terminating != nil && *ep.Conditions.Terminating && (ep.Conditions.Serving == nil || *ep.Conditions.Serving) {
						b.terminating++
					} else {
						b.notReady++
					}
					continue
				}
				hp := net.JoinHostPort(canonicalIP(ep.Addresses[0]), strconv.Itoa(int(*p.Port)))
				if seen[name+"|"+hp] {
					continue
				}
				seen[name+"|"+hp] = true
				b.ready = append(b.ready, hp)
			}
		}
	}
	return m
}

func hasLabel(labels map[string]string, k string) bool {
	_, ok := labels[k]
	return ok
}

// canonicalIP is netutils.ParseIPSloppy(s).String(), or s if it does not parse.
func canonicalIP(s string) string {
	if ip := netutils.ParseIPSloppy(s); ip != nil {
		return ip.String()
	}
	return s
}
