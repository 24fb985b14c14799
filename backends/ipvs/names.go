package ipvs

import (
	"strings"

	v1 "k8s.io/api/core/v1"
)

// setType is an ipset type kube-proxy uses.
type setType string

const (
	hashIP        setType = "hash:ip"
	hashIPPort    setType = "hash:ip,port"
	hashIPPortIP  setType = "hash:ip,port,ip"
	hashIPPortNet setType = "hash:ip,port,net"
	bitmapPort    setType = "bitmap:port"
)

// Indices into setInfo (kube-proxy's ipsetInfo declaration order).
const (
	setLoopBack = iota
	setClusterIP
	setExternalIP
	setExternalIPLocal
	setLoadBalancer
	setLoadBalancerFW
	setLoadBalancerLocal
	setLoadBalancerSourceIP
	setLoadBalancerSourceCIDR
	setNodePortTCP
	setNodePortLocalTCP
	setNodePortUDP
	setNodePortLocalUDP
	setNodePortSCTP
	setNodePortLocalSCTP
	setHealthCheckNodePort
	setIPVSIPs
	numSets
)

// setInfo is pkg/proxy/ipvs ipsetInfo: the IPv4 name, type and comment of
// each set. The comment appears only in iptables "-m comment" matches; the
// sets themselves are created without comment support.
var setInfo = [numSets]struct {
	name    string
	typ     setType
	comment string
}{
	{"KUBE-LOOP-BACK", hashIPPortIP, "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose"},
	{"KUBE-CLUSTER-IP", hashIPPort, "Kubernetes service cluster ip + port for masquerade purpose"},
	{"KUBE-EXTERNAL-IP", hashIPPort, "Kubernetes service external ip + port for masquerade and filter purpose"},
	{"KUBE-EXTERNAL-IP-LOCAL", hashIPPort, "Kubernetes service external ip + port with externalTrafficPolicy=local"},
	{"KUBE-LOAD-BALANCER", hashIPPort, "Kubernetes service lb portal"},
	{"KUBE-LOAD-BALANCER-FW", hashIPPort, "Kubernetes service load balancer ip + port for load balancer with sourceRange"},
	{"KUBE-LOAD-BALANCER-LOCAL", hashIPPort, "Kubernetes service load balancer ip + port with externalTrafficPolicy=local"},
	{"KUBE-LOAD-BALANCER-SOURCE-IP", hashIPPortIP, "Kubernetes service load balancer ip + port + source IP for packet filter purpose"},
	{"KUBE-LOAD-BALANCER-SOURCE-CIDR", hashIPPortNet, "Kubernetes service load balancer ip + port + source cidr for packet filter purpose"},
	{"KUBE-NODE-PORT-TCP", bitmapPort, "Kubernetes nodeport TCP port for masquerade purpose"},
	{"KUBE-NODE-PORT-LOCAL-TCP", bitmapPort, "Kubernetes nodeport TCP port with externalTrafficPolicy=local"},
	{"KUBE-NODE-PORT-UDP", bitmapPort, "Kubernetes nodeport UDP port for masquerade purpose"},
	{"KUBE-NODE-PORT-LOCAL-UDP", bitmapPort, "Kubernetes nodeport UDP port with externalTrafficPolicy=local"},
	{"KUBE-NODE-PORT-SCTP-HASH", hashIPPort, "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'"},
	{"KUBE-NODE-PORT-LOCAL-SCTP-HASH", hashIPPort, "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'"},
	{"KUBE-HEALTH-CHECK-NODE-PORT", bitmapPort, "Kubernetes health check node port"},
	{"KUBE-IPVS-IPS", hashIP, "Addresses on the ipvs interface"},
}

// maxSetNameLength is the longest name the kernel's ipset accepts
// (IPSET_MAXNAMELEN 32, including the terminating NUL).
const maxSetNameLength = 31

// SetName is the name kube-proxy's NewIPSet gives a set for a family: the
// IPv4 name as is; for IPv6 the first "KUBE-" becomes "KUBE-6-" and the
// result is cut to 31 characters (so KUBE-LOAD-BALANCER-SOURCE-CIDR becomes
// KUBE-6-LOAD-BALANCER-SOURCE-CID).
func SetName(name string, family v1.IPFamily) string {
	if family != v1.IPv6Protocol || !strings.HasPrefix(name, "KUBE-") {
		return name
	}
	name = strings.Replace(name, "KUBE-", "KUBE-6-", 1)
	if len(name) > maxSetNameLength {
		name = name[:maxSetNameLength]
	}
	return name
}

// SetNames returns the 17 set names of a family in kube-proxy's declaration order.
func SetNames(family v1.IPFamily) []string {
	out := make([]string, numSets)
	for i, si := range setInfo {
		out[i] = SetName(si.name, family)
	}
	return out
}
