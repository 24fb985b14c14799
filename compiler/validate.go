package compiler

import (
	"errors"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	netutils "k8s.io/utils/net"
)

// Validation follows the API server's rules for every field that reaches a
// rule, because in GitOps the manifests were never seen by an API server and
// the generated script runs as root. Two deliberate leniencies, both because
// kube-proxy itself accepts such objects from clusters that stored them
// before validation tightened: IPs and CIDRs with leading zeros
// ("010.0.0.1", parsed as decimal like kube-proxy's ParseIPSloppy) and
// loadBalancerSourceRanges padded with whitespace.

// fieldErrors collects the errors of one object.
type fieldErrors []string

func (fe *fieldErrors) add(path, format string, args ...any) {
	*fe = append(*fe, path+": "+fmt.Sprintf(format, args...))
}

func (fe fieldErrors) err() error {
	if len(fe) == 0 {
		return nil
	}
	if len(fe) > 5 {
		more := len(fe) - 5
		fe = append(fe[:5:5], fmt.Sprintf("and %d more", more))
	}
	return errors.New(strings.Join(fe, "; "))
}

func validateInputs(in *Inputs) error {
	for _, s := range in.Services {
		if err := validateService(s.Service); err != nil {
			return &InputError{Source: s.Source, Object: "Service " + s.Namespace + "/" + s.Name, Err: err}
		}
	}
	for _, e := range in.Endpoints {
		if err := validateEndpoints(e.Endpoints); err != nil {
			return &InputError{Source: e.Source, Object: "Endpoints " + e.Namespace + "/" + e.Name, Err: err}
		}
	}
	for _, e := range in.EndpointSlices {
		if err := validateEndpointSlice(e.EndpointSlice); err != nil {
			return &InputError{Source: e.Source, Object: "EndpointSlice " + e.Namespace + "/" + e.Name, Err: err}
		}
	}
	for _, n := range in.Nodes {
		if err := nodeFieldErrors(n).err(); err != nil {
			return &InputError{Source: n.Source, Object: "Node " + n.Name, Err: err}
		}
	}
	for _, c := range in.ServiceCIDRs {
		if err := serviceCIDRFieldErrors(c).err(); err != nil {
			return &InputError{Source: c.Source, Object: "ServiceCIDR " + c.Name, Err: err}
		}
	}
	var budget endpointBudget
	for _, e := range in.Endpoints {
		if err := budget.addEndpoints(e); err != nil {
			return err
		}
	}
	for _, e := range in.EndpointSlices {
		if err := budget.addSlice(e); err != nil {
			return err
		}
	}
	return nil
}

func nodeFieldErrors(n *NodeObject) fieldErrors {
	var fe fieldErrors
	checkDNSSubdomain(&fe, "metadata.name", n.Name)
	return fe
}

func serviceCIDRFieldErrors(c *ServiceCIDRObject) fieldErrors {
	var fe fieldErrors
	for i, cidr := range c.CIDRs {
		if _, _, err := netutils.ParseCIDRSloppy(cidr); err != nil {
			fe.add(fmt.Sprintf("spec.cidrs[%d]", i), "invalid CIDR %q", cidr)
		}
	}
	return fe
}

func checkDNSLabel(fe *fieldErrors, path, v string) {
	for _, msg := range validation.IsDNS1123Label(v) {
		fe.add(path, "invalid value %q: %s", v, msg)
	}
}

func checkDNSSubdomain(fe *fieldErrors, path, v string) {
	for _, msg := range validation.IsDNS1123Subdomain(v) {
		fe.add(path, "invalid value %q: %s", v, msg)
	}
}

func checkProtocol(fe *fieldErrors, path string, p v1.Protocol) {
	switch p {
	case v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP:
	default:
		fe.add(path, "unsupported value %q: must be TCP, UDP or SCTP", p)
	}
}

func checkPort(fe *fieldErrors, path string, p int32) {
	if p < 1 || p > 65535 {
		fe.add(path, "invalid value %d: must be between 1 and 65535", p)
	}
}

// parseIP parses like kube-proxy (leading zeros allowed) and rejects anything else.
func parseIP(fe *fieldErrors, path, s string) (isV6, ok bool) {
	ip := netutils.ParseIPSloppy(s)
	if ip == nil || strings.TrimSpace(s) != s {
		fe.add(path, "invalid IP address %q", s)
		return false, false
	}
	return ip.To4() == nil, true
}

func validateService(s *v1.Service) error { return serviceFieldErrors(s).err() }

// serviceFieldErrors lists every validation error of the object.
func serviceFieldErrors(s *v1.Service) fieldErrors {
	var fe fieldErrors
	for _, msg := range validation.IsDNS1035Label(s.Name) {
		fe.add("metadata.name", "invalid value %q: %s", s.Name, msg)
	}
	checkDNSLabel(&fe, "metadata.namespace", s.Namespace)
	spec := &s.Spec
	switch spec.Type {
	case v1.ServiceTypeClusterIP, v1.ServiceTypeNodePort, v1.ServiceTypeLoadBalancer, v1.ServiceTypeExternalName:
	default:
		fe.add("spec.type", "unsupported value %q", spec.Type)
	}
	if spec.Type == v1.ServiceTypeExternalName {
		// kube-proxy never proxies ExternalName services; nothing of it reaches a rule.
		return fe
	}
	headless := spec.ClusterIP == v1.ClusterIPNone
	if spec.ClusterIP != "" && !headless {
		parseIP(&fe, "spec.clusterIP", spec.ClusterIP)
	}
	if len(spec.ClusterIPs) > 2 {
		fe.add("spec.clusterIPs", "at most two addresses (one per family)")
	}
	if len(spec.ClusterIPs) > 0 && spec.ClusterIP != "" && spec.ClusterIPs[0] != spec.ClusterIP {
		fe.add("spec.clusterIPs[0]", "must equal spec.clusterIP %q", spec.ClusterIP)
	}
	var fams []bool
	for i, ip := range spec.ClusterIPs {
		if headless || ip == v1.ClusterIPNone {
			if i > 0 || len(spec.ClusterIPs) > 1 {
				fe.add(fmt.Sprintf("spec.clusterIPs[%d]", i), "None must be the only value")
			}
			continue
		}
		if v6, ok := parseIP(&fe, fmt.Sprintf("spec.clusterIPs[%d]", i), ip); ok {
			fams = append(fams, v6)
		}
	}
	if len(fams) == 2 && fams[0] == fams[1] {
		fe.add("spec.clusterIPs", "the two addresses must be of different families")
	}
	if len(spec.IPFamilies) > 2 {
		fe.add("spec.ipFamilies", "at most two families")
	}
	for i, f := range spec.IPFamilies {
		if f != v1.IPv4Protocol && f != v1.IPv6Protocol {
			fe.add(fmt.Sprintf("spec.ipFamilies[%d]", i), "unsupported value %q: must be IPv4 or IPv6", f)
			continue
		}
		if i < len(fams) && fams[i] != (f == v1.IPv6Protocol) {
			fe.add(fmt.Sprintf("spec.clusterIPs[%d]", i), "%q does not match spec.ipFamilies[%d] %s", spec.ClusterIPs[i], i, f)
		}
	}
	if len(spec.IPFamilies) == 2 && spec.IPFamilies[0] == spec.IPFamilies[1] {
		fe.add("spec.ipFamilies", "duplicate family %s", spec.IPFamilies[0])
	}

	if len(spec.Ports) == 0 && !headless {
		fe.add("spec.ports", "required")
	}
	names := map[string]bool{}
	portProto := map[string]bool{}
	for i, p := range spec.Ports {
		path := fmt.Sprintf("spec.ports[%d]", i)
		if p.Name != "" {
			checkDNSLabel(&fe, path+".name", p.Name)
		} else if len(spec.Ports) > 1 {
			fe.add(path+".name", "required when a Service has more than one port")
		}
		if names[p.Name] {
			fe.add(path+".name", "duplicate port name %q", p.Name)
		}
		names[p.Name] = true
		checkProtocol(&fe, path+".protocol", p.Protocol)
		checkPort(&fe, path+".port", p.Port)
		key := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if portProto[key] {
			fe.add(path, "duplicate port %s", key)
		}
		portProto[key] = true
		if p.NodePort != 0 {
			checkPort(&fe, path+".nodePort", p.NodePort)
			if spec.Type == v1.ServiceTypeClusterIP {
				fe.add(path+".nodePort", "may not be used when type is ClusterIP")
			}
		}
	}
	for i, ip := range spec.ExternalIPs {
		parseIP(&fe, fmt.Sprintf("spec.externalIPs[%d]", i), ip)
	}
	for i, r := range spec.LoadBalancerSourceRanges {
		if _, _, err := netutils.ParseCIDRSloppy(strings.TrimSpace(r)); err != nil {
			fe.add(fmt.Sprintf("spec.loadBalancerSourceRanges[%d]", i), "invalid CIDR %q", r)
		}
	}
	if spec.HealthCheckNodePort != 0 {
		checkPort(&fe, "spec.healthCheckNodePort", spec.HealthCheckNodePort)
	}
	switch spec.SessionAffinity {
	case v1.ServiceAffinityNone:
	case v1.ServiceAffinityClientIP:
		t := *spec.SessionAffinityConfig.ClientIP.TimeoutSeconds
		if t <= 0 || t > 86400 {
			fe.add("spec.sessionAffinityConfig.clientIP.timeoutSeconds", "invalid value %d: must be between 1 and 86400", t)
		}
	default:
		fe.add("spec.sessionAffinity", "unsupported value %q: must be None or ClientIP", spec.SessionAffinity)
	}
	switch spec.ExternalTrafficPolicy {
	case "", v1.ServiceExternalTrafficPolicyCluster, v1.ServiceExternalTrafficPolicyLocal:
	default:
		fe.add("spec.externalTrafficPolicy", "unsupported value %q: must be Cluster or Local", spec.ExternalTrafficPolicy)
	}
	if p := spec.InternalTrafficPolicy; p != nil && *p != v1.ServiceInternalTrafficPolicyCluster && *p != v1.ServiceInternalTrafficPolicyLocal {
		fe.add("spec.internalTrafficPolicy", "unsupported value %q: must be Cluster or Local", *p)
	}
	for i, ing := range s.Status.LoadBalancer.Ingress {
		path := fmt.Sprintf("status.loadBalancer.ingress[%d]", i)
		if ing.IP != "" {
			parseIP(&fe, path+".ip", ing.IP)
		}
		if ing.IPMode != nil && *ing.IPMode != v1.LoadBalancerIPModeVIP && *ing.IPMode != v1.LoadBalancerIPModeProxy {
			fe.add(path+".ipMode", "unsupported value %q: must be VIP or Proxy", *ing.IPMode)
		}
	}
	return fe
}

func validateEndpoints(e *v1.Endpoints) error { return endpointsFieldErrors(e).err() }

// endpointsFieldErrors lists every validation error of the object.
func endpointsFieldErrors(e *v1.Endpoints) fieldErrors {
	var fe fieldErrors
	checkDNSSubdomain(&fe, "metadata.name", e.Name)
	checkDNSLabel(&fe, "metadata.namespace", e.Namespace)
	for i, ss := range e.Subsets {
		for j, a := range ss.Addresses {
			parseIP(&fe, fmt.Sprintf("subsets[%d].addresses[%d].ip", i, j), a.IP)
		}
		for j, a := range ss.NotReadyAddresses {
			parseIP(&fe, fmt.Sprintf("subsets[%d].notReadyAddresses[%d].ip", i, j), a.IP)
		}
		for j, p := range ss.Ports {
			path := fmt.Sprintf("subsets[%d].ports[%d]", i, j)
			if p.Name != "" {
				checkDNSLabel(&fe, path+".name", p.Name)
			}
			checkProtocol(&fe, path+".protocol", p.Protocol)
			checkPort(&fe, path+".port", p.Port)
		}
	}
	return fe
}

func validateEndpointSlice(e *discovery.EndpointSlice) error {
	return endpointSliceFieldErrors(e).err()
}

// endpointSliceFieldErrors lists every validation error of the object.
func endpointSliceFieldErrors(e *discovery.EndpointSlice) fieldErrors {
	var fe fieldErrors
	checkDNSSubdomain(&fe, "metadata.name", e.Name)
	checkDNSLabel(&fe, "metadata.namespace", e.Namespace)
	if svc, ok := e.Labels[discovery.LabelServiceName]; ok && svc != "" {
		for _, msg := range validation.IsDNS1035Label(svc) {
			fe.add("metadata.labels["+discovery.LabelServiceName+"]", "invalid value %q: %s", svc, msg)
		}
	}
	switch e.AddressType {
	case discovery.AddressTypeIPv4, discovery.AddressTypeIPv6, discovery.AddressTypeFQDN:
	default:
		fe.add("addressType", "unsupported value %q: must be IPv4, IPv6 or FQDN", e.AddressType)
	}
	for i, p := range e.Ports {
		path := fmt.Sprintf("ports[%d]", i)
		if p.Name != nil && *p.Name != "" {
			checkDNSLabel(&fe, path+".name", *p.Name)
		}
		if p.Protocol != nil {
			checkProtocol(&fe, path+".protocol", *p.Protocol)
		}
		if p.Port != nil {
			checkPort(&fe, path+".port", *p.Port)
		}
	}
	if e.AddressType == discovery.AddressTypeFQDN {
		return fe // kube-proxy ignores FQDN slices
	}
	for i, ep := range e.Endpoints {
		path := fmt.Sprintf("endpoints[%d]", i)
		if len(ep.Addresses) == 0 || len(ep.Addresses) > 100 {
			fe.add(path+".addresses", "must hold between 1 and 100 addresses")
		}
		for j, a := range ep.Addresses {
			if v6, ok := parseIP(&fe, fmt.Sprintf("%s.addresses[%d]", path, j), a); ok && v6 != (e.AddressType == discovery.AddressTypeIPv6) {
				fe.add(fmt.Sprintf("%s.addresses[%d]", path, j), "%q is not an %s address", a, e.AddressType)
			}
		}
		if ep.NodeName != nil && *ep.NodeName != "" {
			checkDNSSubdomain(&fe, path+".nodeName", *ep.NodeName)
		}
	}
	return fe
}
