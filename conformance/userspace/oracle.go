package main

import (
	"fmt"
	"net"
	"os/exec"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/kubernetes/pkg/proxy"
	"k8s.io/kubernetes/pkg/proxy/userspace"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"
	utilexec "k8s.io/utils/exec"
)

// runSettings are the node facts of one run (from the scenario's args).
type runSettings struct {
	family         string // ipv4 or ipv6
	nodeIP         string
	nodeAddresses  []string
	proxyPortRange string
}

// setupNetns gives the (fresh, empty) network namespace this process runs
// in the node's addresses: lo up, a veth eth0 holding the node IP, its peer eth1
// the extra node addresses, and a default route through eth0, so that
// ChooseHostInterface finds the node IP as kube-proxy does on a node.
func setupNetns(rs runSettings) error {
	run := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("link", "set", "lo", "up"); err != nil {
		return err
	}
	// A veth pair (the dummy link type needs a module the sandbox may lack);
	// eth1, its peer, stays without addresses.
	if err := run("link", "add", "eth0", "type", "veth", "peer", "name", "eth1"); err != nil {
		return err
	}
	if err := run("link", "set", "eth1", "up"); err != nil {
		return err
	}
	var addrs []string
	seen := map[string]bool{}
	for _, a := range append([]string{rs.nodeIP}, rs.nodeAddresses...) {
		if ip := net.ParseIP(a); ip != nil && !seen[ip.String()] {
			seen[ip.String()] = true
			addrs = append(addrs, a)
		}
	}
	// The node IP alone on eth0 (the default-route interface, where
	// ChooseHostInterface looks), the further addresses on eth1.
	for i, a := range addrs {
		ip := net.ParseIP(a)
		if ip == nil {
			return fmt.Errorf("bad address %q", a)
		}
		dev := "eth0"
		if i > 0 {
			dev = "eth1"
		}
		if ip.To4() != nil {
			plen := "24"
			if i > 0 {
				plen = "32"
			}
			if err := run("addr", "add", ip.String()+"/"+plen, "dev", dev); err != nil {
				return err
			}
		} else {
			plen := "64"
			if i > 0 {
				plen = "128"
			}
			if err := run("-6", "addr", "add", ip.String()+"/"+plen, "dev", dev, "nodad"); err != nil {
				return err
			}
		}
	}
	if err := run("link", "set", "eth0", "up"); err != nil {
		return err
	}
	if rs.family == "ipv6" {
		// ChooseHostInterface ignores IPv6 default routes without a gateway.
		return run("-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0")
	}
	return run("route", "add", "default", "dev", "eth0")
}

// socketMaker is the ProxySocketFunc given to NewCustomProxier. kube-proxy
// runs with --proxy-port-range unset, so every proxy socket is asked for on
// port 0 and the kernel would pick a free ephemeral port; this maker picks
// the lowest free port from base instead, so that the numbers are
// reproducible. Sockets for ports other than 0 (the NodePort and local
// portal claims of claimNodePort) are opened exactly as asked. Sockets are
// real (they bind in this namespace), but never proxy: ProxyLoop returns.
type socketMaker struct {
	mu        sync.Mutex
	next      int
	attempts  int // proxy sockets asked for
	successes int // proxy sockets opened
	changed   chan struct{}
}

func (m *socketMaker) make(protocol v1.Protocol, ip net.IP, port int) (userspace.ProxySocket, error) {
	host := ""
	if ip != nil {
		host = ip.String()
	}
	if port != 0 {
		return listen(protocol, host, port)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.signal()
	m.attempts++
	switch protocol {
	case v1.ProtocolTCP, v1.ProtocolUDP:
	case v1.ProtocolSCTP:
		return nil, fmt.Errorf("SCTP is not supported for user space proxy")
	default:
		return nil, fmt.Errorf("unknown protocol %q", protocol)
	}
	for ; m.next <= 65535; m.next++ {
		s, err := listen(protocol, host, m.next)
		if err == nil {
			m.next++
			m.successes++
			return s, nil
		}
	}
	return nil, fmt.Errorf("no free proxy port")
}

func (m *socketMaker) signal() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

type socket struct {
	l    net.Listener
	u    *net.UDPConn
	port int
}

func listen(protocol v1.Protocol, host string, port int) (userspace.ProxySocket, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	switch protocol {
	case v1.ProtocolTCP:
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		return &socket{l: l, port: port}, nil
	case v1.ProtocolUDP:
		a, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return nil, err
		}
		u, err := net.ListenUDP("udp", a)
		if err != nil {
			return nil, err
		}
		return &socket{u: u, port: port}, nil
	}
	return nil, fmt.Errorf("unknown protocol %q", protocol)
}

func (s *socket) Addr() net.Addr {
	if s.l != nil {
		return s.l.Addr()
	}
	return s.u.LocalAddr()
}

func (s *socket) Close() error {
	if s.l != nil {
		return s.l.Close()
	}
	return s.u.Close()
}

func (s *socket) ProxyLoop(proxy.ServicePortName, *userspace.ServiceInfo, userspace.LoadBalancer) {}

func (s *socket) ListenPort() int { return s.port }

// countingLB is the real LoadBalancerRR, counting NewService calls:
// mergeService calls it once per service port whose proxy socket opened,
// after that port's portals are written.
type countingLB struct {
	*userspace.LoadBalancerRR
	mu    sync.Mutex
	calls int
	m     *socketMaker
}

func (lb *countingLB) NewService(svcPort proxy.ServicePortName, affinity v1.ServiceAffinity, ttl int) error {
	err := lb.LoadBalancerRR.NewService(svcPort, affinity, ttl)
	lb.mu.Lock()
	lb.calls++
	lb.mu.Unlock()
	lb.m.signal()
	return err
}

func (lb *countingLB) newServiceCalls() int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.calls
}

// runOracle programs this namespace with the real v1.25.16 userspace
// proxier and returns iptables-save of the filter and nat tables, and the
// load balancer's state (lbState).
//
// Services are handed over one at a time in (namespace, name) order, each
// in its own sync, so that the order of the rules and of the proxy ports is
// reproducible (kube-proxy processes one sync's Services in Go map order);
// a Service is handed over only after the previous one's ports are done.
func runOracle(rs runSettings, objs *objects, base int) (string, string, error) {
	if err := setupNetns(rs); err != nil {
		return "", "", err
	}
	if err := utilfeature.DefaultMutableFeatureGate.Set("KubeletInUserNamespace=true"); err != nil {
		return "", "", err
	}
	proto := utiliptables.ProtocolIPv4
	bind := net.IPv4zero
	save := "iptables-save"
	if rs.family == "ipv6" {
		proto = utiliptables.ProtocolIPv6
		bind = net.IPv6zero
		save = "ip6tables-save"
	}
	execer := utilexec.New()
	m := &socketMaker{next: base, changed: make(chan struct{}, 1)}
	lb := &countingLB{LoadBalancerRR: userspace.NewLoadBalancerRR(), m: m}
	p, err := userspace.NewCustomProxier(lb, bind, utiliptables.New(execer, proto), execer,
		utilnet.PortRange{}, time.Hour, 0, 250*time.Millisecond, nil, m.make)
	if err != nil {
		return "", "", err
	}
	for _, e := range objs.endpoints {
		p.OnEndpointsAdd(e)
	}
	p.OnEndpointsSynced()
	services := append([]*v1.Service(nil), objs.services...)
	sort.SliceStable(services, func(i, j int) bool {
		if services[i].Namespace != services[j].Namespace {
			return services[i].Namespace < services[j].Namespace
		}
		return services[i].Name < services[j].Name
	})
	wait := func(done func() bool) error {
		deadline := time.After(60 * time.Second)
		for !done() {
			select {
			case <-m.changed:
			case <-time.After(20 * time.Millisecond):
			case <-deadline:
				return fmt.Errorf("timed out waiting for the proxier")
			}
		}
		return nil
	}
	counts := func() (int, int) {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.attempts, m.successes
	}
	for _, s := range services {
		if s.Spec.ClusterIP == "" || s.Spec.ClusterIP == v1.ClusterIPNone || s.Spec.Type == v1.ServiceTypeExternalName || len(s.Spec.Ports) == 0 {
			continue // ShouldSkipService, or nothing to do: mergeService returns at once
		}
		before, _ := counts()
		p.OnServiceAdd(s)
		p.OnServiceSynced() // marks the proxier initialised and runs syncProxyRules
		if err := wait(func() bool {
			a, ok := counts()
			return a >= before+len(s.Spec.Ports) && lb.newServiceCalls() >= ok
		}); err != nil {
			return "", "", fmt.Errorf("service %s/%s: %v", s.Namespace, s.Name, err)
		}
	}
	if len(services) == 0 {
		p.OnServiceSynced()
	}
	// Let the last sync's ensurePortals finish (it only checks rules).
	time.Sleep(300 * time.Millisecond)
	var out strings.Builder
	for _, table := range []string{"filter", "nat"} {
		b, err := exec.Command(save, "-t", table).Output()
		if err != nil {
			return "", "", fmt.Errorf("%s -t %s: %v", save, table, err)
		}
		for _, l := range strings.SplitAfter(string(b), "\n") {
			if strings.HasPrefix(l, "#") || l == "" {
				continue
			}
			out.WriteString(l)
		}
	}
	return out.String(), lbState(lb.LoadBalancerRR, objs), nil
}

// lbState reads what the real LoadBalancerRR holds for every TCP and UDP
// service port of the input (its unexported fields, read with reflect):
// one line per service port, sorted, "SPN backends=<sorted ip:port,...>
// affinity=None|ClientIP ttl=<seconds>". The backend list is sorted because
// kube-proxy shuffles it; the TTL is the one in force after the start-up
// order (Endpoints before Services).
func lbState(lb *userspace.LoadBalancerRR, objs *objects) string {
	want := map[string]bool{}
	for _, s := range objs.services {
		if s.Spec.ClusterIP == "" || s.Spec.ClusterIP == v1.ClusterIPNone || s.Spec.Type == v1.ServiceTypeExternalName {
			continue
		}
		for _, p := range s.Spec.Ports {
			if p.Protocol == v1.ProtocolTCP || p.Protocol == v1.ProtocolUDP {
				want[proxy.ServicePortName{NamespacedName: types.NamespacedName{Namespace: s.Namespace, Name: s.Name}, Port: p.Name}.String()] = true
			}
		}
	}
	var lines []string
	services := reflect.ValueOf(lb).Elem().FieldByName("services")
	it := services.MapRange()
	for it.Next() {
		k := it.Key()
		nn := k.Field(0)
		spn := proxy.ServicePortName{NamespacedName: types.NamespacedName{Namespace: nn.Field(0).String(), Name: nn.Field(1).String()}, Port: k.Field(1).String()}.String()
		if !want[spn] {
			continue
		}
		st := it.Value().Elem()
		eps := st.FieldByName("endpoints")
		var backends []string
		for i := 0; i < eps.Len(); i++ {
			backends = append(backends, eps.Index(i).String())
		}
		sort.Strings(backends)
		aff := st.FieldByName("affinity")
		typ := aff.FieldByName("affinityType").String()
		line := spn + " backends=" + strings.Join(backends, ",") + " affinity=" + typ
		if typ == string(v1.ServiceAffinityClientIP) {
			line += " ttl=" + strconv.Itoa(int(aff.FieldByName("ttlSeconds").Int()))
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}
