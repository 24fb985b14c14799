package compiler

import (
	"strings"

	v1 "k8s.io/api/core/v1"
)

// Plan is the backend-neutral description of what kube-proxy programs on one
// node for one IP family after a full sync. Every backend is a pure function of
// a Plan and its own settings; nothing in a Plan depends on map iteration order.
type Plan struct {
	// Family is the IP family of this proxier (kube-proxy runs one per family).
	Family v1.IPFamily

	// Node describes the node the rules are compiled for.
	Node Node

	// ServicePorts holds one entry per (Service, spec.ports[] entry) that
	// kube-proxy's service change tracker keeps for this family, sorted by
	// (namespace, name, port name, protocol). This is one of the orders
	// kube-proxy can produce (it iterates a Go map).
	ServicePorts []*ServicePort

	// ServiceCIDRs are the ServiceCIDR ranges of this family (from
	// --service-cidrs and ServiceCIDR objects), normalised ("10.96.0.0/12"),
	// de-duplicated and sorted by string. Only the nftables backend reads them.
	ServiceCIDRs []string

	// TotalEndpoints is the number of endpoints of all service ports, of every
	// condition, before categorisation (kube-proxy's "large cluster mode"
	// threshold counts these).
	TotalEndpoints int

	// FeatureGates are the effective kube-proxy feature gates that change rules.
	FeatureGates FeatureGates
}

// FeatureGates are the kube-proxy v1.37 feature gates that change generated rules.
type FeatureGates struct {
	// AllowServiceExternalIPs (GA, default true): emit rules for spec.externalIPs.
	AllowServiceExternalIPs bool
	// KubeProxyNFTablesLocalhostNodePorts (alpha, default false): nftables
	// localhost NodePort objects.
	KubeProxyNFTablesLocalhostNodePorts bool
}

// Node is what kube-proxy knows about the node it runs on.
type Node struct {
	// Name is kube-proxy's --hostname-override; endpoints whose nodeName equals
	// it are local. May be empty (then no endpoint is local).
	Name string
	// Zone is the node's topology.kubernetes.io/zone label ("" if unknown).
	Zone string
	// IP is the node's primary IP of Plan.Family, canonical text, or "" if the
	// node has none of that family (kube-proxy then uses the loopback address
	// where it needs one, see PrimaryIPOrLoopback).
	IP string
	// PodCIDRs are the node's spec.podCIDRs (from the Node object named
	// Name), which kube-proxy's NodeCIDR local-traffic detector uses.
	PodCIDRs []string
	// Addresses are all addresses on the node's interfaces of Plan.Family,
	// canonical text, sorted by string, de-duplicated: the primary IP, the
	// extra --node-addresses and the loopback address (127.0.0.1 / ::1).
	// They resolve --nodeport-addresses CIDRs and, in ipvs mode, the NodePort
	// virtual servers.
	Addresses []string
}

// PrimaryIPOrLoopback returns the node IP of the family, or the family's
// loopback address when the node has none (what kube-proxy's NewProxier does).
func (n Node) PrimaryIPOrLoopback(family v1.IPFamily) string {
	if n.IP != "" {
		return n.IP
	}
	if family == v1.IPv6Protocol {
		return "::1"
	}
	return "127.0.0.1"
}

// ServicePort is one port of one Service as kube-proxy's ServicePort sees it
// (pkg/proxy/serviceport.go), with its endpoints already categorised
// (pkg/proxy/topology.go CategorizeEndpoints).
type ServicePort struct {
	Namespace string
	Name      string
	PortName  string
	Protocol  v1.Protocol

	// SPN is kube-proxy's ServicePortName string: "ns/name" or "ns/name:port".
	SPN string

	// ClusterIP is the cluster IP of the plan's family, canonical text.
	ClusterIP string
	Port      int32
	// NodePort is spec.ports[].nodePort whatever the service type (0 = none).
	NodePort int32
	// HealthCheckNodePort is set only for type LoadBalancer with
	// externalTrafficPolicy Local (0 = none).
	HealthCheckNodePort int32

	// ExternalIPs: spec.externalIPs of the family, canonical, spec order,
	// duplicates kept. Listed whatever the AllowServiceExternalIPs gate says;
	// backends check the gate before emitting rules for them.
	ExternalIPs []string
	// LoadBalancerVIPs: status.loadBalancer.ingress[].ip of the family whose
	// ipMode is unset or VIP, canonical, status order, duplicates kept.
	LoadBalancerVIPs []string
	// LoadBalancerSourceRanges: spec.loadBalancerSourceRanges trimmed, parsed,
	// normalised to the network address, family-filtered, spec order. Empty
	// when any of them is a zero-length prefix (0.0.0.0/0, ::/0).
	LoadBalancerSourceRanges []string

	// SessionAffinityClientIP is sessionAffinity == ClientIP;
	// StickyMaxAgeSeconds is its timeout (10800 by default).
	SessionAffinityClientIP bool
	StickyMaxAgeSeconds     int32

	ExternalPolicyLocal  bool // externalTrafficPolicy Local, honoured for this type
	InternalPolicyLocal  bool // internalTrafficPolicy Local
	ExternallyAccessible bool // NodePort, an LB VIP or an external IP of the family
	UsesClusterEndpoints bool
	UsesLocalEndpoints   bool

	// Endpoints are all endpoints of the service port (any condition), sorted
	// by Endpoint.String byte-wise, duplicates resolved as kube-proxy does.
	Endpoints []*Endpoint

	// Categorised endpoints (CategorizeEndpoints). Each slice holds pointers
	// into Endpoints and is in Endpoints order. ReachableEndpoints is the
	// union of Cluster and Local when kube-proxy builds one (its order is a Go
	// map's upstream; here it is sorted by Endpoint.String).
	ClusterEndpoints   []*Endpoint
	LocalEndpoints     []*Endpoint
	ReachableEndpoints []*Endpoint
	// HasEndpoints is CategorizeEndpoints' hasAnyEndpoints.
	HasEndpoints bool
	// TopologyMode is "", "PreferSameZone" or "PreferSameNode": the hints
	// kube-proxy applied to ClusterEndpoints.
	TopologyMode string

	// Source locates the Service in the input (for messages, explain, check).
	Source Source
}

// HasInternalEndpoints reports whether traffic to the cluster IP can be served
// (kube-proxy: hasEndpoints && !(ITP Local && no local endpoints)).
func (sp *ServicePort) HasInternalEndpoints() bool {
	return sp.HasEndpoints && !(sp.InternalPolicyLocal && len(sp.LocalEndpoints) == 0)
}

// HasExternalEndpoints reports whether external traffic can be served.
func (sp *ServicePort) HasExternalEndpoints() bool {
	return sp.HasEndpoints && !(sp.ExternalPolicyLocal && len(sp.LocalEndpoints) == 0)
}

// UsesClusterChain reports whether kube-proxy writes the cluster-policy chain.
func (sp *ServicePort) UsesClusterChain() bool {
	return len(sp.ClusterEndpoints) > 0 && sp.UsesClusterEndpoints
}

// UsesLocalChain reports whether kube-proxy writes the local-policy chain.
func (sp *ServicePort) UsesLocalChain() bool {
	return len(sp.LocalEndpoints) > 0 && sp.UsesLocalEndpoints
}

// UsesExternalChain reports whether kube-proxy writes the external chain.
func (sp *ServicePort) UsesExternalChain() bool {
	return sp.HasEndpoints && sp.ExternallyAccessible
}

// Endpoint is one endpoint of a service port (pkg/proxy/endpoint.go).
type Endpoint struct {
	// IP is addresses[0], canonical text.
	IP   string
	Port int32
	// NodeName is the endpoint's nodeName ("" if unset).
	NodeName string
	IsLocal  bool
	// Conditions with kube-proxy's nil defaults applied: ready and serving
	// default to true, terminating to false.
	Ready       bool
	Serving     bool
	Terminating bool
	// ZoneHints and NodeHints are hints.forZones / hints.forNodes names, sorted.
	ZoneHints []string
	NodeHints []string

	// hostPort caches String(), which every backend asks for many times.
	hostPort string
}

// String is kube-proxy's endpoint string: "IP:port", "[IP]:port" for IPv6.
func (e *Endpoint) String() string {
	if e.hostPort != "" {
		return e.hostPort
	}
	return joinHostPort(e.IP, e.Port)
}

// Source is where an object came from: file, document number (1-based) and
// the line where the document starts (0 if unknown).
type Source struct {
	File     string
	Document int
	Line     int
}

// LowerProtocol is strings.ToLower(string(p)), without allocating for the
// three protocols a plan holds (the backends ask once per service port).
func LowerProtocol(p v1.Protocol) string {
	switch p {
	case v1.ProtocolTCP:
		return "tcp"
	case v1.ProtocolUDP:
		return "udp"
	case v1.ProtocolSCTP:
		return "sctp"
	}
	return strings.ToLower(string(p))
}
