package compiler

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	netutils "k8s.io/utils/net"
)

// Derivation: what the EndpointSlice controller would write for a Service
// with a selector when the input holds no Endpoints or EndpointSlices for it
// (k8s.io/endpointslice v0.37: Reconcile, podToEndpoint, getEndpointPorts,
// FindPort, trafficdist). The pods are those the input's workloads would run:
// replicas as declared, a DaemonSet's on every node, spread over the nodes
// deterministically, with stable addresses from the pod CIDRs.

const (
	// endpointSliceControllerName is the managed-by value of the controller's slices.
	endpointSliceControllerName = "endpointslice-controller.k8s.io"
	// maxEndpointsPerSlice is kube-controller-manager's --max-endpoints-per-slice default.
	maxEndpointsPerSlice = 100
	// DefaultPodCIDRv4 and DefaultPodCIDRv6 are the pod networks used when
	// --cluster-cidr has none of a family.
	DefaultPodCIDRv4 = "10.244.0.0/16"
	DefaultPodCIDRv6 = "fd00:10:244::/64"
	// Node addresses of assumed nodes (kind's docker network).
	defaultNodeCIDRv4 = "172.18.0.0/16"
	defaultNodeCIDRv6 = "fc00:f853:ccd:e793::/64"

	annotationTopologyMode        = "service.kubernetes.io/topology-mode"
	annotationTopologyAwareHints  = "service.kubernetes.io/topology-aware-hints"
	labelHostname                 = "kubernetes.io/hostname"
	labelStatefulSetPodName       = "statefulset.kubernetes.io/pod-name"
	labelPodIndex                 = "apps.kubernetes.io/pod-index"
	labelJobName                  = "batch.kubernetes.io/job-name"
	labelLegacyJobName            = "job-name"
	labelPodTemplateHash          = "pod-template-hash"
	labelControllerRevisionHash   = "controller-revision-hash"
	trafficDistributionPreferNode = "PreferSameNode"
)

// MaxDerivedPods bounds the pods derivation assumes over all workloads (a
// Deployment with replicas: 2147483647 must not exhaust memory).
const MaxDerivedPods = 200000

// DefaultNodes are the nodes assumed when --nodes is not given: three nodes in
// three zones.
var DefaultNodes = []string{"node-1=zone-a", "node-2=zone-b", "node-3=zone-c"}

// clusterNode is a node of the assumed cluster.
type clusterNode struct {
	name   string
	zone   string
	labels map[string]string
	ips    map[v1.IPFamily]string
	obj    *NodeObject
	// synthesized: assumed from --nodes (no Node object in the input).
	synthesized bool
}

// ParseNodes reads --nodes entries "name" or "name=zone".
func ParseNodes(entries []string) ([][2]string, error) {
	var out [][2]string
	seen := map[string]bool{}
	for _, e := range entries {
		name, zone, _ := strings.Cut(strings.TrimSpace(e), "=")
		if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
			return nil, fmt.Errorf("node %q: %s", name, strings.Join(msgs, "; "))
		}
		if zone != "" {
			if msgs := validation.IsValidLabelValue(zone); len(msgs) > 0 {
				return nil, fmt.Errorf("node %q: zone %q: %s", name, zone, strings.Join(msgs, "; "))
			}
		}
		if seen[name] {
			return nil, fmt.Errorf("node %q given twice", name)
		}
		seen[name] = true
		out = append(out, [2]string{name, zone})
	}
	return out, nil
}

// clusterNodes builds the node set: --nodes (default DefaultNodes), each
// taking its zone, labels and addresses from a Node object of the input if
// there is one, else from --node-ip / --zone for --node-name, else from the
// --nodes entry and a node address by position.
func clusterNodes(inputNodes []*NodeObject, opts MaterializeOptions) ([]*clusterNode, error) {
	entries := opts.Nodes
	if len(entries) == 0 {
		entries = DefaultNodes
	}
	parsed, err := ParseNodes(entries)
	if err != nil {
		return nil, fmt.Errorf("--nodes: %v", err)
	}
	byName := map[string]*NodeObject{}
	for _, n := range inputNodes {
		byName[n.Name] = n
	}
	used := map[string]bool{}
	var nodes []*clusterNode
	for _, p := range parsed {
		cn := &clusterNode{name: p[0], zone: p[1], ips: map[v1.IPFamily]string{}}
		if obj := byName[p[0]]; obj != nil {
			cn.obj = obj
			cn.labels = obj.Labels
			cn.zone = obj.Labels[labelTopologyZone]
			for _, a := range obj.Status.Addresses {
				if a.Type != v1.NodeInternalIP {
					continue
				}
				if ip := netutils.ParseIPSloppy(a.Address); ip != nil {
					f := familyOfIP(ip.String())
					if cn.ips[f] == "" {
						cn.ips[f] = ip.String()
					}
				}
			}
		} else {
			cn.synthesized = true
			if p[0] == opts.NodeName && opts.NodeName != "" {
				if opts.Zone != "" {
					cn.zone = opts.Zone
				}
				for _, s := range opts.NodeIPs {
					if ip := netutils.ParseIPSloppy(s); ip != nil {
						f := familyOfIP(ip.String())
						if cn.ips[f] == "" {
							cn.ips[f] = ip.String()
						}
					}
				}
			}
			cn.labels = map[string]string{labelHostname: cn.name, "kubernetes.io/os": "linux"}
			if cn.zone != "" {
				cn.labels[labelTopologyZone] = cn.zone
			}
		}
		for _, ip := range cn.ips {
			used[ip] = true
		}
		nodes = append(nodes, cn)
	}
	for _, fam := range []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol} {
		cidr := defaultNodeCIDRv4
		if fam == v1.IPv6Protocol {
			cidr = defaultNodeCIDRv6
		}
		_, n, _ := netutils.ParseCIDRSloppy(cidr)
		sp := newIPSpace(n, false, false)
		for i, cn := range nodes {
			if cn.ips[fam] != "" || !cn.synthesized {
				continue
			}
			for off := uint64(2 + i); off < sp.hi; off++ {
				ip := sp.ip(off).String()
				if !used[ip] {
					used[ip] = true
					cn.ips[fam] = ip
					break
				}
			}
		}
	}
	return nodes, nil
}

// nodeObject is the Node the cluster would hold for an assumed node.
func (cn *clusterNode) nodeObject() *NodeObject {
	n := &v1.Node{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
		ObjectMeta: metav1.ObjectMeta{Name: cn.name, Labels: cn.labels},
	}
	for _, f := range []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol} {
		if ip := cn.ips[f]; ip != "" {
			n.Status.Addresses = append(n.Status.Addresses, v1.NodeAddress{Type: v1.NodeInternalIP, Address: ip})
		}
	}
	n.Status.Addresses = append(n.Status.Addresses, v1.NodeAddress{Type: v1.NodeHostName, Address: cn.name})
	return &NodeObject{Node: n, Source: Source{File: "--nodes"}}
}

// podInstance is one pod a workload would run.
type podInstance struct {
	namespace, name string
	labels          map[string]string
	spec            *v1.PodSpec
	nodeName        string
	node            *clusterNode
	hostname        string
	subdomain       string
	ips             map[v1.IPFamily]string
	ready           bool
	terminating     bool
	owner           *WorkloadObject
	// ipKey is the identity its address is derived from (stable across
	// template changes): namespace/kind/workload/ordinal or node.
	ipKey string
}

// nameSuffix is a deterministic stand-in for the API server's random
// generateName suffix (same alphabet, k8s.io/apimachinery/pkg/util/rand).
func nameSuffix(n int, parts ...string) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	h := stableHash(parts...)
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteByte(alphabet[h%uint64(len(alphabet))])
		h /= uint64(len(alphabet))
		if h == 0 {
			h = stableHash(append(parts, strconv.Itoa(i))...)
		}
	}
	return b.String()
}

// eligibleNodes are the nodes matching a pod spec's nodeSelector (nodeName
// pins a pod to one node).
func eligibleNodes(spec *v1.PodSpec, nodes []*clusterNode) []*clusterNode {
	var out []*clusterNode
	sel := labels.SelectorFromSet(spec.NodeSelector)
	for _, n := range nodes {
		if spec.NodeName != "" && n.name != spec.NodeName {
			continue
		}
		if sel.Matches(labels.Set(n.labels)) {
			out = append(out, n)
		}
	}
	return out
}

func copyLabels(l map[string]string) map[string]string {
	out := make(map[string]string, len(l)+2)
	for k, v := range l {
		out[k] = v
	}
	return out
}

// expandWorkload lists the pods a workload would run.
func expandWorkload(w *WorkloadObject, sh *workloadShape, nodes []*clusterNode) ([]*podInstance, []Note) {
	var notes []Note
	ns, name := w.Namespace(), w.Name()
	spec := &sh.template.Spec
	base := func(podName, key string) *podInstance {
		return &podInstance{
			namespace: ns, name: podName, labels: copyLabels(sh.template.Labels), spec: spec,
			hostname: spec.Hostname, subdomain: spec.Subdomain, ips: map[v1.IPFamily]string{},
			ready: true, owner: w, ipKey: key,
		}
	}
	if sh.pod != nil {
		pod := sh.pod
		p := base(pod.Name, ns+"/Pod/"+pod.Name)
		switch pod.Status.Phase {
		case v1.PodSucceeded, v1.PodFailed:
			notes = append(notes, Note{Source: w.Source, Object: w.String(), Message: fmt.Sprintf("phase %s: not an endpoint", pod.Status.Phase)})
			return nil, notes
		}
		for _, c := range pod.Status.Conditions {
			if c.Type == v1.PodReady {
				p.ready = c.Status == v1.ConditionTrue
			}
		}
		p.terminating = pod.DeletionTimestamp != nil
		for _, pip := range pod.Status.PodIPs {
			if ip := netutils.ParseIPSloppy(pip.IP); ip != nil {
				p.ips[familyOfIP(ip.String())] = ip.String()
			}
		}
		if ip := netutils.ParseIPSloppy(pod.Status.PodIP); ip != nil && p.ips[familyOfIP(ip.String())] == "" {
			p.ips[familyOfIP(ip.String())] = ip.String()
		}
		if spec.NodeName != "" {
			p.nodeName = spec.NodeName
			for _, n := range nodes {
				if n.name == spec.NodeName {
					p.node = n
				}
			}
			if p.node == nil {
				notes = append(notes, Note{Source: w.Source, Object: w.String(), Message: fmt.Sprintf("nodeName %q is not a node of the cluster (--nodes)", spec.NodeName)})
			}
		} else {
			el := eligibleNodes(spec, nodes)
			if len(el) == 0 {
				notes = append(notes, Note{Source: w.Source, Object: w.String(), Message: "no node matches its nodeSelector: it would stay Pending (no endpoint)"})
				return nil, notes
			}
			p.node = el[stableHash(ns, KindPod, pod.Name)%uint64(len(el))]
			p.nodeName = p.node.name
		}
		return []*podInstance{p}, notes
	}

	el := eligibleNodes(spec, nodes)
	if len(el) == 0 {
		if sh.replicas != 0 {
			notes = append(notes, Note{Source: w.Source, Object: w.String(), Message: "no node matches its nodeName / nodeSelector: its pods would stay Pending (no endpoints)"})
		}
		return nil, notes
	}
	var pods []*podInstance
	if w.Kind == KindDaemonSet {
		for _, n := range el {
			p := base(name+"-"+nameSuffix(5, ns, w.Kind, name, n.name), ns+"/DaemonSet/"+name+"/"+n.name)
			p.labels[labelControllerRevisionHash] = nameSuffix(10, ns, w.Kind, name)
			p.node, p.nodeName = n, n.name
			pods = append(pods, p)
		}
		return pods, notes
	}
	start := stableHash(ns, w.Kind, name) % uint64(len(el))
	for i := 0; i < sh.replicas; i++ {
		var p *podInstance
		key := fmt.Sprintf("%s/%s/%s/%d", ns, w.Kind, name, i)
		switch w.Kind {
		case KindDeployment:
			hash := nameSuffix(10, ns, w.Kind, name, "template")
			p = base(name+"-"+hash+"-"+nameSuffix(5, key), key)
			p.labels[labelPodTemplateHash] = hash
		case KindStatefulSet:
			ord := sh.ordinalStart + i
			podName := fmt.Sprintf("%s-%d", name, ord)
			key = fmt.Sprintf("%s/%s/%s/%d", ns, w.Kind, name, ord)
			p = base(podName, key)
			p.hostname, p.subdomain = podName, sh.serviceName
			p.labels[labelStatefulSetPodName] = podName
			p.labels[labelPodIndex] = strconv.Itoa(ord)
			p.labels[labelControllerRevisionHash] = name + "-" + nameSuffix(10, ns, w.Kind, name)
		case KindJob, KindCronJob:
			p = base(sh.jobName+"-"+nameSuffix(5, key), key)
			p.labels[labelJobName] = sh.jobName
			p.labels[labelLegacyJobName] = sh.jobName
		default: // ReplicaSet, ReplicationController
			p = base(name+"-"+nameSuffix(5, key), key)
		}
		n := el[(start+uint64(i))%uint64(len(el))]
		p.node, p.nodeName = n, n.name
		pods = append(pods, p)
	}
	return pods, notes
}

// podCIDRs returns the pod network of each family: the first --cluster-cidr
// of the family, else the default.
func podCIDRs(flag []string) (map[v1.IPFamily]*net.IPNet, error) {
	out := map[v1.IPFamily]*net.IPNet{}
	for _, c := range flag {
		_, n, err := netutils.ParseCIDRSloppy(strings.TrimSpace(c))
		if err != nil {
			return nil, fmt.Errorf("invalid cluster CIDR %q", c)
		}
		f := v1.IPv4Protocol
		if netutils.IsIPv6CIDR(n) {
			f = v1.IPv6Protocol
		}
		if out[f] == nil {
			out[f] = n
		}
	}
	for f, d := range map[v1.IPFamily]string{v1.IPv4Protocol: DefaultPodCIDRv4, v1.IPv6Protocol: DefaultPodCIDRv6} {
		if out[f] == nil {
			_, out[f], _ = netutils.ParseCIDRSloppy(d)
		}
	}
	return out, nil
}

// assignPodIPs gives every pod an address per family: written ones (Pod
// status) and node addresses first, then stable addresses in (namespace,
// identity) order; hostNetwork pods use their node's addresses.
func assignPodIPs(pods []*podInstance, nodes []*clusterNode, cidrs map[v1.IPFamily]*net.IPNet) error {
	pools := map[v1.IPFamily]*ipPool{}
	for f, n := range cidrs {
		pools[f] = newIPPool(f, []*net.IPNet{n}, false, true)
	}
	for _, n := range nodes {
		for f, ip := range n.ips {
			pools[f].reserve(netutils.ParseIPSloppy(ip), "node "+n.name)
		}
	}
	for _, p := range pods {
		if p.spec.HostNetwork {
			continue
		}
		for f, ip := range p.ips {
			if prev, ok := pools[f].reserve(netutils.ParseIPSloppy(ip), "Pod "+p.namespace+"/"+p.name); !ok && !strings.HasPrefix(prev, "node ") {
				return &InputError{Source: p.owner.Source, Object: p.owner.String(), Err: fmt.Errorf("status.podIPs: %s is already the address of %s", ip, prev)}
			}
		}
	}
	ordered := append([]*podInstance(nil), pods...)
	sort.SliceStable(ordered, func(i, j int) bool { return ordered[i].ipKey < ordered[j].ipKey })
	for _, p := range ordered {
		if p.spec.HostNetwork {
			if p.node != nil {
				for f, ip := range p.node.ips {
					p.ips[f] = ip
				}
			}
			continue
		}
		if len(p.ips) > 0 || p.node == nil {
			continue // written in the Pod's status, or never started (no node)
		}
		for _, f := range []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol} {
			ip, ok := pools[f].take(p.ipKey, "Pod "+p.namespace+"/"+p.name)
			if !ok {
				return fmt.Errorf("pod CIDR %s is full (%d pods assumed): give a larger --cluster-cidr", cidrs[f], len(pods))
			}
			p.ips[f] = ip.String()
		}
	}
	return nil
}

// findPort is the controller's FindPort: a numeric targetPort as is, a named
// one through the container ports (then restartable init containers) with
// that name and the service port's protocol.
func findPort(spec *v1.PodSpec, sp *v1.ServicePort) (int32, bool) {
	tp := sp.TargetPort
	if tp.Type == intstr.Int {
		return tp.IntVal, true
	}
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if p.Name == tp.StrVal && p.Protocol == sp.Protocol {
				return p.ContainerPort, true
			}
		}
	}
	for _, c := range spec.InitContainers {
		if c.RestartPolicy == nil || *c.RestartPolicy != v1.ContainerRestartPolicyAlways {
			continue
		}
		for _, p := range c.Ports {
			if p.Name == tp.StrVal && p.Protocol == sp.Protocol {
				return p.ContainerPort, true
			}
		}
	}
	return 0, false
}

// derivation is what derive produced.
type derivation struct {
	slices []*EndpointSliceObject
	// from[slice] are the workloads whose pods a slice holds.
	from      map[*EndpointSliceObject][]string
	pods      int
	endpoints int
	// used: some Service's endpoints were derived (the assumed nodes matter).
	used bool
}

// derive writes the EndpointSlices of every selector Service that has none
// in the input. svcs are all Services (defaulted, allocated).
func derive(svcs []*ServiceObject, given *Inputs, workloads []*WorkloadObject, nodes []*clusterNode, opts MaterializeOptions) (*derivation, []Note, error) {
	d := &derivation{from: map[*EndpointSliceObject][]string{}}
	var notes []Note
	if len(workloads) == 0 {
		return d, nil, nil
	}
	var pods []*podInstance
	planned := 0
	for _, w := range sortedWorkloads(workloads) {
		sh, err := w.shape()
		if err != nil {
			return nil, nil, &InputError{Source: w.Source, Object: w.String(), Err: err}
		}
		if sh.replicas < 0 {
			planned += len(nodes)
		} else {
			planned += sh.replicas
		}
		if planned > MaxDerivedPods {
			return nil, nil, &InputError{Source: w.Source, Object: w.String(), Err: fmt.Errorf("the workloads would run more than %d pods (a limit against hostile input)", MaxDerivedPods)}
		}
		ps, ns := expandWorkload(w, sh, nodes)
		pods = append(pods, ps...)
		notes = append(notes, ns...)
	}
	cidrs, err := podCIDRs(opts.PodCIDRs)
	if err != nil {
		return nil, nil, err
	}
	if err := assignPodIPs(pods, nodes, cidrs); err != nil {
		return nil, nil, err
	}
	d.pods = len(pods)

	has := map[string]bool{}
	for _, e := range given.Endpoints {
		has[e.Namespace+"/"+e.Name] = true
	}
	for _, s := range given.EndpointSlices {
		if svc := s.Labels[discovery.LabelServiceName]; svc != "" {
			has[s.Namespace+"/"+svc] = true
		}
	}
	podsByNS := map[string][]*podInstance{}
	for _, p := range pods {
		podsByNS[p.namespace] = append(podsByNS[p.namespace], p)
	}
	for _, so := range sortedServices(svcs) {
		s := so.Service
		if s.Spec.Type == v1.ServiceTypeExternalName || len(s.Spec.Selector) == 0 || has[s.Namespace+"/"+s.Name] {
			continue
		}
		d.used = true
		sel := labels.SelectorFromSet(s.Spec.Selector)
		var matched []*podInstance
		owners := map[*WorkloadObject]int{}
		var ownerOrder []*WorkloadObject
		for _, p := range podsByNS[s.Namespace] {
			if !sel.Matches(labels.Set(p.labels)) {
				continue
			}
			matched = append(matched, p)
			if owners[p.owner] == 0 {
				ownerOrder = append(ownerOrder, p.owner)
			}
			owners[p.owner]++
		}
		var from []string
		for _, w := range ownerOrder {
			from = append(from, ownerLabel(w, owners[w]))
		}
		if len(matched) == 0 {
			notes = append(notes, Note{Source: so.Source, Object: svcObj(so), Message: fmt.Sprintf("selector %s matches no pod of the input's workloads in namespace %s: no endpoints", sel.String(), s.Namespace)})
		}
		// Named target ports no container has: the pods get no port for them.
		for i := range s.Spec.Ports {
			sp := &s.Spec.Ports[i]
			if sp.TargetPort.Type != intstr.String {
				continue
			}
			for _, w := range ownerOrder {
				for _, p := range matched {
					if p.owner != w {
						continue
					}
					if _, ok := findPort(p.spec, sp); !ok {
						notes = append(notes, Note{Source: so.Source, Object: svcObj(so), Message: fmt.Sprintf("port %s: targetPort %q names no %s container port of %s: its pods get no port %q in the EndpointSlice (the Service rejects that port's traffic)", portLabel(sp), sp.TargetPort.StrVal, sp.Protocol, w.String(), sp.Name)})
					}
					break
				}
			}
		}
		slices, sliceOwners, n := sliceService(s, matched, nodes)
		if len(matched) > 0 {
			notes = append(notes, Note{Source: so.Source, Object: svcObj(so), Message: fmt.Sprintf("endpoints derived from %s: %d endpoint(s) in %d EndpointSlice(s)", strings.Join(from, ", "), n, len(slices))})
		}
		if hintsAnnotation(s.Annotations) {
			notes = append(notes, Note{Source: so.Source, Object: svcObj(so), Message: "topology-mode Auto: the controller's hints depend on node CPU capacity and are not derived (no hints)"})
		}
		for i, sl := range slices {
			o := &EndpointSliceObject{EndpointSlice: sl, Source: so.Source}
			d.slices = append(d.slices, o)
			for _, w := range ownerOrder {
				if n := sliceOwners[i][w]; n > 0 {
					d.from[o] = append(d.from[o], ownerLabel(w, n))
				}
			}
			d.endpoints += len(sl.Endpoints)
		}
	}
	return d, notes, nil
}

// ownerLabel is "Deployment ns/web (3 pods)", or "Pod ns/name".
func ownerLabel(w *WorkloadObject, pods int) string {
	if w.Kind == KindPod {
		return w.String()
	}
	return fmt.Sprintf("%s (%d pod%s)", w.String(), pods, plural(pods))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func portLabel(sp *v1.ServicePort) string {
	if sp.Name != "" {
		return fmt.Sprintf("%q (%d/%s)", sp.Name, sp.Port, sp.Protocol)
	}
	return fmt.Sprintf("%d/%s", sp.Port, sp.Protocol)
}

func hintsAnnotation(a map[string]string) bool {
	v, ok := a[annotationTopologyAwareHints]
	if !ok {
		v, ok = a[annotationTopologyMode]
	}
	return ok && (v == "Auto" || v == "auto")
}

func sortedWorkloads(ws []*WorkloadObject) []*WorkloadObject {
	out := append([]*WorkloadObject(nil), ws...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Namespace() != b.Namespace() {
			return a.Namespace() < b.Namespace()
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Name() < b.Name()
	})
	return out
}

// sliceService is the controller's reconcile for one Service from scratch:
// per address type of the Service, endpoints grouped by their port set, at
// most 100 per slice, a placeholder slice when there are none; hints for
// trafficDistribution. It returns the slices, the workloads whose pods each
// slice holds (with their pod counts) and the number of endpoints.
func sliceService(s *v1.Service, pods []*podInstance, nodes []*clusterNode) ([]*discovery.EndpointSlice, []map[*WorkloadObject]int, int) {
	var addrTypes []discovery.AddressType
	for _, f := range s.Spec.IPFamilies {
		at := discovery.AddressTypeIPv4
		if f == v1.IPv6Protocol {
			at = discovery.AddressTypeIPv6
		}
		if !containsAddrType(addrTypes, at) {
			addrTypes = append(addrTypes, at)
		}
	}
	if len(addrTypes) == 0 {
		if s.Spec.ClusterIP != "" && s.Spec.ClusterIP != v1.ClusterIPNone {
			at := discovery.AddressTypeIPv4
			if netutils.IsIPv6String(s.Spec.ClusterIP) {
				at = discovery.AddressTypeIPv6
			}
			addrTypes = []discovery.AddressType{at}
		} else {
			addrTypes = []discovery.AddressType{discovery.AddressTypeIPv4, discovery.AddressTypeIPv6}
		}
	}
	sort.Slice(addrTypes, func(i, j int) bool { return addrTypes[i] < addrTypes[j] })
	headless := s.Spec.ClusterIP == v1.ClusterIPNone || s.Spec.ClusterIP == ""
	td := ""
	if s.Spec.TrafficDistribution != nil {
		td = *s.Spec.TrafficDistribution
	}
	useTD := (td == v1.ServiceTrafficDistributionPreferClose || td == v1.ServiceTrafficDistributionPreferSameZone || td == trafficDistributionPreferNode) && !hintsAnnotation(s.Annotations)

	var out []*discovery.EndpointSlice
	var owners []map[*WorkloadObject]int
	total := 0
	for _, at := range addrTypes {
		fam := v1.IPv4Protocol
		if at == discovery.AddressTypeIPv6 {
			fam = v1.IPv6Protocol
		}
		type group struct {
			key   string
			ports []discovery.EndpointPort
			eps   []discovery.Endpoint
			names []string
			pods  []*podInstance
		}
		groups := map[string]*group{}
		var keys []string
		for _, p := range pods {
			// ShouldPodBeInEndpoints: pods without an address are left out;
			// a pod on an unknown node only with publishNotReadyAddresses.
			if len(p.ips) == 0 || (p.node == nil && !s.Spec.PublishNotReadyAddresses) {
				continue
			}
			ports := []discovery.EndpointPort{}
			if !(len(s.Spec.Ports) == 0 && s.Spec.ClusterIP == v1.ClusterIPNone) {
				for i := range s.Spec.Ports {
					sp := &s.Spec.Ports[i]
					num, ok := findPort(p.spec, sp)
					if !ok {
						continue
					}
					name, proto := sp.Name, sp.Protocol
					ports = append(ports, discovery.EndpointPort{Name: &name, Port: &num, Protocol: &proto, AppProtocol: sp.AppProtocol})
				}
			}
			key := portSetKey(ports)
			g := groups[key]
			if g == nil {
				g = &group{key: key, ports: ports}
				groups[key] = g
				keys = append(keys, key)
			}
			ip := p.ips[fam]
			if ip == "" {
				continue
			}
			serving := p.ready
			terminating := p.terminating
			ready := s.Spec.PublishNotReadyAddresses || (serving && !terminating)
			ep := discovery.Endpoint{
				Addresses:  []string{ip},
				Conditions: discovery.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
				TargetRef:  &v1.ObjectReference{Kind: "Pod", Namespace: p.namespace, Name: p.name},
			}
			if p.nodeName != "" {
				nn := p.nodeName
				ep.NodeName = &nn
			}
			if p.node != nil && p.node.zone != "" {
				z := p.node.zone
				ep.Zone = &z
			}
			if p.hostname != "" && p.subdomain == s.Name {
				h := p.hostname
				ep.Hostname = &h
			}
			if useTD && ready {
				var hints discovery.EndpointHints
				if ep.Zone != nil {
					hints.ForZones = []discovery.ForZone{{Name: *ep.Zone}}
				}
				if ep.NodeName != nil && td == trafficDistributionPreferNode {
					hints.ForNodes = []discovery.ForNode{{Name: *ep.NodeName}}
				}
				if hints.ForZones != nil || hints.ForNodes != nil {
					ep.Hints = &hints
				}
			}
			g.eps = append(g.eps, ep)
			g.names = append(g.names, p.name)
			g.pods = append(g.pods, p)
		}
		sort.Strings(keys)
		made := 0
		for _, k := range keys {
			g := groups[k]
			if len(g.eps) == 0 {
				continue
			}
			idx := make([]int, len(g.eps))
			for i := range idx {
				idx[i] = i
			}
			sort.SliceStable(idx, func(a, b int) bool { return g.names[idx[a]] < g.names[idx[b]] })
			for chunk := 0; chunk*maxEndpointsPerSlice < len(idx); chunk++ {
				end := (chunk + 1) * maxEndpointsPerSlice
				if end > len(idx) {
					end = len(idx)
				}
				sl := newDerivedSlice(s, at, g.ports, fmt.Sprintf("%s|%d", k, chunk), headless)
				own := map[*WorkloadObject]int{}
				for _, i := range idx[chunk*maxEndpointsPerSlice : end] {
					sl.Endpoints = append(sl.Endpoints, g.eps[i])
					own[g.pods[i].owner]++
				}
				total += len(sl.Endpoints)
				out = append(out, sl)
				owners = append(owners, own)
				made++
			}
		}
		if made == 0 {
			out = append(out, newDerivedSlice(s, at, []discovery.EndpointPort{}, "placeholder", headless))
			owners = append(owners, nil)
		}
	}
	return out, owners, total
}

func containsAddrType(l []discovery.AddressType, at discovery.AddressType) bool {
	for _, x := range l {
		if x == at {
			return true
		}
	}
	return false
}

// portSetKey identifies a set of endpoint ports (the controller's PortMapKey).
func portSetKey(ports []discovery.EndpointPort) string {
	var parts []string
	for _, p := range ports {
		ap := ""
		if p.AppProtocol != nil {
			ap = *p.AppProtocol
		}
		parts = append(parts, fmt.Sprintf("%s/%d/%s/%s", *p.Name, *p.Port, *p.Protocol, ap))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// newDerivedSlice is newEndpointSlice with a deterministic name: the
// Service's labels except the reserved ones, the service-name and managed-by
// labels, and the headless label for a Service without a ClusterIP.
func newDerivedSlice(s *v1.Service, at discovery.AddressType, ports []discovery.EndpointPort, key string, headless bool) *discovery.EndpointSlice {
	l := map[string]string{}
	for k, v := range s.Labels {
		if k == discovery.LabelServiceName || k == discovery.LabelManagedBy || k == labelHeadless {
			continue
		}
		l[k] = v
	}
	if headless {
		l[labelHeadless] = ""
	}
	l[discovery.LabelServiceName] = s.Name
	l[discovery.LabelManagedBy] = endpointSliceControllerName
	prefix := s.Name + "-"
	if len(validation.IsDNS1123Subdomain(prefix+"x")) != 0 {
		prefix = s.Name
	}
	return &discovery.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      prefix + nameSuffix(5, s.Namespace, s.Name, string(at), key),
			Namespace: s.Namespace,
			Labels:    l,
		},
		AddressType: at,
		Ports:       ports,
		Endpoints:   []discovery.Endpoint{},
	}
}
