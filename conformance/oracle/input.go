package oracle

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	networkingv1beta1 "k8s.io/api/networking/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	endpointsliceutil "k8s.io/endpointslice/util"
	endpointsv1 "k8s.io/kubernetes/pkg/api/v1/endpoints"
	corev1defaults "k8s.io/kubernetes/pkg/apis/core/v1"
	discoveryv1defaults "k8s.io/kubernetes/pkg/apis/discovery/v1"
	proxyapis "k8s.io/kubernetes/pkg/proxy/apis"
	netutils "k8s.io/utils/net"
)

// mirroringControllerName is the managed-by value the EndpointSlice mirroring
// controller puts on the slices it creates
// (k8s.io/kubernetes/pkg/controller/endpointslicemirroring.ControllerName).
const mirroringControllerName = "endpointslicemirroring-controller.k8s.io"

// maxEndpointsPerSubset is the mirroring controller's default
// (--mirroring-max-endpoints-per-subset).
const maxEndpointsPerSubset = 1000

// Inputs is everything kube-proxy's informers would deliver for one node.
type Inputs struct {
	Services       []*v1.Service
	EndpointSlices []*discovery.EndpointSlice
	Endpoints      []*v1.Endpoints // raw Endpoints objects (mirrored into EndpointSlices)
	Nodes          []*v1.Node
	ServiceCIDRs   []string // union of spec.cidrs of all ServiceCIDR objects

	// Skipped lists objects that kube-proxy's informers would never deliver,
	// with the reason (for -v / stderr diagnostics).
	Skipped []string
}

// readInputFile reads a multi-document YAML (or JSON) stream. "-" means stdin.
func readInputFile(path string) (*Inputs, error) {
	var r io.Reader
	if path == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	return readInputs(r)
}

func readInputs(r io.Reader) (*Inputs, error) {
	in := &Inputs{}
	decoder := scheme.Codecs.UniversalDeserializer()
	reader := utilyaml.NewYAMLReader(bufio.NewReaderSize(r, 1<<20))
	docNum := 0
	for {
		doc, err := reader.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading YAML document %d: %w", docNum+1, err)
		}
		docNum++
		if isEmptyDoc(doc) {
			continue
		}
		obj, gvk, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			if runtime.IsNotRegisteredError(err) {
				// a kind kube-proxy cannot know about (e.g. a CRD): ignore it
				in.Skipped = append(in.Skipped, fmt.Sprintf("YAML document %d: %v", docNum, err))
				continue
			}
			return nil, fmt.Errorf("decoding YAML document %d: %w", docNum, err)
		}
		if err := in.add(obj, gvk, decoder); err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", docNum, err)
		}
	}
	return in, nil
}

func isEmptyDoc(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		t := bytes.TrimSpace(line)
		if len(t) == 0 || t[0] == '#' || string(t) == "---" {
			continue
		}
		return false
	}
	return true
}

func (in *Inputs) add(obj runtime.Object, gvk *schema.GroupVersionKind, decoder runtime.Decoder) error {
	switch o := obj.(type) {
	case *v1.Service:
		in.Services = append(in.Services, o)
	case *v1.ServiceList:
		for i := range o.Items {
			in.Services = append(in.Services, &o.Items[i])
		}
	case *v1.Endpoints:
		in.Endpoints = append(in.Endpoints, o)
	case *v1.EndpointsList:
		for i := range o.Items {
			in.Endpoints = append(in.Endpoints, &o.Items[i])
		}
	case *discovery.EndpointSlice:
		in.EndpointSlices = append(in.EndpointSlices, o)
	case *discovery.EndpointSliceList:
		for i := range o.Items {
			in.EndpointSlices = append(in.EndpointSlices, &o.Items[i])
		}
	case *v1.Node:
		in.Nodes = append(in.Nodes, o)
	case *v1.NodeList:
		for i := range o.Items {
			in.Nodes = append(in.Nodes, &o.Items[i])
		}
	case *networkingv1.ServiceCIDR:
		in.ServiceCIDRs = append(in.ServiceCIDRs, o.Spec.CIDRs...)
	case *networkingv1.ServiceCIDRList:
		for i := range o.Items {
			in.ServiceCIDRs = append(in.ServiceCIDRs, o.Items[i].Spec.CIDRs...)
		}
	case *networkingv1beta1.ServiceCIDR:
		in.ServiceCIDRs = append(in.ServiceCIDRs, o.Spec.CIDRs...)
	case *v1.List:
		for i, item := range o.Items {
			if err := in.addRaw(item, decoder); err != nil {
				return fmt.Errorf("List item %d: %w", i, err)
			}
		}
	case *metav1.List:
		for i, item := range o.Items {
			if err := in.addRaw(item, decoder); err != nil {
				return fmt.Errorf("List item %d: %w", i, err)
			}
		}
	default:
		in.Skipped = append(in.Skipped, fmt.Sprintf("%s: kind not used by kube-proxy", gvk.String()))
	}
	return nil
}

func (in *Inputs) addRaw(item runtime.RawExtension, decoder runtime.Decoder) error {
	if item.Object != nil {
		gvk := item.Object.GetObjectKind().GroupVersionKind()
		return in.add(item.Object, &gvk, decoder)
	}
	obj, gvk, err := decoder.Decode(item.Raw, nil, nil)
	if err != nil {
		return err
	}
	return in.add(obj, gvk, decoder)
}

// normalize does what the API server (defaulting, namespace defaulting, ClusterIPs /
// IPFamilies population) and kube-proxy's informers (label/field selectors) would
// do before kube-proxy ever sees the objects, and mirrors Endpoints into
// EndpointSlices the way the EndpointSlice mirroring controller does.
func (in *Inputs) normalize(applyDefaults, strictMirroring bool) {
	for _, s := range in.Services {
		if s.Namespace == "" {
			s.Namespace = metav1.NamespaceDefault
		}
		if applyDefaults {
			corev1defaults.SetObjectDefaults_Service(s)
			populateClusterIPs(s)
		}
	}
	for _, e := range in.Endpoints {
		if e.Namespace == "" {
			e.Namespace = metav1.NamespaceDefault
		}
		if applyDefaults {
			corev1defaults.SetObjectDefaults_Endpoints(e)
		}
	}
	for _, eps := range in.EndpointSlices {
		if eps.Namespace == "" {
			eps.Namespace = metav1.NamespaceDefault
		}
		if applyDefaults {
			discoveryv1defaults.SetObjectDefaults_EndpointSlice(eps)
		}
	}

	// Mirror Endpoints -> EndpointSlices.
	svcByName := map[string]*v1.Service{}
	for _, s := range in.Services {
		svcByName[s.Namespace+"/"+s.Name] = s
	}
	for _, e := range in.Endpoints {
		if strictMirroring {
			svc := svcByName[e.Namespace+"/"+e.Name]
			switch {
			case svc == nil:
				in.Skipped = append(in.Skipped, fmt.Sprintf("Endpoints %s/%s: not mirrored (no Service with that name; -strict-mirroring)", e.Namespace, e.Name))
				continue
			case svc.Spec.Selector != nil:
				in.Skipped = append(in.Skipped, fmt.Sprintf("Endpoints %s/%s: not mirrored (Service has a selector, so the EndpointSlice controller owns its slices; -strict-mirroring)", e.Namespace, e.Name))
				continue
			case e.Labels[discovery.LabelSkipMirror] == "true":
				in.Skipped = append(in.Skipped, fmt.Sprintf("Endpoints %s/%s: not mirrored (%s=true)", e.Namespace, e.Name, discovery.LabelSkipMirror))
				continue
			}
			if _, ok := e.Annotations[resourcelock.LeaderElectionRecordAnnotationKey]; ok {
				in.Skipped = append(in.Skipped, fmt.Sprintf("Endpoints %s/%s: not mirrored (leader-election annotation)", e.Namespace, e.Name))
				continue
			}
		}
		in.EndpointSlices = append(in.EndpointSlices, mirrorEndpoints(e)...)
	}

	// Informer-level filtering done by kube-proxy (cmd/kube-proxy/app/server.go):
	// Services: label selector "!service.kubernetes.io/service-proxy-name" and field
	// selector "spec.clusterIP!=None"; EndpointSlices: "!service.kubernetes.io/headless".
	svcs := in.Services[:0]
	for _, s := range in.Services {
		if _, ok := s.Labels[proxyapis.LabelServiceProxyName]; ok {
			in.Skipped = append(in.Skipped, fmt.Sprintf("Service %s/%s: has label %s (filtered by kube-proxy's informer)", s.Namespace, s.Name, proxyapis.LabelServiceProxyName))
			continue
		}
		if s.Spec.ClusterIP == v1.ClusterIPNone {
			in.Skipped = append(in.Skipped, fmt.Sprintf("Service %s/%s: headless (spec.clusterIP=None, filtered by kube-proxy's informer)", s.Namespace, s.Name))
			continue
		}
		svcs = append(svcs, s)
	}
	in.Services = svcs
	slices := in.EndpointSlices[:0]
	for _, eps := range in.EndpointSlices {
		if _, ok := eps.Labels[v1.IsHeadlessService]; ok {
			in.Skipped = append(in.Skipped, fmt.Sprintf("EndpointSlice %s/%s: has label %s (filtered by kube-proxy's informer)", eps.Namespace, eps.Name, v1.IsHeadlessService))
			continue
		}
		slices = append(slices, eps)
	}
	in.EndpointSlices = slices
}

// populateClusterIPs fills spec.clusterIPs / spec.ipFamilies from spec.clusterIP the
// way the API server's Service REST strategy does for single-stack services, so that
// inputs written with only `clusterIP:` behave like objects read back from a cluster.
func populateClusterIPs(s *v1.Service) {
	if s.Spec.ClusterIP == "" || s.Spec.ClusterIP == v1.ClusterIPNone {
		return
	}
	if len(s.Spec.ClusterIPs) == 0 {
		s.Spec.ClusterIPs = []string{s.Spec.ClusterIP}
	}
	if len(s.Spec.IPFamilies) == 0 {
		for _, ip := range s.Spec.ClusterIPs {
			if netutils.IsIPv6String(ip) {
				s.Spec.IPFamilies = append(s.Spec.IPFamilies, v1.IPv6Protocol)
			} else {
				s.Spec.IPFamilies = append(s.Spec.IPFamilies, v1.IPv4Protocol)
			}
		}
	}
}

// mirrorEndpoints converts one Endpoints object into EndpointSlices following the
// logic of k8s.io/kubernetes/pkg/controller/endpointslicemirroring (reconcile,
// desiredCalc, addressToEndpoint, epPortsToEpsPorts, newEndpointSlice): subsets are
// repacked, grouped by (address type, port set), at most maxEndpointsPerSubset
// addresses are taken per subset, addresses are ready=true and notReadyAddresses
// ready=false, and nodeName/hostname/targetRef are copied. Slice names are
// deterministic ("<endpoints-name>-<addresstype>-<n>") instead of generated.
func mirrorEndpoints(e *v1.Endpoints) []*discovery.EndpointSlice {
	type group struct {
		addrType discovery.AddressType
		ports    []discovery.EndpointPort
		set      endpointsliceutil.EndpointSet
	}
	groups := map[string]*group{}

	for _, subset := range endpointsv1.RepackSubsets(e.Subsets) {
		ports := epPortsToEpsPorts(subset.Ports)
		keys := map[discovery.AddressType]string{}
		for _, at := range []discovery.AddressType{discovery.AddressTypeIPv4, discovery.AddressTypeIPv6} {
			k := fmt.Sprintf("%s-%s", at, endpointsliceutil.NewPortMapKey(ports))
			keys[at] = k
			if groups[k] == nil {
				groups[k] = &group{addrType: at, set: endpointsliceutil.EndpointSet{}}
			}
			groups[k].ports = ports
		}
		added := 0
		addAll := func(addrs []v1.EndpointAddress, ready bool) {
			for _, a := range addrs {
				if added >= maxEndpointsPerSubset {
					return
				}
				ep, at := addressToEndpoint(a, ready)
				if at == nil {
					continue // invalid IP: the controller skips it (and emits an event)
				}
				groups[keys[*at]].set.Insert(ep)
				added++
			}
		}
		addAll(subset.Addresses, true)
		addAll(subset.NotReadyAddresses, false)
	}

	keys := make([]string, 0, len(groups))
	for k, g := range groups {
		if g.set.Len() > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)

	var out []*discovery.EndpointSlice
	counter := map[discovery.AddressType]int{}
	for _, k := range keys {
		g := groups[k]
		counter[g.addrType]++
		slice := &discovery.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Name:        fmt.Sprintf("%s-%s-%d", e.Name, strings.ToLower(string(g.addrType)), counter[g.addrType]),
				Namespace:   e.Namespace,
				Labels:      map[string]string{},
				Annotations: map[string]string{},
			},
			AddressType: g.addrType,
			Ports:       g.ports,
			Endpoints:   []discovery.Endpoint{},
		}
		for l, v := range e.Labels {
			slice.Labels[l] = v
		}
		slice.Labels[discovery.LabelServiceName] = e.Name
		slice.Labels[discovery.LabelManagedBy] = mirroringControllerName
		for a, v := range e.Annotations {
			if a == v1.EndpointsLastChangeTriggerTime || a == v1.LastAppliedConfigAnnotation {
				continue
			}
			slice.Annotations[a] = v
		}
		eps := g.set.UnsortedList()
		sort.Slice(eps, func(i, j int) bool { return eps[i].Addresses[0] < eps[j].Addresses[0] })
		for i, ep := range eps {
			if i >= maxEndpointsPerSubset {
				break
			}
			slice.Endpoints = append(slice.Endpoints, *ep)
		}
		out = append(out, slice)
	}
	return out
}

// addressToEndpoint is k8s.io/kubernetes/pkg/controller/endpointslicemirroring.addressToEndpoint.
func addressToEndpoint(address v1.EndpointAddress, ready bool) (*discovery.Endpoint, *discovery.AddressType) {
	ip := netutils.ParseIPSloppy(address.IP)
	if ip == nil {
		return nil, nil
	}
	addressType := discovery.AddressTypeIPv4
	if ip.To4() == nil {
		addressType = discovery.AddressTypeIPv6
	}
	endpoint := &discovery.Endpoint{
		Addresses:  []string{ip.String()},
		Conditions: discovery.EndpointConditions{Ready: &ready},
		TargetRef:  address.TargetRef,
	}
	if address.NodeName != nil {
		endpoint.NodeName = address.NodeName
	}
	if address.Hostname != "" {
		endpoint.Hostname = &address.Hostname
	}
	return endpoint, &addressType
}

// epPortsToEpsPorts is k8s.io/kubernetes/pkg/controller/endpointslicemirroring.epPortsToEpsPorts.
func epPortsToEpsPorts(epPorts []v1.EndpointPort) []discovery.EndpointPort {
	epsPorts := []discovery.EndpointPort{}
	for _, epPort := range epPorts {
		epp := epPort.DeepCopy()
		epsPorts = append(epsPorts, discovery.EndpointPort{
			Name:        &epp.Name,
			Port:        &epp.Port,
			Protocol:    &epp.Protocol,
			AppProtocol: epp.AppProtocol,
		})
	}
	return epsPorts
}

// nodeTopologyLabels returns what kube-proxy's NodeTopologyConfig would pass to
// OnTopologyChange for the Node named nodeName (only topology.kubernetes.io/zone is
// forwarded), and whether such a Node was found.
func (in *Inputs) nodeTopologyLabels(nodeName string) (map[string]string, bool) {
	for _, n := range in.Nodes {
		if n.Name != nodeName {
			continue
		}
		labels := map[string]string{}
		if z, ok := n.Labels[v1.LabelTopologyZone]; ok {
			labels[v1.LabelTopologyZone] = z
		}
		return labels, true
	}
	return nil, false
}

// node returns the Node object named name, or nil.
func (in *Inputs) node(name string) *v1.Node {
	if name == "" {
		return nil
	}
	for _, n := range in.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}
