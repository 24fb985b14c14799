package canon

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-cmp/cmp"
)

// The userspace comparison (kube-proxy v1.25's legacy userspace mode) parses
// both texts as iptables does and then frees what that mode leaves free:
//   - the proxy ports are names to unify: within one text every rule of a
//     service port (comment "ns/name" or "ns/name:port") must carry one and
//     the same proxy port, as REDIRECT --to-ports N, DNAT --to-destination
//     IP:N or, in KUBE-NODEPORT-NON-LOCAL, --dport N, and distinct service
//     ports distinct ones; the number is then replaced by the service
//     port's name on both sides;
//   - the service ports' blocks in the mode's chains (KUBE-PORTALS-*,
//     KUBE-NODEPORT-*) form a multiset (kube-proxy processes Services in Go
//     map order); each block keeps its own order;
//   - whatever the iptables comparison frees (table and chain declaration
//     order, quoting, counters, empty built-in chains).
// Rules without a service port (the jumps from the built-in chains) keep
// their order.

// userspaceChains are the chains of the mode that hold per-service-port rules.
var userspaceChains = map[string]bool{
	"KUBE-PORTALS-CONTAINER":  true,
	"KUBE-PORTALS-HOST":       true,
	"KUBE-NODEPORT-CONTAINER": true,
	"KUBE-NODEPORT-HOST":      true,
	"KUBE-NODEPORT-NON-LOCAL": true,
}

// proxyPortIndex returns the index of the token holding the rule's proxy
// port and the port, or -1 when the rule has none.
func proxyPortIndex(chain string, rule []string) (int, int, error) {
	for i := 0; i+1 < len(rule); i++ {
		switch rule[i] {
		case "--to-ports":
			p, err := strconv.Atoi(rule[i+1])
			return i + 1, p, err
		case "--to-destination":
			_, ps, err := net.SplitHostPort(rule[i+1])
			if err != nil {
				return -1, 0, err
			}
			p, err := strconv.Atoi(ps)
			return i + 1, p, err
		case "--dport":
			if chain == "KUBE-NODEPORT-NON-LOCAL" {
				p, err := strconv.Atoi(rule[i+1])
				return i + 1, p, err
			}
		}
	}
	return -1, 0, nil
}

// UserspaceProxyPorts returns the proxy port of every service port of a
// userspace-mode iptables text, checking that each service port has exactly
// one and that no two share one.
func UserspaceProxyPorts(text string) (map[string]int, error) {
	tables, err := ParseIPTables(text)
	if err != nil {
		return nil, err
	}
	ports := map[string]int{}
	for _, t := range tables {
		for chain, c := range t.chains {
			for _, r := range c.rules {
				spn, ok := spnKey(r)
				if !ok {
					continue
				}
				i, p, err := proxyPortIndex(chain, r)
				if err != nil {
					return nil, fmt.Errorf("%s: %v", renderRule(chain, r), err)
				}
				if i < 0 {
					continue
				}
				if old, ok := ports[spn]; ok && old != p {
					return nil, fmt.Errorf("service port %s uses proxy ports %d and %d", spn, old, p)
				}
				ports[spn] = p
			}
		}
	}
	owner := map[int]string{}
	spns := make([]string, 0, len(ports))
	for spn := range ports {
		spns = append(spns, spn)
	}
	sort.Strings(spns)
	for _, spn := range spns {
		p := ports[spn]
		if o, ok := owner[p]; ok {
			return nil, fmt.Errorf("service ports %s and %s share proxy port %d", o, spn, p)
		}
		owner[p] = spn
	}
	return ports, nil
}

// CanonicalUserspace returns the canonical line form of a userspace-mode
// iptables text (see above): proxy ports replaced by "<proxy-port:SPN>",
// blocks sorted by service port.
func CanonicalUserspace(text string) ([]string, error) {
	if _, err := UserspaceProxyPorts(text); err != nil {
		return nil, err
	}
	tables, err := ParseIPTables(text)
	if err != nil {
		return nil, err
	}
	return canonicalLines(tables, true, func(_, n string, rules [][]string) []string {
		var plain []string
		blocks := map[string][]string{}
		for _, r := range rules {
			spn, ok := spnKey(r)
			if !ok {
				plain = append(plain, renderRule(n, r))
				continue
			}
			r = append([]string(nil), r...)
			if i, _, _ := proxyPortIndex(n, r); i >= 0 {
				sym := "<proxy-port:" + spn + ">"
				if strings.Contains(r[i], ":") && r[i-1] == "--to-destination" {
					host, _, _ := net.SplitHostPort(r[i])
					r[i] = host + "|" + sym
				} else {
					r[i] = sym
				}
			}
			if userspaceChains[n] {
				blocks[spn] = append(blocks[spn], renderRule(n, r))
			} else {
				plain = append(plain, renderRule(n, r))
			}
		}
		spns := make([]string, 0, len(blocks))
		for spn := range blocks {
			spns = append(spns, spn)
		}
		sort.Strings(spns)
		out := plain
		for _, spn := range spns {
			out = append(out, blocks[spn]...)
		}
		return out
	}), nil
}

// Userspace compares kube-proxy's expected userspace-mode iptables text
// with svc2rules' output. It returns a go-cmp diff of the canonical forms
// when they differ, and an error when either text does not parse or breaks
// the proxy-port rules (one per service port, none shared).
func Userspace(want, got string) (equal bool, diff string, err error) {
	w, err := CanonicalUserspace(want)
	if err != nil {
		return false, "", fmt.Errorf("expected output: %w", err)
	}
	g, err := CanonicalUserspace(got)
	if err != nil {
		return false, "", fmt.Errorf("svc2rules output: %w", err)
	}
	if cmp.Equal(w, g) {
		return true, "", nil
	}
	return false, cmp.Diff(w, g), nil
}
