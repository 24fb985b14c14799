package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"sort"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	corev1defaults "k8s.io/kubernetes/pkg/apis/core/v1"
	discoverydefaults "k8s.io/kubernetes/pkg/apis/discovery/v1"
	netutils "k8s.io/utils/net"
	"sigs.k8s.io/yaml"
)

// The labels kube-proxy v1.25's informers select against
// (cmd/kube-proxy/app/server.go: "!service.kubernetes.io/service-proxy-name,
// !service.kubernetes.io/headless", for Services and Endpoints alike).
const (
	labelServiceProxyName = "service.kubernetes.io/service-proxy-name"
	labelHeadless         = "service.kubernetes.io/headless"
)

// objects are what the v1.25 informers would hand the userspace proxier.
type objects struct {
	services  []*v1.Service
	endpoints []*v1.Endpoints
	notes     []string
}

// load reads a multi-document YAML/JSON stream of Services, Endpoints,
// EndpointSlices and (typed or v1) Lists, applies the v1.25 API defaults and
// the informers' label selector, and gives every Service without an
// Endpoints object one made from its EndpointSlices (see endpointsFromSlices).
func load(data []byte) (*objects, error) {
	var services []*v1.Service
	var endpoints []*v1.Endpoints
	var slices []*discovery.EndpointSlice
	var notes []string
	var add func(obj runtime.Object) error
	add = func(obj runtime.Object) error {
		switch o := obj.(type) {
		case *v1.Service:
			services = append(services, o)
		case *v1.Endpoints:
			endpoints = append(endpoints, o)
		case *discovery.EndpointSlice:
			slices = append(slices, o)
		case *v1.ServiceList:
			for i := range o.Items {
				services = append(services, &o.Items[i])
			}
		case *v1.EndpointsList:
			for i := range o.Items {
				endpoints = append(endpoints, &o.Items[i])
			}
		case *discovery.EndpointSliceList:
			for i := range o.Items {
				slices = append(slices, &o.Items[i])
			}
		case *v1.List:
			for _, item := range o.Items {
				inner, err := decode(item.Raw)
				if err != nil {
					notes = append(notes, "skipped a List item: "+err.Error())
					continue
				}
				if err := add(inner); err != nil {
					return err
				}
			}
		default:
			notes = append(notes, fmt.Sprintf("skipped %T", obj))
		}
		return nil
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(js)) == 0 || string(bytes.TrimSpace(js)) == "null" {
			continue
		}
		obj, err := decode(js)
		if err != nil {
			notes = append(notes, "skipped a document: "+err.Error())
			continue
		}
		if err := add(obj); err != nil {
			return nil, err
		}
	}

	out := &objects{notes: notes}
	for _, s := range services {
		if s.Namespace == "" {
			s.Namespace = "default"
		}
		corev1defaults.SetObjectDefaults_Service(s)
		if hasLabel(s.Labels, labelServiceProxyName) || hasLabel(s.Labels, labelHeadless) {
			continue
		}
		out.services = append(out.services, s)
	}
	haveEndpoints := map[string]bool{}
	for _, e := range endpoints {
		if e.Namespace == "" {
			e.Namespace = "default"
		}
		corev1defaults.SetObjectDefaults_Endpoints(e)
		if hasLabel(e.Labels, labelServiceProxyName) || hasLabel(e.Labels, labelHeadless) {
			continue
		}
		out.endpoints = append(out.endpoints, e)
		haveEndpoints[e.Namespace+"/"+e.Name] = true
	}
	bySvc := map[string][]*discovery.EndpointSlice{}
	for _, s := range slices {
		if s.Namespace == "" {
			s.Namespace = "default"
		}
		discoverydefaults.SetObjectDefaults_EndpointSlice(s)
		if hasLabel(s.Labels, labelServiceProxyName) || hasLabel(s.Labels, labelHeadless) {
			continue
		}
		svc := s.Labels[discovery.LabelServiceName]
		if svc == "" {
			continue
		}
		bySvc[s.Namespace+"/"+svc] = append(bySvc[s.Namespace+"/"+svc], s)
	}
	for _, s := range out.services {
		k := s.Namespace + "/" + s.Name
		if haveEndpoints[k] || len(bySvc[k]) == 0 {
			continue
		}
		out.endpoints = append(out.endpoints, endpointsFromSlices(s, bySvc[k]))
		out.notes = append(out.notes, "Endpoints "+k+" made from its EndpointSlices")
	}
	return out, nil
}

// endpointsFromSlices stands in for the Endpoints object the endpoints
// controller keeps next to the EndpointSlices: the slices of the Service's
// primary family (that of spec.clusterIP), by name; per slice one subset with
// its ports, ready endpoints as addresses (each address once per port name
// over all slices; IPs in kube-proxy's sloppy canonical form), the others
// as notReadyAddresses.
func endpointsFromSlices(svc *v1.Service, slices []*discovery.EndpointSlice) *v1.Endpoints {
	want := discovery.AddressTypeIPv4
	if ip := netutils.ParseIPSloppy(svc.Spec.ClusterIP); ip != nil && ip.To4() == nil {
		want = discovery.AddressTypeIPv6
	}
	sort.SliceStable(slices, func(i, j int) bool { return slices[i].Name < slices[j].Name })
	e := &v1.Endpoints{}
	e.Namespace, e.Name = svc.Namespace, svc.Name
	seen := map[string]bool{}
	for _, s := range slices {
		if s.AddressType != want {
			continue
		}
		for _, p := range s.Ports {
			if p.Port == nil {
				continue
			}
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			proto := v1.ProtocolTCP
			if p.Protocol != nil {
				proto = *p.Protocol
			}
			ss := v1.EndpointSubset{Ports: []v1.EndpointPort{{Name: name, Port: *p.Port, Protocol: proto}}}
			for _, ep := range s.Endpoints {
				if len(ep.Addresses) == 0 {
					continue
				}
				ip := ep.Addresses[0]
				if parsed := netutils.ParseIPSloppy(ip); parsed != nil {
					ip = parsed.String()
				}
				if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
					k := fmt.Sprintf("%s|%s|%d", name, ip, *p.Port)
					if seen[k] {
						continue
					}
					seen[k] = true
					ss.Addresses = append(ss.Addresses, v1.EndpointAddress{IP: ip})
				} else {
					ss.NotReadyAddresses = append(ss.NotReadyAddresses, v1.EndpointAddress{IP: ip})
				}
			}
			e.Subsets = append(e.Subsets, ss)
		}
	}
	return e
}

func decode(data []byte) (runtime.Object, error) {
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(data, nil, nil)
	return obj, err
}

func hasLabel(labels map[string]string, k string) bool {
	_, ok := labels[k]
	return ok
}
