package ipvs

import (
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestSetName(t *testing.T) {
	for _, tc := range []struct {
		name   string
		family v1.IPFamily
		want   string
	}{
		{"KUBE-CLUSTER-IP", v1.IPv4Protocol, "KUBE-CLUSTER-IP"},
		{"KUBE-LOAD-BALANCER-SOURCE-CIDR", v1.IPv4Protocol, "KUBE-LOAD-BALANCER-SOURCE-CIDR"},
		{"KUBE-CLUSTER-IP", v1.IPv6Protocol, "KUBE-6-CLUSTER-IP"},
		{"KUBE-IPVS-IPS", v1.IPv6Protocol, "KUBE-6-IPVS-IPS"},
		// 32 and 32 characters after the prefix change: cut to 31.
		{"KUBE-LOAD-BALANCER-SOURCE-CIDR", v1.IPv6Protocol, "KUBE-6-LOAD-BALANCER-SOURCE-CID"},
		{"KUBE-NODE-PORT-LOCAL-SCTP-HASH", v1.IPv6Protocol, "KUBE-6-NODE-PORT-LOCAL-SCTP-HAS"},
		// exactly 31 after the change: kept whole.
		{"KUBE-LOAD-BALANCER-SOURCE-IP", v1.IPv6Protocol, "KUBE-6-LOAD-BALANCER-SOURCE-IP"},
		{"KUBE-HEALTH-CHECK-NODE-PORT", v1.IPv6Protocol, "KUBE-6-HEALTH-CHECK-NODE-PORT"},
		// only the first KUBE- is replaced; other names are untouched.
		{"KUBE-KUBE-X", v1.IPv6Protocol, "KUBE-6-KUBE-X"},
		{"OTHER-SET", v1.IPv6Protocol, "OTHER-SET"},
	} {
		if got := SetName(tc.name, tc.family); got != tc.want {
			t.Errorf("SetName(%q, %s) = %q, want %q", tc.name, tc.family, got, tc.want)
		}
	}
}

func TestSetNamesValidAndUnique(t *testing.T) {
	for _, f := range []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol} {
		names := SetNames(f)
		if len(names) != 17 {
			t.Fatalf("%s: %d sets, want 17", f, len(names))
		}
		seen := map[string]bool{}
		for _, n := range names {
			if len(n) > 31 {
				t.Errorf("%s: %q longer than 31 characters", f, n)
			}
			if seen[n] {
				t.Errorf("%s: %q twice", f, n)
			}
			seen[n] = true
		}
	}
	// The two families never share a name (dual-stack nodes have both).
	for _, n := range SetNames(v1.IPv6Protocol) {
		for _, m := range SetNames(v1.IPv4Protocol) {
			if n == m {
				t.Errorf("%q used by both families", n)
			}
		}
	}
}
