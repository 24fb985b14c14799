package iptables

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
)

// Chain-name prefixes of the per-service chains (pkg/proxy/iptables/proxier.go).
const (
	clusterChainPrefix  = "KUBE-SVC-"
	localChainPrefix    = "KUBE-SVL-"
	externalChainPrefix = "KUBE-EXT-"
	firewallChainPrefix = "KUBE-FW-"
	endpointChainPrefix = "KUBE-SEP-"
)

// portProtoHash is kube-proxy's hash for service chains: the first 16
// characters of the base32 SHA-256 of SPN+protocol, with no separator
// ("ns1/svc1:p80" + "tcp").
func portProtoHash(spn, protocol string) string {
	var b [16]byte
	return string(hash16(b[:0], spn, protocol, ""))
}

// hash16 appends to dst the first 16 characters of the base32 SHA-256 of
// a+b+c (16 characters encode the first 10 bytes, so only those are
// encoded), without concatenating the parts on the heap.
func hash16(dst []byte, a, b, c string) []byte {
	var in [256]byte
	buf := append(append(append(in[:0], a...), b...), c...)
	sum := sha256.Sum256(buf)
	var enc [16]byte
	base32.StdEncoding.Encode(enc[:], sum[:10])
	return append(dst, enc[:]...)
}

// endpointChainName is KUBE-SEP- plus the hash of SPN+protocol+"IP:port"
// (IPv6 endpoints keep their brackets).
func endpointChainName(spn, protocol, endpoint string) string {
	var b [32]byte
	return string(hash16(append(b[:0], endpointChainPrefix...), spn, protocol, endpoint))
}

// serviceChains are the names of one service port's chains.
type serviceChains struct {
	cluster, local, external, firewall string
}

func chainsFor(spn, protocol string) serviceChains {
	h := portProtoHash(spn, protocol)
	return serviceChains{
		cluster:  clusterChainPrefix + h,
		local:    localChainPrefix + h,
		external: externalChainPrefix + h,
		firewall: firewallChainPrefix + h,
	}
}

// MasqueradeMark is the mark kube-proxy's NewProxier computes from
// --iptables-masquerade-bit: fmt.Sprintf("%#08x", 1<<bit), which pads the
// digits to 8 after "0x" (bit 14 gives "0x00004000").
func MasqueradeMark(bit int) string {
	return fmt.Sprintf("%#08x", 1<<uint(bit))
}

// probability is kube-proxy's computeProbability: 1/n printed with %0.10f.
func probability(n int) string {
	return fmt.Sprintf("%0.10f", 1.0/float64(n))
}
