package explain

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net"
	"strings"
)

// kube-proxy's hashed object names. They are recomputed here from the
// upstream formulas and then looked up in the compiled output, so explain
// only lists objects that exist (and a test checks that every one it
// expects is found).

func base32sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(sum[:])
}

// iptables (pkg/proxy/iptables servicePortChainName, servicePortEndpointChainName).
func iptHash(spn, proto string) string { return base32sha(spn + proto)[:16] }

func iptEndpointChain(spn, proto, endpoint string) string {
	return "KUBE-SEP-" + base32sha(spn + proto + endpoint)[:16]
}

// nftables (pkg/proxy/nftables servicePortChainNameBase and
// servicePortEndpointChainNameBase; knftables.NameLengthMax is 256).
const nftBaseMax = 256 - 16

func nftHashAndTruncate(name string) string {
	name = base32sha(name)[:8] + "-" + name
	if len(name) > nftBaseMax {
		name = name[:nftBaseMax-3] + "..."
	}
	return name
}

func nftBase(ns, name, proto, portName string) string {
	return nftHashAndTruncate(fmt.Sprintf("%s/%s/%s/%s", ns, name, proto, portName))
}

func nftEndpointBase(ns, name, proto, portName, endpoint string) string {
	ip, port, _ := net.SplitHostPort(endpoint)
	ip = strings.ReplaceAll(ip, ":", ".")
	return nftHashAndTruncate(fmt.Sprintf("%s/%s/%s/%s__%s/%s", ns, name, proto, portName, ip, port))
}
