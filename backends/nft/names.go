package nft

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net"
	"strings"

	"sigs.k8s.io/knftables"
)

// Chain and set name prefixes of the per-service objects
// (pkg/proxy/nftables/proxier.go).
const (
	clusterChainPrefix  = "service-"
	localChainPrefix    = "local-"
	externalChainPrefix = "external-"
	endpointChainPrefix = "endpoint-"
	affinitySetPrefix   = "affinity-"
	firewallChainPrefix = "firewall-"
)

// chainNamePrefixLengthMax is the longest prefix above plus its hyphen, rounded
// up as upstream does; chainNameBaseLengthMax is what is left for the base.
const (
	chainNamePrefixLengthMax = 16
	chainNameBaseLengthMax   = knftables.NameLengthMax - chainNamePrefixLengthMax
)

// hashAndTruncate prefixes name with the first 8 characters of the base32
// SHA-256 of name itself and a hyphen, and truncates the result to 240 bytes
// (the last three replaced by "...").
func hashAndTruncate(name string) string {
	sum := sha256.Sum256([]byte(name))
	var enc [8]byte // 8 characters encode the first 5 bytes
	base32.StdEncoding.Encode(enc[:], sum[:5])
	name = string(enc[:]) + "-" + name
	if len(name) > chainNameBaseLengthMax {
		name = name[:chainNameBaseLengthMax-3] + "..."
	}
	return name
}

// truncateComment truncates s to the 128 bytes nftables accepts in a comment.
func truncateComment(s string) string {
	if len(s) > knftables.CommentLengthMax {
		return s[:knftables.CommentLengthMax]
	}
	return s
}

// servicePortChainNameBase is "HASH-ns/name/proto/port" (port: the port name,
// possibly empty).
func servicePortChainNameBase(namespace, name, protocol, portName string) string {
	return hashAndTruncate(namespace + "/" + name + "/" + protocol + "/" + portName)
}

// servicePortEndpointChainNameBase is "HASH-ns/name/proto/port__IP/port";
// the colons of an IPv6 endpoint IP become dots. endpoint is "IP:port" or
// "[IPv6]:port".
func servicePortEndpointChainNameBase(namespace, name, protocol, portName, endpoint string) string {
	ip, port, _ := net.SplitHostPort(endpoint)
	ip = strings.ReplaceAll(ip, ":", ".")
	return hashAndTruncate(namespace + "/" + name + "/" + protocol + "/" + portName + "__" + ip + "/" + port)
}

// serviceChains are the names of one service port's chains.
type serviceChains struct {
	cluster, local, external, firewall string
}

func chainsFor(namespace, name, protocol, portName string) serviceChains {
	base := servicePortChainNameBase(namespace, name, protocol, portName)
	return serviceChains{
		cluster:  clusterChainPrefix + base,
		local:    localChainPrefix + base,
		external: externalChainPrefix + base,
		firewall: firewallChainPrefix + base,
	}
}

// MasqueradeMark is the mark kube-proxy's NewProxier computes from the
// masquerade bit: fmt.Sprintf("%#08x", 1<<bit), i.e. "0x00004000" for bit 14.
func MasqueradeMark(bit int) string {
	return fmt.Sprintf("%#08x", 1<<uint(bit))
}
