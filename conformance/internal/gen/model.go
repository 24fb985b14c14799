// Package gen generates random, API-valid inputs for svc2rules and kube-proxy
// (Services, EndpointSlices, Endpoints, Nodes, ServiceCIDRs and compile
// settings), renders them as manifests and shrinks failing ones.
//
// A Case is a small structured model, not YAML: generation and shrinking work
// on the model so that every input stays valid (the API server would accept
// it), and Render turns it into a multi-document YAML stream.
package gen

import (
	"fmt"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/svc2rules/svc2rules/conformance/oracle"
)

// Case is one generated input: settings plus objects.
type Case struct {
	Settings     *oracle.Settings
	Services     []*Service
	Slices       []*Slice
	Endpoints    []*Endpoints
	Nodes        []*Node
	ServiceCIDRs []*ServiceCIDR
}

// Service is a v1 Service.
type Service struct {
	Namespace, Name     string
	Labels              map[string]string
	Annotations         map[string]string
	Type                string // "" (ClusterIP, defaulted), ClusterIP, NodePort, LoadBalancer, ExternalName
	ExternalName        string
	Headless            bool     // clusterIP: None
	ClusterIPs          []string // first is spec.clusterIP
	IPFamilies          []string // "" entries: let defaulting fill it
	IPFamilyPolicy      string
	Selector            bool
	Ports               []*ServicePort
	ExternalIPs         []string
	SourceRanges        []string
	Ingress             []*Ingress
	ETP, ITP            string
	HealthCheckPort     int
	Affinity            bool
	AffinityTimeout     int // 0: default (10800)
	TrafficDist         string
	AllocateLBNodePorts *bool
}

// ServicePort is one spec.ports entry.
type ServicePort struct {
	Name       string
	Protocol   string // "" = defaulted TCP
	Port       int
	TargetPort int
	NodePort   int
}

// Ingress is one status.loadBalancer.ingress entry.
type Ingress struct {
	IP, Hostname, IPMode string
}

// Slice is a discovery.k8s.io/v1 EndpointSlice.
type Slice struct {
	Namespace, Name string
	Service         string // kubernetes.io/service-name ("" = none)
	Labels          map[string]string
	AddressType     string
	Ports           []*SlicePort
	Endpoints       []*Endpoint
}

// SlicePort is one EndpointSlice port; Name nil means the field is absent.
type SlicePort struct {
	Name     *string
	Protocol string // "" = absent (defaulted TCP)
	Port     *int
}

// Endpoint is one EndpointSlice endpoint. Nil conditions are absent.
type Endpoint struct {
	Addresses                   []string
	Ready, Serving, Terminating *bool
	NodeName, Zone, Hostname    string
	HintZones, HintNodes        []string
}

// Endpoints is a v1 Endpoints object (mirrored into EndpointSlices).
type Endpoints struct {
	Namespace, Name string
	Labels          map[string]string
	Subsets         []*Subset
}

// Subset is one Endpoints subset.
type Subset struct {
	Addresses, NotReady []*EPAddress
	Ports               []*EPPort
}

// EPAddress is one Endpoints address.
type EPAddress struct {
	IP, NodeName, Hostname string
}

// EPPort is one Endpoints port.
type EPPort struct {
	Name     string
	Protocol string
	Port     int
}

// Node is a v1 Node (zone label, addresses, pod CIDRs).
type Node struct {
	Name        string
	Zone        string
	InternalIPs []string
	ExternalIPs []string
	PodCIDRs    []string
}

// ServiceCIDR is a networking.k8s.io/v1 ServiceCIDR.
type ServiceCIDR struct {
	Name  string
	CIDRs []string
}

// Clone returns a deep copy of c.
func (c *Case) Clone() *Case {
	// The model is plain data: a YAML-free deep copy via a generic helper
	// would hide bugs, so copy explicitly.
	n := &Case{Settings: c.Settings.Clone()}
	for _, s := range c.Services {
		n.Services = append(n.Services, s.clone())
	}
	for _, s := range c.Slices {
		n.Slices = append(n.Slices, s.clone())
	}
	for _, e := range c.Endpoints {
		n.Endpoints = append(n.Endpoints, e.clone())
	}
	for _, x := range c.Nodes {
		y := *x
		y.InternalIPs = cloneStrings(x.InternalIPs)
		y.ExternalIPs = cloneStrings(x.ExternalIPs)
		y.PodCIDRs = cloneStrings(x.PodCIDRs)
		n.Nodes = append(n.Nodes, &y)
	}
	for _, x := range c.ServiceCIDRs {
		n.ServiceCIDRs = append(n.ServiceCIDRs, &ServiceCIDR{Name: x.Name, CIDRs: cloneStrings(x.CIDRs)})
	}
	return n
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string{}, s...)
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	o := map[string]string{}
	for k, v := range m {
		o[k] = v
	}
	return o
}

func cloneBool(b *bool) *bool {
	if b == nil {
		return nil
	}
	v := *b
	return &v
}

func (s *Service) clone() *Service {
	n := *s
	n.Labels = cloneMap(s.Labels)
	n.Annotations = cloneMap(s.Annotations)
	n.ClusterIPs = cloneStrings(s.ClusterIPs)
	n.IPFamilies = cloneStrings(s.IPFamilies)
	n.ExternalIPs = cloneStrings(s.ExternalIPs)
	n.SourceRanges = cloneStrings(s.SourceRanges)
	n.AllocateLBNodePorts = cloneBool(s.AllocateLBNodePorts)
	n.Ports = nil
	for _, p := range s.Ports {
		q := *p
		n.Ports = append(n.Ports, &q)
	}
	n.Ingress = nil
	for _, i := range s.Ingress {
		j := *i
		n.Ingress = append(n.Ingress, &j)
	}
	return &n
}

func (s *Slice) clone() *Slice {
	n := *s
	n.Labels = cloneMap(s.Labels)
	n.Ports = nil
	for _, p := range s.Ports {
		q := SlicePort{Protocol: p.Protocol}
		if p.Name != nil {
			v := *p.Name
			q.Name = &v
		}
		if p.Port != nil {
			v := *p.Port
			q.Port = &v
		}
		n.Ports = append(n.Ports, &q)
	}
	n.Endpoints = nil
	for _, e := range s.Endpoints {
		f := *e
		f.Addresses = cloneStrings(e.Addresses)
		f.Ready, f.Serving, f.Terminating = cloneBool(e.Ready), cloneBool(e.Serving), cloneBool(e.Terminating)
		f.HintZones = cloneStrings(e.HintZones)
		f.HintNodes = cloneStrings(e.HintNodes)
		n.Endpoints = append(n.Endpoints, &f)
	}
	return &n
}

func (e *Endpoints) clone() *Endpoints {
	n := *e
	n.Labels = cloneMap(e.Labels)
	n.Subsets = nil
	for _, s := range e.Subsets {
		t := &Subset{}
		for _, a := range s.Addresses {
			b := *a
			t.Addresses = append(t.Addresses, &b)
		}
		for _, a := range s.NotReady {
			b := *a
			t.NotReady = append(t.NotReady, &b)
		}
		for _, p := range s.Ports {
			q := *p
			t.Ports = append(t.Ports, &q)
		}
		n.Subsets = append(n.Subsets, t)
	}
	return &n
}

// Objects returns the number of objects in c.
func (c *Case) Objects() int {
	return len(c.Services) + len(c.Slices) + len(c.Endpoints) + len(c.Nodes) + len(c.ServiceCIDRs)
}

// Summary is a one-line description of c.
func (c *Case) Summary() string {
	eps := 0
	for _, s := range c.Slices {
		eps += len(s.Endpoints)
	}
	for _, e := range c.Endpoints {
		for _, s := range e.Subsets {
			eps += len(s.Addresses) + len(s.NotReady)
		}
	}
	return fmt.Sprintf("%d services, %d slices, %d Endpoints, %d nodes, %d ServiceCIDRs, %d endpoints; %s",
		len(c.Services), len(c.Slices), len(c.Endpoints), len(c.Nodes), len(c.ServiceCIDRs), eps, strings.Join(c.Settings.Args(), " "))
}

// ---------------------------------------------------------------------------
// Rendering

type obj = map[string]any

func meta(ns, name string, labels, annotations map[string]string) obj {
	m := obj{"name": name}
	if ns != "" {
		m["namespace"] = ns
	}
	if len(labels) > 0 {
		m["labels"] = labels
	}
	if len(annotations) > 0 {
		m["annotations"] = annotations
	}
	return m
}

func (s *Service) render() obj {
	spec := obj{}
	if s.Type != "" {
		spec["type"] = s.Type
	}
	if s.Type == "ExternalName" {
		spec["externalName"] = s.ExternalName
	}
	if s.Headless {
		spec["clusterIP"] = "None"
	} else if len(s.ClusterIPs) > 0 {
		spec["clusterIP"] = s.ClusterIPs[0]
		spec["clusterIPs"] = s.ClusterIPs
	}
	if len(s.IPFamilies) > 0 {
		spec["ipFamilies"] = s.IPFamilies
	}
	if s.IPFamilyPolicy != "" {
		spec["ipFamilyPolicy"] = s.IPFamilyPolicy
	}
	if s.Selector {
		spec["selector"] = obj{"app": s.Name}
	}
	var ports []obj
	for _, p := range s.Ports {
		po := obj{"port": p.Port}
		if p.Name != "" {
			po["name"] = p.Name
		}
		if p.Protocol != "" {
			po["protocol"] = p.Protocol
		}
		if p.TargetPort != 0 {
			po["targetPort"] = p.TargetPort
		}
		if p.NodePort != 0 {
			po["nodePort"] = p.NodePort
		}
		ports = append(ports, po)
	}
	if len(ports) > 0 {
		spec["ports"] = ports
	}
	if len(s.ExternalIPs) > 0 {
		spec["externalIPs"] = s.ExternalIPs
	}
	if len(s.SourceRanges) > 0 {
		spec["loadBalancerSourceRanges"] = s.SourceRanges
	}
	if s.ETP != "" {
		spec["externalTrafficPolicy"] = s.ETP
	}
	if s.ITP != "" {
		spec["internalTrafficPolicy"] = s.ITP
	}
	if s.HealthCheckPort != 0 {
		spec["healthCheckNodePort"] = s.HealthCheckPort
	}
	if s.Affinity {
		spec["sessionAffinity"] = "ClientIP"
		if s.AffinityTimeout != 0 {
			spec["sessionAffinityConfig"] = obj{"clientIP": obj{"timeoutSeconds": s.AffinityTimeout}}
		}
	}
	if s.TrafficDist != "" {
		spec["trafficDistribution"] = s.TrafficDist
	}
	if s.AllocateLBNodePorts != nil {
		spec["allocateLoadBalancerNodePorts"] = *s.AllocateLBNodePorts
	}
	o := obj{"apiVersion": "v1", "kind": "Service", "metadata": meta(s.Namespace, s.Name, s.Labels, s.Annotations), "spec": spec}
	if len(s.Ingress) > 0 {
		var ing []obj
		for _, i := range s.Ingress {
			io := obj{}
			if i.IP != "" {
				io["ip"] = i.IP
			}
			if i.Hostname != "" {
				io["hostname"] = i.Hostname
			}
			if i.IPMode != "" {
				io["ipMode"] = i.IPMode
			}
			ing = append(ing, io)
		}
		o["status"] = obj{"loadBalancer": obj{"ingress": ing}}
	}
	return o
}

func (s *Slice) render() obj {
	labels := cloneMap(s.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	if s.Service != "" {
		labels["kubernetes.io/service-name"] = s.Service
	}
	o := obj{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta(s.Namespace, s.Name, labels, nil), "addressType": s.AddressType}
	var ports []obj
	for _, p := range s.Ports {
		po := obj{}
		if p.Name != nil {
			po["name"] = *p.Name
		}
		if p.Protocol != "" {
			po["protocol"] = p.Protocol
		}
		if p.Port != nil {
			po["port"] = *p.Port
		}
		ports = append(ports, po)
	}
	if ports != nil {
		o["ports"] = ports
	}
	eps := []obj{}
	for _, e := range s.Endpoints {
		eo := obj{"addresses": e.Addresses}
		cond := obj{}
		if e.Ready != nil {
			cond["ready"] = *e.Ready
		}
		if e.Serving != nil {
			cond["serving"] = *e.Serving
		}
		if e.Terminating != nil {
			cond["terminating"] = *e.Terminating
		}
		if len(cond) > 0 {
			eo["conditions"] = cond
		}
		if e.NodeName != "" {
			eo["nodeName"] = e.NodeName
		}
		if e.Zone != "" {
			eo["zone"] = e.Zone
		}
		if e.Hostname != "" {
			eo["hostname"] = e.Hostname
		}
		if len(e.HintZones) > 0 || len(e.HintNodes) > 0 {
			h := obj{}
			if len(e.HintZones) > 0 {
				var z []obj
				for _, n := range e.HintZones {
					z = append(z, obj{"name": n})
				}
				h["forZones"] = z
			}
			if len(e.HintNodes) > 0 {
				var z []obj
				for _, n := range e.HintNodes {
					z = append(z, obj{"name": n})
				}
				h["forNodes"] = z
			}
			eo["hints"] = h
		}
		eps = append(eps, eo)
	}
	o["endpoints"] = eps
	return o
}

func (e *Endpoints) render() obj {
	var subsets []obj
	addrs := func(as []*EPAddress) []obj {
		var out []obj
		for _, a := range as {
			ao := obj{"ip": a.IP}
			if a.NodeName != "" {
				ao["nodeName"] = a.NodeName
			}
			if a.Hostname != "" {
				ao["hostname"] = a.Hostname
			}
			out = append(out, ao)
		}
		return out
	}
	for _, s := range e.Subsets {
		so := obj{}
		if len(s.Addresses) > 0 {
			so["addresses"] = addrs(s.Addresses)
		}
		if len(s.NotReady) > 0 {
			so["notReadyAddresses"] = addrs(s.NotReady)
		}
		var ports []obj
		for _, p := range s.Ports {
			po := obj{"port": p.Port}
			if p.Name != "" {
				po["name"] = p.Name
			}
			if p.Protocol != "" {
				po["protocol"] = p.Protocol
			}
			ports = append(ports, po)
		}
		if len(ports) > 0 {
			so["ports"] = ports
		}
		subsets = append(subsets, so)
	}
	o := obj{"apiVersion": "v1", "kind": "Endpoints", "metadata": meta(e.Namespace, e.Name, e.Labels, nil)}
	if len(subsets) > 0 {
		o["subsets"] = subsets
	}
	return o
}

func (n *Node) render() obj {
	var labels map[string]string
	if n.Zone != "" {
		labels = map[string]string{"topology.kubernetes.io/zone": n.Zone}
	}
	o := obj{"apiVersion": "v1", "kind": "Node", "metadata": meta("", n.Name, labels, nil)}
	if len(n.PodCIDRs) > 0 {
		o["spec"] = obj{"podCIDR": n.PodCIDRs[0], "podCIDRs": n.PodCIDRs}
	}
	var addrs []obj
	for _, a := range n.InternalIPs {
		addrs = append(addrs, obj{"type": "InternalIP", "address": a})
	}
	for _, a := range n.ExternalIPs {
		addrs = append(addrs, obj{"type": "ExternalIP", "address": a})
	}
	addrs = append(addrs, obj{"type": "Hostname", "address": n.Name})
	o["status"] = obj{"addresses": addrs}
	return o
}

// Render returns c's objects as a multi-document YAML stream.
func (c *Case) Render() []byte {
	var docs []obj
	for _, x := range c.ServiceCIDRs {
		docs = append(docs, obj{"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR", "metadata": meta("", x.Name, nil, nil), "spec": obj{"cidrs": x.CIDRs}})
	}
	for _, x := range c.Nodes {
		docs = append(docs, x.render())
	}
	for _, x := range c.Services {
		docs = append(docs, x.render())
	}
	for _, x := range c.Slices {
		docs = append(docs, x.render())
	}
	for _, x := range c.Endpoints {
		docs = append(docs, x.render())
	}
	var b strings.Builder
	for i, d := range docs {
		if i > 0 {
			b.WriteString("---\n")
		}
		y, err := yaml.Marshal(d)
		if err != nil {
			panic(err)
		}
		b.Write(y)
	}
	return []byte(b.String())
}

// ArgsFile returns the case's settings as an args file.
func (c *Case) ArgsFile(comment string) []byte {
	return c.Settings.ArgsFile(comment)
}

func sortedCopy(s []string) []string {
	o := cloneStrings(s)
	sort.Strings(o)
	return o
}

func cloneEndpoint(e *Endpoint) *Endpoint {
	f := *e
	f.Addresses = cloneStrings(e.Addresses)
	f.Ready, f.Serving, f.Terminating = cloneBool(e.Ready), cloneBool(e.Serving), cloneBool(e.Terminating)
	f.HintZones = cloneStrings(e.HintZones)
	f.HintNodes = cloneStrings(e.HintNodes)
	return &f
}

func boolStr(b *bool, def bool) string {
	if b == nil {
		return fmt.Sprint(def)
	}
	return fmt.Sprint(*b)
}

// variant is what kube-proxy reads of an endpoint besides its address.
func (e *Endpoint) variant() string {
	return strings.Join([]string{boolStr(e.Ready, true), boolStr(e.Serving, true), boolStr(e.Terminating, false),
		e.NodeName, strings.Join(sortedCopy(e.HintZones), ","), strings.Join(sortedCopy(e.HintNodes), ",")}, "|")
}

func (e *Endpoint) terminating() bool { return e.Terminating != nil && *e.Terminating }

// ambiguous reports the first endpoint address (per Service) for which
// kube-proxy's result is undefined: EndpointSliceCache merges the slices of a
// Service in Go map order, and for one IP a later non-terminating endpoint
// replaces an earlier one while a terminating one never does. So the result is
// order-independent only if all non-terminating copies agree, and, when there
// is none, all terminating copies agree.
func (c *Case) ambiguous() (sliceIdx, epIdx int, ok bool) {
	type agg struct{ nonTerm, term map[string]bool }
	seen := map[string]*agg{}
	for i, s := range c.Slices {
		for j, e := range s.Endpoints {
			if len(e.Addresses) == 0 {
				continue
			}
			k := s.Namespace + "/" + s.Service + "/" + e.Addresses[0]
			a := seen[k]
			if a == nil {
				a = &agg{map[string]bool{}, map[string]bool{}}
				seen[k] = a
			}
			if e.terminating() {
				a.term[e.variant()] = true
			} else {
				a.nonTerm[e.variant()] = true
			}
			if len(a.nonTerm) > 1 || (len(a.nonTerm) == 0 && len(a.term) > 1) {
				return i, j, true
			}
		}
	}
	return 0, 0, false
}

// Ambiguous reports whether kube-proxy's output for c depends on Go map order
// beyond what the comparison normalises (see ambiguous).
func (c *Case) Ambiguous() bool {
	_, _, ok := c.ambiguous()
	return ok
}

// dropAmbiguous removes endpoints until c is not ambiguous.
func (c *Case) dropAmbiguous() {
	for {
		i, j, ok := c.ambiguous()
		if !ok {
			return
		}
		c.Slices[i].Endpoints = cut(c.Slices[i].Endpoints, j, j+1)
	}
}

// Valid reports whether c is still an input the API server would hold:
// checked here are the invariants shrinking can break (every Service's IP
// families have a service CIDR when service CIDRs are known; no ambiguous
// duplicate endpoints).
func (c *Case) Valid() bool {
	if c.Ambiguous() {
		return false
	}
	fams := map[string]bool{}
	cidrs := splitComma(c.Settings.ServiceCIDRs)
	for _, o := range c.ServiceCIDRs {
		cidrs = append(cidrs, o.CIDRs...)
	}
	for _, x := range cidrs {
		if strings.Contains(x, ":") {
			fams["IPv6"] = true
		} else {
			fams["IPv4"] = true
		}
	}
	if len(fams) == 0 {
		return true
	}
	for _, s := range c.Services {
		for _, f := range s.IPFamilies {
			if !fams[f] {
				return false
			}
		}
		for _, ip := range s.ClusterIPs {
			f := "IPv4"
			if strings.Contains(ip, ":") {
				f = "IPv6"
			}
			if !fams[f] {
				return false
			}
		}
	}
	return true
}
