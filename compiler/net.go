package compiler

import (
	netutils "k8s.io/utils/net"
)

// CIDRContains reports whether the CIDR contains the IP (both parsed like
// kube-proxy does; false if either does not parse).
func CIDRContains(cidr, ip string) bool {
	_, n, err := netutils.ParseCIDRSloppy(cidr)
	if err != nil {
		return false
	}
	addr := netutils.ParseIPSloppy(ip)
	return addr != nil && n.Contains(addr)
}

// IsLoopback reports whether ip is a loopback address.
func IsLoopback(ip string) bool {
	addr := netutils.ParseIPSloppy(ip)
	return addr != nil && addr.IsLoopback()
}
