package compiler

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
	"net"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	netutils "k8s.io/utils/net"
)

// Allocation: what the API server fills in when a Service is created
// (pkg/registry/core/service/storage/alloc.go), done offline and
// deterministically instead of randomly:
//
//   - ipFamilyPolicy / ipFamilies as initIPFamilyFields infers them;
//   - one ClusterIP per family from the service CIDRs (the first CIDR of a
//     family; a full one spills into the next);
//   - a nodePort for every port of a NodePort Service and of a LoadBalancer
//     with allocateLoadBalancerNodePorts (ports sharing a port number share the
//     node port, as initNodePorts does), and a healthCheckNodePort for a
//     LoadBalancer with externalTrafficPolicy Local.
//
// Every value is a function of the object's identity: the candidate for
// "namespace/name" (and the port number, the family) is a hash, so adding or
// removing another Service does not move it, except when two identities hash
// to the same value. Collisions are resolved in a fixed order: values written
// in the manifests are reserved first (a value claimed twice is an error),
// then Services are served in (namespace, name) order, each taking its first
// free candidate. Like the API server, dynamic values come from the upper part
// of a range first (the lower band, min(max(16, size/16), 256) addresses or
// min(max(16, size/32), 128) ports, is left to static, written values).

// Default ranges, those of a kubeadm cluster.
const (
	DefaultServiceCIDRv4      = "10.96.0.0/12"
	DefaultServiceCIDRv6      = "fd00:10:96::/112"
	DefaultNodePortRange      = "30000-32767"
	defaultKubernetesSvcName  = "kubernetes"
	maxStaticIPBand, minBand  = 256, 16
	maxStaticPortBand, ipStep = 128, 16
	portStep                  = 32
)

// stableHash is a 64-bit hash of the parts (SHA-256, so it does not depend on
// Go's map or hash seeds).
func stableHash(parts ...string) uint64 {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return binary.BigEndian.Uint64(h.Sum(nil)[:8])
}

// space is a range of offsets [lo, hi) with a static lower band [lo, band).
// Offsets are taken from a hash of a key: the upper band first, then the
// whole range, in a fixed probe order.
type space struct {
	lo, hi, band uint64
	used         map[uint64]string
}

func newSpace(lo, hi, band uint64) *space {
	if band < lo {
		band = lo
	}
	if band > hi {
		band = hi
	}
	return &space{lo: lo, hi: hi, band: band, used: map[uint64]string{}}
}

// take allocates an offset for key (owner is recorded for error messages).
func (s *space) take(key, owner string) (uint64, bool) {
	if s.hi <= s.lo {
		return 0, false
	}
	try := func(lo, hi uint64) (uint64, bool) {
		n := hi - lo
		if n == 0 {
			return 0, false
		}
		for i := 0; i < 8; i++ {
			c := lo + stableHash(key, strconv.Itoa(i))%n
			if _, used := s.used[c]; !used {
				s.used[c] = owner
				return c, true
			}
		}
		// Dense: scan from the first candidate, wrapping around.
		start := lo + stableHash(key, "0")%n
		for i := uint64(0); i < n; i++ {
			c := lo + (start-lo+i)%n
			if _, used := s.used[c]; !used {
				s.used[c] = owner
				return c, true
			}
		}
		return 0, false
	}
	if off, ok := try(s.band, s.hi); ok {
		return off, true
	}
	return try(s.lo, s.band)
}

// bandSize is the API server's calculateRangeOffset: min(max(minBand,
// size/step), max), 0 for ranges of at most minBand.
func bandSize(size uint64, step, max uint64) uint64 {
	if size <= minBand {
		return 0
	}
	o := size / step
	if o < minBand {
		return minBand
	}
	if o > max {
		return max
	}
	return o
}

// ipSpace is a CIDR as a space of offsets from its network address.
type ipSpace struct {
	cidr   *net.IPNet
	family v1.IPFamily
	base   *big.Int
	*space
}

// maxSpaceSize caps the offsets used in huge IPv6 ranges (plenty: 2^62).
const maxSpaceSize = uint64(1) << 62

// newIPSpace makes the usable addresses of a CIDR a space: the network
// address is never used, nor is the IPv4 broadcast address. staticBand
// applies the API server's static band; reserveFirst also keeps the first
// address (a service CIDR's first address belongs to the "kubernetes" Service).
func newIPSpace(cidr *net.IPNet, staticBand, reserveFirst bool) *ipSpace {
	ones, bits := cidr.Mask.Size()
	hostBits := bits - ones
	var size uint64
	if hostBits >= 62 {
		size = maxSpaceSize
	} else {
		size = uint64(1) << hostBits
	}
	fam := v1.IPv4Protocol
	if bits == 128 {
		fam = v1.IPv6Protocol
	}
	lo, hi := uint64(1), size
	if fam == v1.IPv4Protocol && size > 2 {
		hi = size - 1
	}
	if size <= 2 {
		lo, hi = 0, size // /31, /32, /127, /128: every address
	}
	var band uint64
	if staticBand {
		band = lo + bandSize(size, ipStep, maxStaticIPBand)
	}
	s := &ipSpace{cidr: cidr, family: fam, base: new(big.Int).SetBytes(normIP(cidr.IP, fam)), space: newSpace(lo, hi, band)}
	if reserveFirst && hi > lo+1 {
		s.used[lo] = "the " + defaultKubernetesSvcName + " Service"
	}
	return s
}

func normIP(ip net.IP, fam v1.IPFamily) net.IP {
	if fam == v1.IPv4Protocol {
		return ip.To4()
	}
	return ip.To16()
}

func (s *ipSpace) ip(off uint64) net.IP {
	n := new(big.Int).Add(s.base, new(big.Int).SetUint64(off))
	b := n.Bytes()
	l := 4
	if s.family == v1.IPv6Protocol {
		l = 16
	}
	out := make(net.IP, l)
	copy(out[l-len(b):], b)
	return out
}

// offset of ip in the space, if inside it.
func (s *ipSpace) offset(ip net.IP) (uint64, bool) {
	if !s.cidr.Contains(ip) {
		return 0, false
	}
	d := new(big.Int).Sub(new(big.Int).SetBytes(normIP(ip, s.family)), s.base)
	if !d.IsUint64() || d.Uint64() >= s.hi {
		return 0, false
	}
	return d.Uint64(), true
}

// ipPool allocates addresses of one family from CIDRs in order.
type ipPool struct {
	family v1.IPFamily
	spaces []*ipSpace
	taken  map[string]string // canonical IP -> owner
}

func newIPPool(fam v1.IPFamily, cidrs []*net.IPNet, staticBand, reserveFirst bool) *ipPool {
	p := &ipPool{family: fam, taken: map[string]string{}}
	for i, c := range cidrs {
		p.spaces = append(p.spaces, newIPSpace(c, staticBand, reserveFirst && i == 0))
	}
	return p
}

// reserve marks a written address as used; it returns the previous owner if
// the address was already reserved.
func (p *ipPool) reserve(ip net.IP, owner string) (string, bool) {
	key := ip.String()
	if prev, ok := p.taken[key]; ok {
		return prev, false
	}
	p.taken[key] = owner
	for _, s := range p.spaces {
		if off, ok := s.offset(ip); ok {
			s.used[off] = owner
		}
	}
	return "", true
}

// take allocates an address for key.
func (p *ipPool) take(key, owner string) (net.IP, bool) {
	for _, s := range p.spaces {
		if off, ok := s.take(key, owner); ok {
			ip := s.ip(off)
			p.taken[ip.String()] = owner
			return ip, true
		}
	}
	return nil, false
}

// PortRange is a --service-node-port-range.
type PortRange struct{ Base, Size int }

// ParsePortRange reads "30000-32767" or "30000+2767" (kube-apiserver's forms).
func ParsePortRange(s string) (PortRange, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		s = DefaultNodePortRange
	}
	bad := fmt.Errorf("invalid port range %q: want LOW-HIGH or BASE+OFFSET within 1-65535", s)
	var a, b int
	var err1, err2 error
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		a, err1 = strconv.Atoi(lo)
		b, err2 = strconv.Atoi(hi)
	} else if base, off, ok := strings.Cut(s, "+"); ok {
		a, err1 = strconv.Atoi(base)
		var o int
		o, err2 = strconv.Atoi(off)
		b = a + o
	} else {
		return PortRange{}, bad
	}
	if err1 != nil || err2 != nil || a < 1 || b > 65535 || b < a {
		return PortRange{}, bad
	}
	return PortRange{Base: a, Size: b - a + 1}, nil
}

func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.Base, r.Base+r.Size-1) }

// Contains reports whether the port is in the range.
func (r PortRange) Contains(p int32) bool {
	return int(p) >= r.Base && int(p) < r.Base+r.Size
}

// allocation is what allocate assumed, per Service and in total.
type allocation struct {
	// assumed[service] lists the fields svc2rules filled in.
	assumed    map[*ServiceObject][]string
	clusterIPs int
	nodePorts  int
	hcnps      int
}

// clusterServiceCIDRs returns the CIDRs allocation uses per family, and the
// cluster's primary family: --service-cidrs together with the ServiceCIDR
// objects of the input (a cluster allocates from all its ServiceCIDRs; the
// --service-cluster-ip-range one is just the first), else the kubeadm
// defaults (both families).
func clusterServiceCIDRs(flag []string, objs []*ServiceCIDRObject) (map[v1.IPFamily][]*net.IPNet, v1.IPFamily, error) {
	raw := append([]string(nil), flag...)
	for _, o := range objs {
		raw = append(raw, o.CIDRs...)
	}
	if len(raw) == 0 {
		raw = []string{DefaultServiceCIDRv4, DefaultServiceCIDRv6}
	}
	out := map[v1.IPFamily][]*net.IPNet{}
	var primary v1.IPFamily
	seen := map[string]bool{}
	for _, c := range raw {
		_, n, err := netutils.ParseCIDRSloppy(strings.TrimSpace(c))
		if err != nil {
			return nil, "", fmt.Errorf("invalid service CIDR %q", c)
		}
		if seen[n.String()] {
			continue
		}
		seen[n.String()] = true
		fam := v1.IPv4Protocol
		if netutils.IsIPv6CIDR(n) {
			fam = v1.IPv6Protocol
		}
		if primary == "" {
			primary = fam
		}
		out[fam] = append(out[fam], n)
	}
	return out, primary, nil
}

func familyOfIP(s string) v1.IPFamily {
	if netutils.IsIPv6String(s) {
		return v1.IPv6Protocol
	}
	return v1.IPv4Protocol
}

func otherFamily(f v1.IPFamily) v1.IPFamily {
	if f == v1.IPv4Protocol {
		return v1.IPv6Protocol
	}
	return v1.IPv4Protocol
}

func svcObj(s *ServiceObject) string { return "Service " + s.Namespace + "/" + s.Name }

// sortedServices returns the Services in (namespace, name) order.
func sortedServices(svcs []*ServiceObject) []*ServiceObject {
	out := append([]*ServiceObject(nil), svcs...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// allocate fills in what the API server would for every Service (all of
// them, including those kube-proxy will ignore: they hold addresses too).
// Services must be defaulted and validated.
func allocate(svcs []*ServiceObject, cidrObjs []*ServiceCIDRObject, opts MaterializeOptions) (*allocation, []Note, error) {
	cidrs, primary, err := clusterServiceCIDRs(opts.ServiceCIDRs, cidrObjs)
	if err != nil {
		return nil, nil, err
	}
	pr, err := ParsePortRange(opts.NodePortRange)
	if err != nil {
		return nil, nil, err
	}
	al := &allocation{assumed: map[*ServiceObject][]string{}}
	assume := func(s *ServiceObject, what string) { al.assumed[s] = append(al.assumed[s], what) }
	dualStack := len(cidrs[v1.IPv4Protocol]) > 0 && len(cidrs[v1.IPv6Protocol]) > 0
	pools := map[v1.IPFamily]*ipPool{}
	for fam, list := range cidrs {
		pools[fam] = newIPPool(fam, list, true, true)
	}
	ordered := sortedServices(svcs)
	inputErr := func(s *ServiceObject, format string, args ...any) error {
		return &InputError{Source: s.Source, Object: svcObj(s), Err: fmt.Errorf(format, args...)}
	}

	// 1. API defaulting that matters here, and the families of every Service.
	for _, s := range ordered {
		spec := &s.Spec
		if spec.Type == v1.ServiceTypeExternalName {
			continue
		}
		for i := range spec.Ports {
			p := &spec.Ports[i]
			if p.TargetPort == intstr.FromInt32(0) || p.TargetPort == intstr.FromString("") {
				p.TargetPort = intstr.FromInt32(p.Port)
			}
		}
		if spec.Type == v1.ServiceTypeLoadBalancer && spec.AllocateLoadBalancerNodePorts == nil {
			t := true
			spec.AllocateLoadBalancerNodePorts = &t
		}
		if spec.ClusterIP == "" && len(spec.ClusterIPs) > 0 {
			spec.ClusterIP = spec.ClusterIPs[0]
		}
		headless := spec.ClusterIP == v1.ClusterIPNone
		if headless && len(spec.ClusterIPs) == 0 {
			spec.ClusterIPs = []string{v1.ClusterIPNone}
		}
		if spec.IPFamilyPolicy == nil {
			p := v1.IPFamilyPolicySingleStack
			if headless && len(spec.Selector) == 0 {
				p = v1.IPFamilyPolicyRequireDualStack
			} else if len(spec.IPFamilies) == 2 || (len(spec.ClusterIPs) == 2 && !headless) {
				// Written with two families or addresses: dual-stack was meant
				// (the API server would reject SingleStack here).
				p = v1.IPFamilyPolicyRequireDualStack
			}
			spec.IPFamilyPolicy = &p
		}
		policy := *spec.IPFamilyPolicy
		switch policy {
		case v1.IPFamilyPolicySingleStack, v1.IPFamilyPolicyPreferDualStack, v1.IPFamilyPolicyRequireDualStack:
		default:
			return nil, nil, inputErr(s, "spec.ipFamilyPolicy: unsupported value %q: must be SingleStack, PreferDualStack or RequireDualStack", policy)
		}
		if !headless {
			for i, ip := range spec.ClusterIPs {
				if i >= len(spec.IPFamilies) {
					spec.IPFamilies = append(spec.IPFamilies, familyOfIP(ip))
				}
			}
		}
		complete := !headless && len(spec.ClusterIPs) > 0 &&
			(len(spec.ClusterIPs) == 2 || policy == v1.IPFamilyPolicySingleStack || (policy == v1.IPFamilyPolicyPreferDualStack && !dualStack))
		if complete {
			continue // nothing to allocate: written values are taken as they are
		}
		if policy == v1.IPFamilyPolicySingleStack && (len(spec.IPFamilies) == 2 || len(spec.ClusterIPs) == 2) {
			return nil, nil, inputErr(s, "spec.ipFamilyPolicy: must be RequireDualStack or PreferDualStack when two IP families or cluster IPs are given")
		}
		if headless && len(spec.Selector) == 0 {
			if len(spec.IPFamilies) == 0 {
				spec.IPFamilies = []v1.IPFamily{primary}
			}
			if len(spec.IPFamilies) < 2 && policy != v1.IPFamilyPolicySingleStack {
				spec.IPFamilies = append(spec.IPFamilies, otherFamily(spec.IPFamilies[0]))
			}
			continue
		}
		if policy == v1.IPFamilyPolicyRequireDualStack && !dualStack {
			return nil, nil, inputErr(s, "spec.ipFamilyPolicy: RequireDualStack, but the cluster's service CIDRs (%s) are single-stack", cidrList(cidrs))
		}
		for i, f := range spec.IPFamilies {
			if len(cidrs[f]) == 0 {
				return nil, nil, inputErr(s, "spec.ipFamilies[%d]: %s is not configured on this cluster (service CIDRs %s)", i, f, cidrList(cidrs))
			}
		}
		if len(spec.IPFamilies) == 0 {
			spec.IPFamilies = []v1.IPFamily{primary}
		}
		if policy != v1.IPFamilyPolicySingleStack && len(spec.IPFamilies) == 1 && dualStack {
			spec.IPFamilies = append(spec.IPFamilies, otherFamily(spec.IPFamilies[0]))
		}
	}

	// 2. Reserve every written ClusterIP; the same address twice is an error.
	for _, s := range ordered {
		if s.Spec.Type == v1.ServiceTypeExternalName {
			continue
		}
		for _, raw := range s.Spec.ClusterIPs {
			if raw == v1.ClusterIPNone || raw == "" {
				continue
			}
			ip := netutils.ParseIPSloppy(raw)
			fam := familyOfIP(raw)
			p := pools[fam]
			if p == nil {
				p = newIPPool(fam, nil, true, true)
				pools[fam] = p
			}
			if prev, ok := p.reserve(ip, svcObj(s)); !ok {
				return nil, nil, inputErr(s, "spec.clusterIPs: %s is already the ClusterIP of %s", ip, prev)
			}
		}
	}

	// 3. Reserve every written nodePort and healthCheckNodePort. One node port
	// belongs to one Service; inside it, only to ports with the same port
	// number (initNodePorts gives them the same one).
	type npOwner struct {
		svc  *ServiceObject
		port int32 // the service port number; -1: health check node port
	}
	nodePorts := map[int32]npOwner{}
	describe := func(o npOwner, np int32) string {
		if o.port < 0 {
			return fmt.Sprintf("the healthCheckNodePort of %s", svcObj(o.svc))
		}
		return fmt.Sprintf("node port %d of %s (port %d)", np, svcObj(o.svc), o.port)
	}
	reservePort := func(s *ServiceObject, path string, np, port int32) error {
		if prev, ok := nodePorts[np]; ok {
			if prev.svc == s && prev.port == port && port >= 0 {
				return nil
			}
			return inputErr(s, "%s: %d is already %s", path, np, describe(prev, np))
		}
		nodePorts[np] = npOwner{s, port}
		return nil
	}
	for _, s := range ordered {
		if s.Spec.Type == v1.ServiceTypeExternalName {
			continue
		}
		for i, p := range s.Spec.Ports {
			if p.NodePort != 0 {
				if err := reservePort(s, fmt.Sprintf("spec.ports[%d].nodePort", i), p.NodePort, p.Port); err != nil {
					return nil, nil, err
				}
			}
		}
		if s.Spec.HealthCheckNodePort != 0 {
			if err := reservePort(s, "spec.healthCheckNodePort", s.Spec.HealthCheckNodePort, -1); err != nil {
				return nil, nil, err
			}
		}
	}
	npSpace := newSpace(0, uint64(pr.Size), bandSize(uint64(pr.Size), portStep, maxStaticPortBand))
	for np := range nodePorts {
		if pr.Contains(np) {
			npSpace.used[uint64(int(np)-pr.Base)] = "written"
		}
	}
	takePort := func(key, owner string) (int32, bool) {
		off, ok := npSpace.take(key, owner)
		return int32(pr.Base + int(off)), ok
	}

	// 4. Allocate, Service by Service in (namespace, name) order.
	var notes []Note
	for _, s := range ordered {
		spec := &s.Spec
		if spec.Type == v1.ServiceTypeExternalName {
			continue
		}
		id := s.Namespace + "/" + s.Name
		var got []string
		if spec.ClusterIP != v1.ClusterIPNone {
			for i, fam := range spec.IPFamilies {
				if i < len(spec.ClusterIPs) && spec.ClusterIPs[i] != "" {
					continue
				}
				var ip net.IP
				ok := false
				if s.Namespace == "default" && s.Name == defaultKubernetesSvcName && len(pools[fam].spaces) > 0 {
					sp := pools[fam].spaces[0]
					ip, ok = sp.ip(sp.lo), true
					pools[fam].taken[ip.String()] = svcObj(s)
				} else {
					ip, ok = pools[fam].take(id+"/"+string(fam), svcObj(s))
				}
				if !ok {
					return nil, nil, inputErr(s, "no free %s ClusterIP left in %s", fam, cidrList(map[v1.IPFamily][]*net.IPNet{fam: cidrs[fam]}))
				}
				for len(spec.ClusterIPs) <= i {
					spec.ClusterIPs = append(spec.ClusterIPs, "")
				}
				spec.ClusterIPs[i] = ip.String()
				if i == 0 {
					spec.ClusterIP = ip.String()
				}
				al.clusterIPs++
				assume(s, fmt.Sprintf("clusterIPs[%d]", i))
				got = append(got, fmt.Sprintf("clusterIP %s (%s)", ip, fam))
			}
		}
		allocNodePorts := spec.Type == v1.ServiceTypeNodePort ||
			(spec.Type == v1.ServiceTypeLoadBalancer && (spec.AllocateLoadBalancerNodePorts == nil || *spec.AllocateLoadBalancerNodePorts))
		if allocNodePorts && spec.ClusterIP != v1.ClusterIPNone {
			byPort := map[int32]int32{}
			for _, p := range spec.Ports {
				if p.NodePort != 0 {
					if _, ok := byPort[p.Port]; !ok {
						byPort[p.Port] = p.NodePort
					}
				}
			}
			for i := range spec.Ports {
				p := &spec.Ports[i]
				if p.NodePort != 0 {
					continue
				}
				np, ok := byPort[p.Port]
				if !ok {
					np, ok = takePort(fmt.Sprintf("%s/%d", id, p.Port), svcObj(s))
					if !ok {
						return nil, nil, inputErr(s, "no free node port left in %s", pr)
					}
					byPort[p.Port] = np
					al.nodePorts++
				}
				p.NodePort = np
				assume(s, fmt.Sprintf("ports[%d].nodePort", i))
				got = append(got, fmt.Sprintf("nodePort %d (port %d/%s)", np, p.Port, p.Protocol))
			}
		}
		if spec.Type == v1.ServiceTypeLoadBalancer && spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal && spec.HealthCheckNodePort == 0 {
			np, ok := takePort(id+"/healthCheckNodePort", svcObj(s))
			if !ok {
				return nil, nil, inputErr(s, "no free node port left in %s for the healthCheckNodePort", pr)
			}
			spec.HealthCheckNodePort = np
			al.hcnps++
			assume(s, "healthCheckNodePort")
			got = append(got, fmt.Sprintf("healthCheckNodePort %d", np))
		}
		if len(got) > 0 {
			notes = append(notes, Note{Source: s.Source, Object: svcObj(s), Message: "allocated " + strings.Join(got, ", ")})
		}
	}
	return al, notes, nil
}

func cidrList(m map[v1.IPFamily][]*net.IPNet) string {
	var out []string
	for _, f := range []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol} {
		for _, n := range m[f] {
			out = append(out, n.String())
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ",")
}
