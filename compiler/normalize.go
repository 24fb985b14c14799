package compiler

import (
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	netutils "k8s.io/utils/net"
)

const (
	// labelServiceProxyName makes kube-proxy's informer ignore a Service.
	labelServiceProxyName = "service.kubernetes.io/service-proxy-name"
	// labelHeadless makes kube-proxy's informer ignore an EndpointSlice.
	labelHeadless = "service.kubernetes.io/headless"
	// mirroringControllerName is the managed-by value of mirrored slices.
	mirroringControllerName = "endpointslicemirroring-controller.k8s.io"
	// maxEndpointsPerSubset is the mirroring controller's default
	// --mirroring-max-endpoints-per-subset.
	maxEndpointsPerSubset = 1000
	// defaultClientIPTimeout is the API default of
	// sessionAffinityConfig.clientIP.timeoutSeconds.
	defaultClientIPTimeout = int32(10800)
)

// Note is a non-fatal remark about the input (an object kube-proxy ignores, a
// kind svc2rules skips, an Endpoints object that was mirrored, ...).
type Note struct {
	Source  Source
	Object  string
	Message string
}

// String is the note on one line: control characters of hostile file and
// object names are escaped (see InputError.Error).
func (n Note) String() string { return escapeControl(n.text()) }

// String is "file:line" (or just the file when the line is unknown).
func (s Source) String() string {
	if s.Line > 0 {
		return fmt.Sprintf("%s:%d", s.File, s.Line)
	}
	return s.File
}

func (n Note) text() string {
	loc := n.Source.String()
	if loc == "" {
		if n.Object == "" {
			return n.Message
		}
		return n.Object + ": " + n.Message
	}
	if n.Object == "" {
		return loc + ": " + n.Message
	}
	return loc + ": " + n.Object + ": " + n.Message
}

// Normalize does what the cluster does before kube-proxy sees the objects:
// namespace and API defaulting, Endpoints → EndpointSlice mirroring, and
// kube-proxy's informer filters. It validates every field that reaches a
// rule first (see validate.go) and modifies the objects in place.
func Normalize(in *Inputs) ([]Note, error) {
	var notes []Note
	kinds := make([]string, 0, len(in.SkippedKinds))
	for k := range in.SkippedKinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		notes = append(notes, Note{Message: fmt.Sprintf("skipped %d object(s) of kind %s: kube-proxy does not read it", in.SkippedKinds[k], k)})
	}

	for _, s := range in.Services {
		if s.Namespace == "" {
			s.Namespace = metav1.NamespaceDefault
		}
		defaultService(s.Service)
	}
	for _, e := range in.Endpoints {
		if e.Namespace == "" {
			e.Namespace = metav1.NamespaceDefault
		}
		defaultEndpoints(e.Endpoints)
	}
	for _, e := range in.EndpointSlices {
		if e.Namespace == "" {
			e.Namespace = metav1.NamespaceDefault
		}
		defaultEndpointSlice(e.EndpointSlice)
	}
	if err := validateInputs(in); err != nil {
		return notes, err
	}
	notes = append(notes, keepLaterDefinitions(in)...)

	for _, e := range in.Endpoints {
		for _, s := range mirrorEndpoints(e.Endpoints) {
			in.EndpointSlices = append(in.EndpointSlices, &EndpointSliceObject{EndpointSlice: s, Source: e.Source, Mirrored: true})
		}
	}

	// kube-proxy's informers (cmd/kube-proxy/app/server.go) select Services
	// with "!service.kubernetes.io/service-proxy-name" and
	// "spec.clusterIP!=None", EndpointSlices with "!service.kubernetes.io/headless".
	svcs := in.Services[:0]
	for _, s := range in.Services {
		obj := "Service " + s.Namespace + "/" + s.Name
		if _, ok := s.Labels[labelServiceProxyName]; ok {
			notes = append(notes, Note{Source: s.Source, Object: obj, Message: "ignored: label " + labelServiceProxyName + " hands it to another proxy"})
			continue
		}
		if s.Spec.ClusterIP == v1.ClusterIPNone {
			notes = append(notes, Note{Source: s.Source, Object: obj, Message: "ignored: headless (clusterIP: None)"})
			continue
		}
		svcs = append(svcs, s)
	}
	in.Services = svcs
	slices := in.EndpointSlices[:0]
	for _, e := range in.EndpointSlices {
		if _, ok := e.Labels[labelHeadless]; ok {
			continue
		}
		slices = append(slices, e)
	}
	in.EndpointSlices = slices
	return notes, nil
}

// defaultService applies the v1 Service defaults (pkg/apis/core/v1
// SetDefaults_Service and friends) that change what kube-proxy does, and fills
// clusterIPs / ipFamilies from clusterIP as the API server does for objects
// written with only clusterIP.
func defaultService(s *v1.Service) {
	spec := &s.Spec
	if spec.SessionAffinity == "" {
		spec.SessionAffinity = v1.ServiceAffinityNone
	}
	if spec.SessionAffinity == v1.ServiceAffinityNone {
		spec.SessionAffinityConfig = nil
	}
	if spec.SessionAffinity == v1.ServiceAffinityClientIP {
		if spec.SessionAffinityConfig == nil {
			spec.SessionAffinityConfig = &v1.SessionAffinityConfig{}
		}
		if spec.SessionAffinityConfig.ClientIP == nil {
			spec.SessionAffinityConfig.ClientIP = &v1.ClientIPConfig{}
		}
		if spec.SessionAffinityConfig.ClientIP.TimeoutSeconds == nil {
			t := defaultClientIPTimeout
			spec.SessionAffinityConfig.ClientIP.TimeoutSeconds = &t
		}
	}
	if spec.Type == "" {
		spec.Type = v1.ServiceTypeClusterIP
	}
	for i := range spec.Ports {
		if spec.Ports[i].Protocol == "" {
			spec.Ports[i].Protocol = v1.ProtocolTCP
		}
	}
	if (spec.Type == v1.ServiceTypeNodePort || spec.Type == v1.ServiceTypeLoadBalancer) && spec.ExternalTrafficPolicy == "" {
		spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyCluster
	}
	if spec.InternalTrafficPolicy == nil && spec.Type != v1.ServiceTypeExternalName {
		p := v1.ServiceInternalTrafficPolicyCluster
		spec.InternalTrafficPolicy = &p
	}
	for i := range s.Status.LoadBalancer.Ingress {
		ing := &s.Status.LoadBalancer.Ingress[i]
		if ing.IP != "" && ing.IPMode == nil {
			m := v1.LoadBalancerIPModeVIP
			ing.IPMode = &m
		}
	}
	if spec.ClusterIP != "" && spec.ClusterIP != v1.ClusterIPNone {
		if len(spec.ClusterIPs) == 0 {
			spec.ClusterIPs = []string{spec.ClusterIP}
		}
		if len(spec.IPFamilies) == 0 {
			for _, ip := range spec.ClusterIPs {
				if netutils.IsIPv6String(ip) {
					spec.IPFamilies = append(spec.IPFamilies, v1.IPv6Protocol)
				} else {
					spec.IPFamilies = append(spec.IPFamilies, v1.IPv4Protocol)
				}
			}
		}
	}
}

// defaultEndpoints applies the v1 Endpoints defaults (port protocol TCP).
func defaultEndpoints(e *v1.Endpoints) {
	for i := range e.Subsets {
		for j := range e.Subsets[i].Ports {
			if e.Subsets[i].Ports[j].Protocol == "" {
				e.Subsets[i].Ports[j].Protocol = v1.ProtocolTCP
			}
		}
	}
}

// defaultEndpointSlice applies the discovery/v1 defaults: a port without a name
// gets name "" (a nil name would make kube-proxy ignore the port) and protocol
// TCP. Endpoint conditions are not defaulted by the API (nil means ready).
func defaultEndpointSlice(e *discovery.EndpointSlice) {
	for i := range e.Ports {
		p := &e.Ports[i]
		if p.Name == nil {
			empty := ""
			p.Name = &empty
		}
		if p.Protocol == nil {
			tcp := v1.ProtocolTCP
			p.Protocol = &tcp
		}
	}
}

// mirrorEndpoints converts an Endpoints object to EndpointSlices as the
// EndpointSlice mirroring controller does (pkg/controller/endpointslicemirroring):
// the subsets are repacked (RepackSubsets: one subset per distinct set of
// address readiness per port, "not ready" winning over "ready"), at most 1000
// valid addresses are taken per subset (ready first), addresses become
// endpoints with ready=true/false and their nodeName, and endpoints are grouped
// into one slice per (address type, port set). Slice names are deterministic:
// "<name>-ipv4-1", "<name>-ipv6-1", ...
func mirrorEndpoints(e *v1.Endpoints) []*discovery.EndpointSlice {
	type addrKey struct {
		ip  string
		uid types.UID
	}
	type portKey struct {
		name     string
		port     int32
		protocol v1.Protocol
		appProto string
	}
	// readiness[port][addr] = ready, "not ready" trumps "ready".
	readiness := map[portKey]map[addrKey]bool{}
	addrs := map[addrKey]v1.EndpointAddress{}
	var portOrder []portKey
	var ports = map[portKey]v1.EndpointPort{}
	noPort := portKey{port: -1}
	note := func(pk portKey, a v1.EndpointAddress, ready bool) {
		k := addrKey{ip: a.IP}
		if a.TargetRef != nil {
			k.uid = a.TargetRef.UID
		}
		if _, ok := addrs[k]; !ok {
			addrs[k] = a
		}
		m := readiness[pk]
		if m == nil {
			m = map[addrKey]bool{}
			readiness[pk] = m
			portOrder = append(portOrder, pk)
		}
		if was, found := m[k]; !found || was {
			m[k] = ready
		}
	}
	for _, ss := range e.Subsets {
		keys := []portKey{noPort}
		if len(ss.Ports) > 0 {
			keys = keys[:0]
			for _, p := range ss.Ports {
				pk := portKey{name: p.Name, port: p.Port, protocol: p.Protocol}
				if p.AppProtocol != nil {
					pk.appProto = *p.AppProtocol
				}
				ports[pk] = p
				keys = append(keys, pk)
			}
		}
		for _, pk := range keys {
			for _, a := range ss.Addresses {
				note(pk, a, true)
			}
			for _, a := range ss.NotReadyAddresses {
				note(pk, a, false)
			}
		}
	}

	// Group ports with identical address→readiness maps into subsets.
	type subset struct {
		sig   string
		ports []portKey
		addrs map[addrKey]bool
	}
	var subsets []*subset
	bySig := map[string]*subset{}
	for _, pk := range portOrder {
		m := readiness[pk]
		ks := make([]string, 0, len(m))
		for k, r := range m {
			ks = append(ks, fmt.Sprintf("%s|%s|%t", k.ip, k.uid, r))
		}
		sort.Strings(ks)
		sig := strings.Join(ks, ",")
		ss := bySig[sig]
		if ss == nil {
			ss = &subset{sig: sig, addrs: m}
			bySig[sig] = ss
			subsets = append(subsets, ss)
		}
		if pk != noPort {
			ss.ports = append(ss.ports, pk)
		}
	}
	sort.Slice(subsets, func(i, j int) bool { return subsets[i].sig < subsets[j].sig })

	type group struct {
		addrType discovery.AddressType
		ports    []discovery.EndpointPort
		eps      []discovery.Endpoint
		seen     map[string]bool
	}
	groups := map[string]*group{}
	var groupKeys []string
	for _, ss := range subsets {
		sort.Slice(ss.ports, func(i, j int) bool {
			a, b := ss.ports[i], ss.ports[j]
			if a.name != b.name {
				return a.name < b.name
			}
			if a.port != b.port {
				return a.port < b.port
			}
			return a.protocol < b.protocol
		})
		var epPorts []discovery.EndpointPort
		var portSig []string
		for _, pk := range ss.ports {
			p := ports[pk]
			name, port, proto := p.Name, p.Port, p.Protocol
			epPorts = append(epPorts, discovery.EndpointPort{Name: &name, Port: &port, Protocol: &proto, AppProtocol: p.AppProtocol})
			portSig = append(portSig, fmt.Sprintf("%s/%d/%s/%s", pk.name, pk.port, pk.protocol, pk.appProto))
		}
		// Ready addresses first, each list sorted by IP then UID (SortSubsets).
		var ready, notReady []addrKey
		for k, r := range ss.addrs {
			if r {
				ready = append(ready, k)
			} else {
				notReady = append(notReady, k)
			}
		}
		less := func(l []addrKey) func(i, j int) bool {
			return func(i, j int) bool {
				if l[i].ip != l[j].ip {
					return l[i].ip < l[j].ip
				}
				return l[i].uid < l[j].uid
			}
		}
		sort.Slice(ready, less(ready))
		sort.Slice(notReady, less(notReady))
		added := 0
		add := func(k addrKey, isReady bool) {
			if added >= maxEndpointsPerSubset {
				return
			}
			a := addrs[k]
			ip := netutils.ParseIPSloppy(a.IP)
			if ip == nil {
				return // the controller skips invalid IPs (validation rejects them earlier)
			}
			at := discovery.AddressTypeIPv4
			if ip.To4() == nil {
				at = discovery.AddressTypeIPv6
			}
			r := isReady
			ep := discovery.Endpoint{Addresses: []string{ip.String()}, Conditions: discovery.EndpointConditions{Ready: &r}, TargetRef: a.TargetRef}
			if a.NodeName != nil {
				n := *a.NodeName
				ep.NodeName = &n
			}
			if a.Hostname != "" {
				h := a.Hostname
				ep.Hostname = &h
			}
			gk := string(at) + "|" + strings.Join(portSig, ",")
			g := groups[gk]
			if g == nil {
				g = &group{addrType: at, ports: epPorts, seen: map[string]bool{}}
				groups[gk] = g
				groupKeys = append(groupKeys, gk)
			}
			dk := fmt.Sprintf("%s|%t|%s", ip.String(), r, k.uid)
			if !g.seen[dk] {
				g.seen[dk] = true
				g.eps = append(g.eps, ep)
			}
			added++
		}
		for _, k := range ready {
			add(k, true)
		}
		for _, k := range notReady {
			add(k, false)
		}
	}
	sort.Strings(groupKeys)
	var out []*discovery.EndpointSlice
	counter := map[discovery.AddressType]int{}
	for _, gk := range groupKeys {
		g := groups[gk]
		counter[g.addrType]++
		labels := map[string]string{}
		for k, v := range e.Labels {
			labels[k] = v
		}
		labels[discovery.LabelServiceName] = e.Name
		labels[discovery.LabelManagedBy] = mirroringControllerName
		sort.SliceStable(g.eps, func(i, j int) bool { return g.eps[i].Addresses[0] < g.eps[j].Addresses[0] })
		out = append(out, &discovery.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Name:      fmt.Sprintf("%s-%s-%d", e.Name, strings.ToLower(string(g.addrType)), counter[g.addrType]),
				Namespace: e.Namespace,
				Labels:    labels,
			},
			AddressType: g.addrType,
			Ports:       g.ports,
			Endpoints:   g.eps,
		})
	}
	return out
}

// keepLaterDefinitions drops every object that a later document of the same
// kind, namespace and name redefines. A cluster holds one object per name:
// applying both documents leaves the later one, and kube-proxy's change
// trackers, keyed by name, likewise keep only the last update. Programming
// both (two ClusterIPs, two affinity timeouts for one chain) would show
// rules no node ever has. `svc2rules check` reports the duplicate as an
// error (duplicate-object); compile notes it and goes on.
func keepLaterDefinitions(in *Inputs) []Note {
	var notes []Note
	replaced := func(kind, ns, name string, src, by Source) {
		obj := kind + " " + name
		if ns != "" {
			obj = kind + " " + ns + "/" + name
		}
		notes = append(notes, Note{Source: src, Object: obj, Message: "ignored: redefined at " + by.String() + " (the later definition wins, as in a cluster)"})
	}
	in.Services = keepLast(in.Services, func(o *ServiceObject) string { return o.Namespace + "/" + o.Name },
		func(o, by *ServiceObject) { replaced("Service", o.Namespace, o.Name, o.Source, by.Source) })
	in.Endpoints = keepLast(in.Endpoints, func(o *EndpointsObject) string { return o.Namespace + "/" + o.Name },
		func(o, by *EndpointsObject) { replaced("Endpoints", o.Namespace, o.Name, o.Source, by.Source) })
	in.EndpointSlices = keepLast(in.EndpointSlices, func(o *EndpointSliceObject) string { return o.Namespace + "/" + o.Name },
		func(o, by *EndpointSliceObject) { replaced("EndpointSlice", o.Namespace, o.Name, o.Source, by.Source) })
	in.Nodes = keepLast(in.Nodes, func(o *NodeObject) string { return o.Name },
		func(o, by *NodeObject) { replaced("Node", "", o.Name, o.Source, by.Source) })
	in.ServiceCIDRs = keepLast(in.ServiceCIDRs, func(o *ServiceCIDRObject) string { return o.Name },
		func(o, by *ServiceCIDRObject) { replaced("ServiceCIDR", "", o.Name, o.Source, by.Source) })
	return notes
}

// keepLast filters objs in place, keeping for each key only its last object
// (objects without a name are all kept), in their original order, and calls
// dropped for each object it removes.
func keepLast[T any](objs []T, key func(T) string, dropped func(o, by T)) []T {
	last := make(map[string]int, len(objs))
	dup := false
	for i, o := range objs {
		k := key(o)
		if strings.HasSuffix(k, "/") || k == "" {
			continue
		}
		if _, ok := last[k]; ok {
			dup = true
		}
		last[k] = i
	}
	if !dup {
		return objs
	}
	kept := objs[:0]
	for i, o := range objs {
		k := key(o)
		if j, ok := last[k]; ok && j != i {
			dropped(o, objs[j])
			continue
		}
		kept = append(kept, o)
	}
	return kept
}
