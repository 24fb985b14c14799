package compiler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	discovery "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// MaterializeOptions say what the assumed cluster looks like: the API
// server's allocation ranges, the nodes and the pod network.
type MaterializeOptions struct {
	// NoAllocate compiles the input as a cluster snapshot: nothing is
	// allocated or derived (a Service without a ClusterIP is skipped, as
	// kube-proxy skips it; a missing nodePort stays 0).
	NoAllocate bool
	// ServiceCIDRs are the allocation ranges (--service-cidrs); empty: the
	// ServiceCIDR objects of the input, else DefaultServiceCIDRv4 and
	// DefaultServiceCIDRv6.
	ServiceCIDRs []string
	// NodePortRange is --service-node-port-range ("" = DefaultNodePortRange).
	NodePortRange string
	// Nodes are the cluster's nodes, "name" or "name=zone" (empty: DefaultNodes).
	Nodes []string
	// PodCIDRs are the pod networks (--cluster-cidr); a family without one
	// uses DefaultPodCIDRv4 / DefaultPodCIDRv6.
	PodCIDRs []string
	// NodeName, NodeIPs and Zone describe the node compiled for; an assumed
	// node of that name takes its addresses and zone from them.
	NodeName string
	NodeIPs  []string
	Zone     string
}

// Materialized is the cluster the manifests would produce: every object
// kube-proxy reads, as the API server and the controllers would hold it.
type Materialized struct {
	ServiceCIDRs   []*ServiceCIDRObject
	Nodes          []*NodeObject
	Services       []*ServiceObject
	Endpoints      []*EndpointsObject
	EndpointSlices []*EndpointSliceObject

	// What was assumed.
	ClusterIPs, NodePorts, HealthCheckNodePorts int
	Pods, DerivedSlices, DerivedEndpoints       int
	AssumedNodes                                []string

	comments map[any][]string
}

// Assumed reports whether anything was allocated or derived.
func (m *Materialized) Assumed() bool {
	return m != nil && (m.ClusterIPs+m.NodePorts+m.HealthCheckNodePorts+m.DerivedSlices > 0)
}

// Summary is one line saying what was assumed ("" if nothing).
func (m *Materialized) Summary() string {
	if !m.Assumed() {
		return ""
	}
	var parts []string
	count := func(n int, what string) {
		if n > 0 {
			s := ""
			if n > 1 {
				s = "s"
			}
			parts = append(parts, fmt.Sprintf("%d %s%s", n, what, s))
		}
	}
	count(m.ClusterIPs, "ClusterIP")
	count(m.NodePorts, "nodePort")
	count(m.HealthCheckNodePorts, "healthCheckNodePort")
	out := ""
	if len(parts) > 0 {
		out = "allocated " + strings.Join(parts, ", ")
	}
	if m.DerivedSlices > 0 {
		if out != "" {
			out += "; "
		}
		out += fmt.Sprintf("derived %d EndpointSlice%s (%d endpoint%s) from %d pod%s of the workloads on nodes %s",
			m.DerivedSlices, plural(m.DerivedSlices), m.DerivedEndpoints, plural(m.DerivedEndpoints), m.Pods, plural(m.Pods), strings.Join(m.AssumedNodes, ","))
	}
	return out
}

// Materialize runs Normalize and then, unless opts.NoAllocate, what the API
// server and the controllers would do with the manifests: allocation
// (allocate.go) and EndpointSlices from workloads (derive.go). The objects
// kube-proxy reads are added to in (derived slices of the Services it keeps,
// the assumed nodes when endpoints were derived), so Build sees the cluster;
// the returned Materialized holds every object, including those kube-proxy's
// informers ignore, for printing.
func Materialize(in *Inputs, opts MaterializeOptions) ([]Note, *Materialized, error) {
	m := &Materialized{
		ServiceCIDRs:   append([]*ServiceCIDRObject(nil), in.ServiceCIDRs...),
		Nodes:          append([]*NodeObject(nil), in.Nodes...),
		Services:       append([]*ServiceObject(nil), in.Services...),
		Endpoints:      append([]*EndpointsObject(nil), in.Endpoints...),
		EndpointSlices: append([]*EndpointSliceObject(nil), in.EndpointSlices...),
		comments:       map[any][]string{},
	}
	notes, err := Normalize(in)
	if err != nil {
		return notes, nil, err
	}
	if opts.NoAllocate {
		if len(in.Workloads) > 0 {
			notes = append(notes, Note{Message: fmt.Sprintf("--no-allocate: %d workload(s) ignored, no endpoints derived", len(in.Workloads))})
		}
		return notes, m, nil
	}
	// A workload the API server would reject runs no pods; the rest of the
	// input still applies (kubectl apply creates objects one by one).
	var workloads []*WorkloadObject
	for _, w := range in.Workloads {
		if w.Object.GetNamespace() == "" {
			w.Object.SetNamespace(metav1.NamespaceDefault)
		}
		if err := validateWorkload(w); err != nil {
			notes = append(notes, Note{Source: w.Source, Object: w.String(), Message: fmt.Sprintf("invalid, the API server would reject it (no pods assumed): %v", err)})
			continue
		}
		sh, _ := w.shape()
		defaultPodSpec(&sh.template.Spec)
		workloads = append(workloads, w)
	}

	al, anotes, err := allocate(m.Services, m.ServiceCIDRs, opts)
	if err != nil {
		return notes, nil, err
	}
	notes = append(notes, anotes...)
	m.ClusterIPs, m.NodePorts, m.HealthCheckNodePorts = al.clusterIPs, al.nodePorts, al.hcnps
	for s, what := range al.assumed {
		m.comments[s] = append(m.comments[s], "allocated "+strings.Join(what, ", "))
	}

	nodes, err := clusterNodes(m.Nodes, opts)
	if err != nil {
		return notes, nil, err
	}
	given := &Inputs{Endpoints: m.Endpoints, EndpointSlices: m.EndpointSlices}
	d, dnotes, err := derive(m.Services, given, workloads, nodes, opts)
	if err != nil {
		return notes, nil, err
	}
	notes = append(notes, dnotes...)
	if !d.used {
		return notes, m, nil
	}
	m.Pods, m.DerivedSlices, m.DerivedEndpoints = d.pods, len(d.slices), d.endpoints
	kept := map[string]bool{}
	for _, s := range in.Services {
		kept[s.Namespace+"/"+s.Name] = true
	}
	for _, sl := range d.slices {
		m.EndpointSlices = append(m.EndpointSlices, sl)
		if from := d.from[sl]; len(from) > 0 {
			m.comments[sl] = append(m.comments[sl], "derived by the EndpointSlice controller from the pods of "+strings.Join(from, ", "))
		} else {
			m.comments[sl] = append(m.comments[sl], "derived by the EndpointSlice controller: no pod of the workloads backs this Service (placeholder slice, no endpoints)")
		}
		if _, headless := sl.Labels[labelHeadless]; !headless && kept[sl.Namespace+"/"+sl.Labels[discovery.LabelServiceName]] {
			in.EndpointSlices = append(in.EndpointSlices, sl)
		}
	}
	for _, cn := range nodes {
		m.AssumedNodes = append(m.AssumedNodes, cn.name)
		if !cn.synthesized {
			continue
		}
		no := cn.nodeObject()
		m.Nodes = append(m.Nodes, no)
		in.Nodes = append(in.Nodes, no)
		m.comments[no] = append(m.comments[no], "assumed node (--nodes), running the workloads' pods")
	}
	if opts.NodeName != "" && !containsNode(nodes, opts.NodeName) {
		notes = append(notes, Note{Message: fmt.Sprintf("node %q is not one of the assumed nodes (%s): no derived endpoint is local to it", opts.NodeName, strings.Join(m.AssumedNodes, ","))})
	}
	return notes, m, nil
}

func containsNode(nodes []*clusterNode, name string) bool {
	for _, n := range nodes {
		if n.name == name {
			return true
		}
	}
	return false
}

// YAML prints the objects as a multi-document YAML stream, sorted by kind
// (ServiceCIDR, Node, Service, Endpoints, EndpointSlice) and namespace/name,
// each preceded by a comment when svc2rules assumed something in it. Mirrored
// slices are not printed (their Endpoints are; kube-proxy's cluster mirrors
// them again). header lines are printed first as comments.
func (m *Materialized) YAML(header []string) ([]byte, error) {
	var b bytes.Buffer
	for _, h := range header {
		b.WriteString("# " + h + "\n")
	}
	type item struct {
		order    int
		ns, name string
		key      any
		obj      any
	}
	var items []item
	for _, c := range m.ServiceCIDRs {
		obj := &networkingv1.ServiceCIDR{
			TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "ServiceCIDR"},
			ObjectMeta: metav1.ObjectMeta{Name: c.Name},
			Spec:       networkingv1.ServiceCIDRSpec{CIDRs: c.CIDRs},
		}
		items = append(items, item{0, "", c.Name, c, obj})
	}
	for _, n := range m.Nodes {
		o := n.Node.DeepCopy()
		o.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Node"}
		items = append(items, item{1, "", n.Name, n, o})
	}
	for _, s := range m.Services {
		o := s.Service.DeepCopy()
		o.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}
		items = append(items, item{2, s.Namespace, s.Name, s, o})
	}
	for _, e := range m.Endpoints {
		o := e.Endpoints.DeepCopy()
		o.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Endpoints"}
		items = append(items, item{3, e.Namespace, e.Name, e, o})
	}
	for _, e := range m.EndpointSlices {
		if e.Mirrored {
			continue
		}
		o := e.EndpointSlice.DeepCopy()
		o.TypeMeta = metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"}
		items = append(items, item{4, e.Namespace, e.Name, e, o})
	}
	sort.SliceStable(items, func(i, j int) bool {
		a, c := items[i], items[j]
		if a.order != c.order {
			return a.order < c.order
		}
		if a.ns != c.ns {
			return a.ns < c.ns
		}
		return a.name < c.name
	})
	for _, it := range items {
		b.WriteString("---\n")
		for _, c := range m.comments[it.key] {
			b.WriteString("# svc2rules: " + c + "\n")
		}
		y, err := toYAML(it.obj)
		if err != nil {
			return nil, err
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

// toYAML marshals an API object without the noise of empty fields
// (creationTimestamp: null, status: {}).
func toYAML(obj any) ([]byte, error) {
	j, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(j, &v); err != nil {
		return nil, err
	}
	if m, ok := v.(map[string]any); ok && m["kind"] == "Node" {
		// v1.NodeStatus has fields without omitempty; an assumed node has none of them.
		if st, ok := m["status"].(map[string]any); ok {
			for _, k := range []string{"daemonEndpoints", "nodeInfo"} {
				if isZero(st[k]) {
					delete(st, k)
				}
			}
		}
	}
	v, _ = prune(v, true)
	if v == nil {
		v = map[string]any{}
	}
	return yaml.Marshal(v)
}

// prune drops null values and empty objects (recursively); empty lists are
// kept (an EndpointSlice's "endpoints: []" says "none").
func prune(v any, top bool) (any, bool) {
	switch t := v.(type) {
	case nil:
		return nil, false
	case map[string]any:
		for k, x := range t {
			if nx, keep := prune(x, false); keep {
				t[k] = nx
			} else {
				delete(t, k)
			}
		}
		return t, len(t) > 0 || top
	case []any:
		for i := range t {
			t[i], _ = prune(t[i], true)
		}
		return t, true
	}
	return v, true
}

// isZero reports whether a decoded JSON value holds only zero values.
func isZero(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case map[string]any:
		for _, x := range t {
			if !isZero(x) {
				return false
			}
		}
		return true
	case []any:
		return len(t) == 0
	case string:
		return t == ""
	case float64:
		return t == 0
	case bool:
		return !t
	}
	return false
}
