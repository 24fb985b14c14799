package iptables

import "testing"

func TestChainNames(t *testing.T) {
	// Values from kube-proxy's own tests and spec (pkg/proxy/iptables).
	if got := chainsFor("ns1/svc1:p80", "tcp").cluster; got != "KUBE-SVC-XPGD46QRK7WJZT7O" {
		t.Errorf("cluster chain = %s", got)
	}
	if got := endpointChainName("ns1/svc1:p80", "tcp", "10.180.0.1:80"); got != "KUBE-SEP-SXIVWICOYRO3J4NJ" {
		t.Errorf("endpoint chain = %s", got)
	}
}

func TestProbability(t *testing.T) {
	for n, want := range map[int]string{1: "1.0000000000", 2: "0.5000000000", 3: "0.3333333333", 6: "0.1666666667", 7: "0.1428571429", 100001: "0.0000099999"} {
		if got := probability(n); got != want {
			t.Errorf("probability(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestMasqueradeMark(t *testing.T) {
	for bit, want := range map[int]string{14: "0x00004000", 0: "0x00000001", 31: "0x80000000"} {
		if got := MasqueradeMark(bit); got != want {
			t.Errorf("MasqueradeMark(%d) = %s, want %s", bit, got, want)
		}
	}
}
