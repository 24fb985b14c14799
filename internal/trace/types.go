package trace

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Where a packet comes from.
const (
	FromPod      = "pod"      // a pod on this node (enters through PREROUTING)
	FromNode     = "node"     // the node itself (OUTPUT)
	FromExternal = "external" // another host (PREROUTING)
)

// Query is the packet to trace: the first packet of a new connection.
type Query struct {
	Src     netip.Addr
	SrcPort uint16 // 0: any (an ephemeral port)
	Dst     netip.Addr
	DstPort uint16
	// Proto is tcp, udp or sctp.
	Proto string
	// From is FromPod, FromNode or FromExternal.
	From string
	// InIface is the interface the packet arrives on ("" unknown; only used
	// by interface matches such as kube-proxy's BridgeInterface and
	// InterfaceNamePrefix local-traffic detectors).
	InIface string
	// Mark is the packet mark it starts with (0 normally).
	Mark uint32
}

// Env holds the node facts the rules do not carry.
type Env struct {
	// Local are the node's own addresses (what "addrtype LOCAL" and "fib
	// type local" match, and what routing delivers locally). Loopback is
	// always local.
	Local []netip.Prefix
	// PrimaryIP is the address REDIRECT rewrites packets from outside to
	// (the address of the interface they came in on; here: the node IP).
	PrimaryIP netip.Addr
}

// Step is one thing that happened to the packet.
type Step struct {
	// Hook is the netfilter hook (PREROUTING, INPUT, FORWARD, OUTPUT,
	// POSTROUTING) or "route", "ipvs", "proxy".
	Hook string `json:"hook"`
	// Table is the iptables table ("nat", "filter", ...) or the nftables
	// table ("ip kube-proxy").
	Table string `json:"table,omitempty"`
	Chain string `json:"chain,omitempty"`
	// Rule is the rule's position in its chain, 1-based (0: none, e.g. a
	// chain's policy or a routing decision).
	Rule int `json:"rule,omitempty"`
	// Text is the rule as read.
	Text string `json:"text,omitempty"`
	// Note says what the rule did ("jump", "DNAT to ...", "random: taken
	// with probability 1/3", ...).
	Note string `json:"note,omitempty"`
	// Branch is the probability of this step given the previous one, when
	// the step is a random choice (0 otherwise).
	Branch float64 `json:"branchProbability,omitempty"`
}

func (s Step) key() string {
	return s.Hook + "\x00" + s.Table + "\x00" + s.Chain + "\x00" + strconv.Itoa(s.Rule) + "\x00" + s.Text + "\x00" + s.Note + "\x00" + strconv.FormatFloat(s.Branch, 'g', -1, 64)
}

// Verdicts.
const (
	VerdictDNAT    = "DNAT"     // destination rewritten to an endpoint (iptables/nft DNAT, IPVS)
	VerdictProxy   = "PROXY"    // redirected to kube-proxy's userspace proxy, which dials an endpoint
	VerdictReject  = "REJECT"   // rejected (ICMP port unreachable / TCP reset): the client sees "connection refused"
	VerdictDrop    = "DROP"     // dropped: the client times out
	VerdictAccept  = "ACCEPT"   // accepted by an explicit rule, not rewritten
	VerdictNoMatch = "NO-MATCH" // no rule rewrote or stopped it: it goes where routing sends it
)

// Path is one way the packet can go, with its probability.
type Path struct {
	Probability float64 `json:"probability"`
	Steps       []Step  `json:"steps"`
	Verdict     string  `json:"verdict"`
	// By says which rule decided the verdict.
	By string `json:"by,omitempty"`
	// Endpoint is the final destination "IP:port" after DNAT, IPVS or the
	// userspace proxy.
	Endpoint string `json:"endpoint,omitempty"`
	// Delivered is where the packet goes at the end: "forwarded" (to another
	// host or a pod) or "local" (a socket on the node); empty when dropped.
	Delivered string `json:"delivered,omitempty"`
	// Masquerade: the source address is rewritten to the node's (MASQUERADE,
	// SNAT, or a userspace proxy's new connection).
	Masquerade   bool   `json:"masquerade"`
	MasqueradeBy string `json:"masqueradeBy,omitempty"`
	// Source is the source address the destination sees ("" when
	// masqueraded to an address the rules do not name).
	Source string `json:"source,omitempty"`
	// Affinity notes session affinity state written or read on the way.
	Affinity string `json:"affinity,omitempty"`
}

// Outcome aggregates the paths that end the same way.
type Outcome struct {
	Probability float64 `json:"probability"`
	Verdict     string  `json:"verdict"`
	By          string  `json:"by,omitempty"`
	Endpoint    string  `json:"endpoint,omitempty"`
	Delivered   string  `json:"delivered,omitempty"`
	Masquerade  bool    `json:"masquerade"`
	Affinity    string  `json:"affinity,omitempty"`
}

// Result is a trace.
type Result struct {
	Query       QueryJSON `json:"query"`
	Backend     string    `json:"backend"`
	Source      string    `json:"rules"`
	Paths       []Path    `json:"paths"`
	Outcomes    []Outcome `json:"outcomes"`
	Assumptions []string  `json:"assumptions,omitempty"`
	Warnings    []string  `json:"warnings,omitempty"`
}

// QueryJSON is the query as printed.
type QueryJSON struct {
	Src   string `json:"src"`
	Dst   string `json:"dst"`
	Proto string `json:"proto"`
	From  string `json:"from"`
	Iif   string `json:"inInterface,omitempty"`
}

// Verdict is the overall verdict: the one verdict of every path, or
// "MIXED" when paths end differently.
func (r *Result) Verdict() string {
	v := ""
	for _, o := range r.Outcomes {
		if v == "" {
			v = o.Verdict
		} else if v != o.Verdict {
			return "MIXED"
		}
	}
	return v
}

// Endpoints returns the DNAT/proxy endpoints with their total probability.
func (r *Result) Endpoints() map[string]float64 {
	out := map[string]float64{}
	for _, o := range r.Outcomes {
		if o.Endpoint != "" && (o.Verdict == VerdictDNAT || o.Verdict == VerdictProxy) {
			out[o.Endpoint] += o.Probability
		}
	}
	return out
}

func hostPort(a netip.Addr, port uint16) string {
	return netip.AddrPortFrom(a, port).String()
}

// ParseHostPort reads "IP:PORT" or "[IPv6]:PORT".
func ParseHostPort(s string) (netip.Addr, uint16, error) {
	ap, err := netip.ParseAddrPort(s)
	if err == nil {
		return ap.Addr().Unmap(), ap.Port(), nil
	}
	// "IPv6:port" without brackets is ambiguous; reject it with a hint.
	if strings.Count(s, ":") > 1 && !strings.HasPrefix(s, "[") {
		return netip.Addr{}, 0, fmt.Errorf("%q: write IPv6 destinations as [ADDR]:PORT", s)
	}
	return netip.Addr{}, 0, fmt.Errorf("%q is not IP:PORT", s)
}

// ParseHostOptionalPort reads "IP", "IP:PORT" or "[IPv6]:PORT".
func ParseHostOptionalPort(s string) (netip.Addr, uint16, error) {
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.Unmap(), 0, nil
	}
	return ParseHostPort(s)
}

func protoNum(p string) (uint8, bool) {
	switch strings.ToLower(p) {
	case "tcp", "6":
		return 6, true
	case "udp", "17":
		return 17, true
	case "sctp", "132":
		return 132, true
	case "icmp", "1":
		return 1, true
	case "icmpv6", "ipv6-icmp", "58":
		return 58, true
	case "udplite", "136":
		return 136, true
	case "all", "0":
		return 0, true
	}
	if n, err := strconv.Atoi(p); err == nil && n >= 0 && n < 256 {
		return uint8(n), true
	}
	return 0, false
}

func protoName(n uint8) string {
	switch n {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 132:
		return "sctp"
	}
	return strconv.Itoa(int(n))
}
