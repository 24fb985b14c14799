package e2e

import (
	"fmt"
	"testing"
)

// Addresses of the topology (see README.md). Everything lives in namespaces
// the test creates.
const (
	nodeIP4   = "172.18.0.2"
	nodeIP6   = "fd00:18::2"
	clientGW4 = "172.18.0.1" // the client namespace is the node's default gateway ("outside")
	clientGW6 = "fd00:18::1"
	clientA4  = "172.18.0.100" // inside loadBalancerSourceRanges
	clientB4  = "172.18.0.200" // outside them
	clientA6  = "fd00:18::100"
	clientB6  = "fd00:18::200"

	clusterCIDR4 = "10.244.0.0/16"
	clusterCIDR6 = "fd00:10:244::/48"
	serviceCIDR4 = "10.96.0.0/16"
	serviceCIDR6 = "fd00:96::/64"
	externalNet4 = "172.19.0.0/16" // externalIPs
	lbNet4       = "172.20.0.0/16" // LoadBalancer IPs
	lbNet6       = "fd00:20::/64"

	tcpTarget = 8080
	udpTarget = 5353
)

// pod is one pod namespace joined to the node by a veth pair (node side
// vp<N> holds the gateway addresses, pod side eth0 the pod IPs).
type pod struct {
	id       string
	ns       string
	ip4, ip6 string
	gw4, gw6 string // the node's addresses on this pod's link: what MASQUERADE gives
}

type topology struct {
	node, client string
	pods         map[string]*pod
}

func podAddrs(n int) *pod {
	return &pod{
		id:  fmt.Sprintf("pod%d", n),
		ip4: fmt.Sprintf("10.244.%d.10", n),
		ip6: fmt.Sprintf("fd00:10:244:%d::10", n),
		gw4: fmt.Sprintf("10.244.%d.1", n),
		gw6: fmt.Sprintf("fd00:10:244:%d::1", n),
	}
}

// buildTopology creates node, client and pod1..pod4 and starts the servers.
// pod1, pod2 and pod3 are endpoints; pod4 is the never-ready endpoint and
// also the catch-all: the node routes the service, externalIP and
// LoadBalancer ranges to it (AnyIP local routes), so service traffic that
// the rules fail to DNAT, or fail to drop, is answered by "pod4" and shows
// up as a wrong destination instead of vanishing.
func buildTopology(t *testing.T) *topology {
	t.Helper()
	tp := &topology{pods: map[string]*pod{}}
	tp.node = newNS(t, "node")
	tp.client = newNS(t, "client")
	// What kube-proxy (and the node's network setup) sets outside its rules:
	// forwarding, route_localnet for localhost NodePorts (iptables), no
	// reverse-path filter (its default in a fresh namespace, made explicit).
	sysctl(t, tp.node,
		"net.ipv4.ip_forward", "1",
		"net.ipv6.conf.all.forwarding", "1",
		"net.ipv4.conf.all.route_localnet", "1",
		"net.ipv4.conf.all.rp_filter", "0",
		"net.ipv4.conf.default.rp_filter", "0",
		// Not kube-proxy's: no ICMP error rate limit, so that every rejected
		// UDP exchange gets its port-unreachable (the kernel's default lets
		// through about one a second per peer).
		"net.ipv4.icmp_ratelimit", "0",
		"net.ipv6.icmp.ratelimit", "0")

	ipn := func(ns string, args ...string) { mustRun(t, "", "ip", append([]string{"-n", ns}, args...)...) }

	for n := 1; n <= 4; n++ {
		p := podAddrs(n)
		p.ns = newNS(t, p.id)
		tp.pods[p.id] = p
		link := fmt.Sprintf("vp%d", n)
		ipn(tp.node, "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", p.ns)
		ipn(tp.node, "addr", "add", p.gw4+"/24", "dev", link)
		ipn(tp.node, "addr", "add", p.gw6+"/64", "dev", link, "nodad")
		ipn(tp.node, "link", "set", link, "up")
		ipn(p.ns, "addr", "add", p.ip4+"/24", "dev", "eth0")
		ipn(p.ns, "addr", "add", p.ip6+"/64", "dev", "eth0", "nodad")
		ipn(p.ns, "link", "set", "eth0", "up")
		ipn(p.ns, "route", "add", "default", "via", p.gw4)
		ipn(p.ns, "-6", "route", "add", "default", "via", p.gw6)
	}

	ipn(tp.node, "link", "add", "vc", "type", "veth", "peer", "name", "eth0", "netns", tp.client)
	ipn(tp.node, "addr", "add", nodeIP4+"/24", "dev", "vc")
	ipn(tp.node, "addr", "add", nodeIP6+"/64", "dev", "vc", "nodad")
	ipn(tp.node, "link", "set", "vc", "up")
	for _, a := range []string{clientGW4, clientA4, clientB4} {
		ipn(tp.client, "addr", "add", a+"/24", "dev", "eth0")
	}
	for _, a := range []string{clientGW6, clientA6, clientB6} {
		ipn(tp.client, "addr", "add", a+"/64", "dev", "eth0", "nodad")
	}
	ipn(tp.client, "link", "set", "eth0", "up")
	for _, r := range []string{externalNet4, lbNet4} {
		ipn(tp.client, "route", "add", r, "via", nodeIP4)
	}
	ipn(tp.client, "-6", "route", "add", lbNet6, "via", nodeIP6)
	ipn(tp.node, "route", "add", "default", "via", clientGW4)
	ipn(tp.node, "-6", "route", "add", "default", "via", clientGW6)

	// The catch-all (see above). "src" keeps the node's own connections to
	// service IPs sourced from the node IP, as on a real node.
	catch := tp.pods["pod4"]
	for _, r := range []string{serviceCIDR4, externalNet4, lbNet4} {
		ipn(tp.node, "route", "add", r, "via", catch.ip4, "src", nodeIP4)
		ipn(catch.ns, "route", "add", "local", r, "dev", "lo")
	}
	for _, r := range []string{serviceCIDR6, lbNet6} {
		ipn(tp.node, "-6", "route", "add", r, "via", catch.ip6, "src", nodeIP6)
		ipn(catch.ns, "-6", "route", "add", "local", r, "dev", "lo")
	}

	for _, id := range []string{"pod1", "pod2", "pod3"} {
		p := tp.pods[id]
		startServer(t, p.ns, serverSpec{ID: id, Addrs: []string{p.ip4, p.ip6},
			TCPPorts: []int{tcpTarget}, UDPPorts: []int{udpTarget}})
	}
	startServer(t, catch.ns, serverSpec{ID: catch.id, Addrs: []string{"::"},
		TCPPorts: []int{tcpTarget, 80}, UDPPorts: []int{udpTarget, 53}})
	// The node's own catch-all: a server on the node on every NodePort of
	// testdata/services.yaml (all addresses, loopback included), so that a
	// NodePort the rules fail to DNAT, reject or drop is answered by "node"
	// instead of being refused by the node's stack anyway.
	startServer(t, tp.node, serverSpec{ID: "node", Addrs: []string{"::"},
		TCPPorts: []int{30080, 30081, 30082, 30083, 30084, 30085, 30090, 30093}, UDPPorts: []int{30053, 30086, 30091}})
	return tp
}
