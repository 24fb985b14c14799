package check

// Severity of a finding.
type Severity int

const (
	// Info is worth knowing and changes nothing (an object kube-proxy ignores).
	Info Severity = iota
	// Warning is accepted by the API server but kube-proxy will reject, drop
	// or ignore traffic, or an object is dead weight.
	Warning
	// Error is an object the API server would refuse.
	Error
)

func (s Severity) String() string {
	switch s {
	case Error:
		return "error"
	case Warning:
		return "warning"
	}
	return "info"
}

// Rule describes one kind of finding. IDs are stable: CI configurations and
// suppressions may name them.
type Rule struct {
	ID       string
	Severity Severity
	// Title is a one-line description.
	Title string
	// Help says why it matters and what to do.
	Help string
}

// Rules is the catalogue of every finding check can report, in documentation order.
var Rules = []Rule{
	{"invalid-yaml", Error, "Document is not valid YAML or JSON", "The document cannot be parsed; nothing in it is read. Fix the syntax."},
	{"invalid-object", Error, "Document is not a valid Kubernetes object", "The document has no kind, a field of the wrong type or Lists nested too deeply; the API server would refuse it."},
	{"invalid-name", Error, "Invalid name", "Names, namespaces, port names, node names and labels must be DNS-1123 / DNS-1035 labels or subdomains as the API server requires. Only validated names ever reach a rule or a comment."},
	{"invalid-ip", Error, "Invalid IP address", "An IP address does not parse, has surrounding spaces or is of the wrong family."},
	{"invalid-cidr", Error, "Invalid CIDR", "A CIDR does not parse."},
	{"invalid-port", Error, "Invalid port", "Ports, nodePorts and targetPorts must be within 1-65535; a named targetPort must be an IANA service name."},
	{"unsupported-value", Error, "Unsupported value", "An enumerated field (type, protocol, policy, family, ipMode, ...) holds a value the API does not know."},
	{"duplicate-value", Error, "Duplicate value in an object", "Two ports of one object have the same name, port/protocol or nodePort/protocol."},
	{"required-value", Error, "Required value missing", "A field the API server requires is missing (ports, port names of multi-port objects)."},
	{"forbidden-field", Error, "Field not allowed here", "The field is not allowed for this type or policy (nodePort on ClusterIP, healthCheckNodePort without LoadBalancer + Local, loadBalancerSourceRanges outside LoadBalancer, externalTrafficPolicy on an internal Service)."},
	{"too-many", Error, "Too many values", "More values than the API server allows (endpoints per slice, addresses per endpoint, hints, cluster IPs, families)."},
	{"invalid-value", Error, "Invalid value", "A field value the API server would refuse."},
	{"duplicate-object", Error, "Object defined twice", "Two documents define the same kind, namespace and name: in a cluster the later one replaces the earlier (compile does the same and ignores the earlier one). Keep one."},
	{"duplicate-cluster-ip", Error, "ClusterIP used by two Services", "The API server allocates each ClusterIP once; the second Service would be refused."},
	{"duplicate-node-port", Error, "nodePort used by two Services", "A nodePort (per protocol) or healthCheckNodePort is allocated once cluster-wide; the second Service would be refused."},
	{"node-port-out-of-range", Error, "nodePort outside --service-node-port-range", "The API server only allocates node ports in its range (default 30000-32767)."},
	{"cluster-ip-out-of-range", Error, "ClusterIP outside the service CIDRs", "The ClusterIP is in no --service-cidrs range and no ServiceCIDR object of its family; the API server would refuse it."},
	{"allocation-failed", Error, "Allocation or endpoint derivation failed", "What the API server and the controllers would do with the input cannot be done (an address or port taken twice, out of its range, two pods with one IP): compile fails the same way. check then looks at the input as a snapshot (--no-allocate)."},
	{"endpoints-without-service", Warning, "Endpoints or EndpointSlice for a missing Service", "No Service of that name in that namespace is in the input; kube-proxy never uses these endpoints."},
	{"endpointslice-without-service-label", Warning, "EndpointSlice without kubernetes.io/service-name", "kube-proxy only reads slices labelled with their Service's name."},
	{"unmatched-service-port", Warning, "Service port matched by no endpoint port", "kube-proxy matches a Service port to endpoint ports by name and protocol (never by targetPort); with no match the port has no endpoints and kube-proxy REJECTs its traffic."},
	{"no-ready-endpoints", Warning, "Service port without ready endpoints", "None of the port's endpoints is ready (and none is serving while terminating): kube-proxy REJECTs its traffic."},
	{"no-endpoints", Warning, "Service without endpoints", "A Service without a selector and without Endpoints or EndpointSlices in the input: kube-proxy REJECTs its traffic."},
	{"no-local-endpoints", Warning, "Local traffic policy without an endpoint on the node", "externalTrafficPolicy or internalTrafficPolicy Local and no ready endpoint on --node-name: kube-proxy DROPs that traffic on this node."},
	{"topology-hints-ignored", Warning, "Topology hints kube-proxy ignores", "kube-proxy honours hints only when every ready endpoint carries them and one matches the node or its zone; otherwise it uses every endpoint."},
	{"selector-matches-no-pod", Warning, "Service selector matches no pod of the input's workloads", "The input holds workloads but none of their pods carries the Service's selector labels: in the cluster its EndpointSlices would be empty and kube-proxy REJECTs its traffic."},
	{"target-port-not-found", Warning, "Named targetPort matches no container port", "A named targetPort names no container port of the selected pods: the EndpointSlice controller leaves that port out and kube-proxy REJECTs its traffic."},
	{"invalid-workload", Error, "Invalid workload", "A Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job or CronJob the API server would refuse: it runs no pods, so it backs no Service."},
	{"workload-not-scheduled", Warning, "Workload pods cannot be scheduled", "No node of the cluster (--nodes) matches the pods' nodeName or nodeSelector: they stay Pending and are no endpoints."},
	{"endpoints-not-in-input", Info, "Service endpoints not in the input", "The Service has a selector and no Endpoints or EndpointSlices in the input: in the cluster the EndpointSlice controller writes them. Checks that need endpoints were skipped for it."},
	{"service-ignored", Info, "Service kube-proxy ignores", "Headless Services, Services handed to another proxy (service.kubernetes.io/service-proxy-name), ExternalName Services and Services without a ClusterIP get no rules."},
	{"kind-skipped", Info, "Kind kube-proxy does not read", "Objects of other kinds are skipped."},
	{"assumed", Info, "Value allocated or endpoints derived", "What compile assumes the cluster would add: ClusterIPs and node ports the API server allocates, EndpointSlices the controller derives from the input's workloads (--no-allocate turns this off)."},
	{"note", Info, "Other remark", "Anything else svc2rules notes about the input."},
}

// ruleByID finds a rule of the catalogue.
func ruleByID(id string) (Rule, bool) {
	for _, r := range Rules {
		if r.ID == id {
			return r, true
		}
	}
	return Rule{}, false
}
