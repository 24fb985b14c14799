package trace

import (
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// What real tools print (testdata/kernel, see its README) must trace like
// svc2rules' own output: "-p tcp -m tcp", "/32", "0x4000", --set-xmark,
// re-rounded probabilities, recent's defaults, "[0:0]" counters; nft's
// listing with priority names, merged and sorted elements, "meta mark |",
// "dnat ip to", handles; ipset save and list; ipvsadm -S and -L.

func kernelRules(t *testing.T, files ...string) *Ruleset {
	t.Helper()
	rs := NewRuleset()
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join("testdata", "kernel", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := rs.Parse(f, string(data)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	return rs
}

func nodeEnv() Env {
	return Env{
		Local:     []netip.Prefix{netip.MustParsePrefix("192.168.0.2/32"), netip.MustParsePrefix("fd00:192::2/128")},
		PrimaryIP: netip.MustParseAddr("192.168.0.2"),
	}
}

// outcomeKey is what must agree: verdict, endpoint, share, masquerade.
func outcomeKeys(r *Result) string {
	var parts []string
	for _, o := range r.Outcomes {
		parts = append(parts, fmt.Sprintf("%s %s %.6f masq=%v %s", o.Verdict, o.Endpoint, o.Probability, o.Masquerade, o.Delivered))
	}
	return strings.Join(parts, "\n")
}

func TestTraceKernelViews(t *testing.T) {
	views := []struct {
		backend string
		files4  []string
		files6  []string
		cases   []tcase
	}{
		{"iptables", []string{"iptables-save-c.txt"}, []string{"ip6tables-save.txt"}, common},
		{"iptables", []string{"iptables-save-c.txt", "ip6tables-save.txt"}, []string{"iptables-save-c.txt", "ip6tables-save.txt"}, common},
		{"nft", []string{"nft-list-ruleset.txt"}, []string{"nft-list-ruleset.txt"}, common},
		{"nft", []string{"nft-a-list-table-ip.txt"}, nil, common},
		{"ipvs", []string{"ipvs-ipset-save.txt", "ipvs-iptables-save.txt", "ipvs-ipvsadm-S.txt", "ipvs-kube-ipvs0.txt"}, nil, nil},
		{"ipvs", []string{"ipvs-ipset-list.txt", "ipvs-iptables-save.txt", "ipvs-ipvsadm-L-n.txt"}, nil, nil},
	}
	ipvsCases := []string{
		"tcp 10.244.1.10 -> 10.96.0.10:80 pod", "tcp 192.168.0.2 -> 10.96.0.10:80 node", "udp 10.244.1.77 -> 10.96.0.10:53 pod",
		"sctp 10.244.1.77 -> 10.96.0.10:3868 pod", "tcp 10.244.1.77 -> 10.96.0.10:81 pod", "tcp 198.51.100.7 -> 192.168.0.2:30020 external",
		"tcp 198.51.100.7 -> 203.0.113.20:80 external", "tcp 198.51.100.7 -> 203.0.113.30:80 external", "tcp 203.0.113.99 -> 203.0.113.30:80 external",
		"tcp 198.51.100.7 -> 192.168.0.2:30040 external", "tcp 10.244.1.77 -> 10.96.0.70:80 pod", "tcp 10.244.1.77 -> 10.96.0.60:80 pod",
		"tcp 198.51.100.7 -> 192.168.0.2:32030 external",
	}
	for i, v := range views {
		t.Run(fmt.Sprintf("%s-%d-%s", v.backend, i, v.files4[0]), func(t *testing.T) {
			rs4 := kernelRules(t, v.files4...)
			var rs6 *Ruleset
			if v.files6 != nil {
				rs6 = kernelRules(t, v.files6...)
			}
			queries := map[string]bool{}
			var list []string
			for _, c := range v.cases {
				if c.extra != nil || queries[c.q] {
					continue
				}
				queries[c.q] = true
				list = append(list, c.q)
			}
			if v.cases == nil {
				list = ipvsCases
			}
			for _, qs := range list {
				q := query(t, qs)
				rs := rs4
				if q.Dst.Is6() {
					if rs6 == nil {
						continue
					}
					rs = rs6
				}
				want := runTrace(t, v.backend, qs)
				got, err := Trace(rs, q, nodeEnv())
				if err != nil {
					t.Fatalf("%s: %v", qs, err)
				}
				if outcomeKeys(got) != outcomeKeys(want) {
					t.Errorf("%s: the kernel's view traces to\n%s\nsvc2rules' output to\n%s\n--- kernel view:\n%s", qs, outcomeKeys(got), outcomeKeys(want), Text(got))
				}
				for _, w := range got.Warnings {
					t.Errorf("%s: warning: %s", qs, w)
				}
			}
		})
	}
}

// A live node's affinity set holds the clients seen: the trace follows it.
func TestTraceLiveAffinity(t *testing.T) {
	rs := kernelRules(t, "nft-live-affinity.txt")
	r, err := Trace(rs, query(t, "tcp 10.244.1.77 -> 10.96.0.60:80 pod"), nodeEnv())
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Endpoints(); len(got) != 1 || math.Abs(got["10.244.2.60:8080"]-1) > 1e-9 {
		t.Errorf("a client in the affinity set must go to its endpoint, got %v\n%s", got, Text(r))
	}
	// Another client is not in any set: an even choice.
	r, err = Trace(rs, query(t, "tcp 10.244.1.78 -> 10.96.0.60:80 pod"), nodeEnv())
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Endpoints(); len(got) != 2 {
		t.Errorf("a new client must be spread, got %v", got)
	}
}
