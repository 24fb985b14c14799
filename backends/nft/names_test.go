package nft

import (
	"strings"
	"testing"
)

// Cases from upstream's Test_servicePortChainNameBase,
// Test_servicePortEndpointChainNameBase and TestTruncateNFTablesComment
// (pkg/proxy/nftables/proxier_test.go, v1.37.2), plus names seen in goldens.

const (
	longNS   = "very-long-namespace-name-abcdefghijklmnopqrstuvwxyz0123456789xx"
	longName = "very-long-service-name-why-would-you-even-do-this-i-mean-really"
	longPort = "port-443-providing-the-hypertext-transmission-protocol-with-tls"
)

func TestServicePortChainNameBase(t *testing.T) {
	for _, tc := range []struct {
		ns, name, proto, port, want string
	}{
		{"testing", "service", "tcp", "http", "P4ZYZVCF-testing/service/tcp/http"},
		{"testing", "service", "tcp", "https", "LZBRENCP-testing/service/tcp/https"},
		{"ns1", "svc1", "tcp", "p80", "ULMVA6XW-ns1/svc1/tcp/p80"},
		{"ns2", "lb", "tcp", "", "DYJI6T5W-ns2/lb/tcp/"},
		{longNS, longName, "sctp", longPort, "KR6NACJP-" + longNS + "/" + longName + "/sctp/" + longPort},
	} {
		if got := servicePortChainNameBase(tc.ns, tc.name, tc.proto, tc.port); got != tc.want {
			t.Errorf("servicePortChainNameBase(%q, %q, %q, %q) = %q, want %q", tc.ns, tc.name, tc.proto, tc.port, got, tc.want)
		}
	}
}

func TestServicePortEndpointChainNameBase(t *testing.T) {
	long := longNS + "/" + longName + "/sctp/" + longPort
	for _, tc := range []struct {
		ns, name, proto, port, endpoint, want string
	}{
		{"testing", "service", "tcp", "http", "10.180.0.1:80", "JO2XBXZR-testing/service/tcp/http__10.180.0.1/80"},
		{"testing", "service", "tcp", "http", "10.180.0.2:80", "5S6H3H22-testing/service/tcp/http__10.180.0.2/80"},
		{"testing", "service", "tcp", "http", "[fd80:abcd:12::a1b2:c3d4:e5f6:9999]:80", "U7E2ET36-testing/service/tcp/http__fd80.abcd.12..a1b2.c3d4.e5f6.9999/80"},
		{"ns5", "svc5", "tcp", "p80", "10.180.0.3:80", "GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80"},
		{longNS, longName, "sctp", longPort, "[1234:5678:9abc:def0::abc:1234]:443", "5YS7AFEA-" + long + "__1234.5678.9abc.def0..abc.1234/443"},
		// Truncated to 237 bytes + "...": the hash tells the two apart.
		{longNS, longName, "sctp", longPort, "[1234:5678:9abc:def0::abcd:1234:5678]:443", "CI6C53Q3-" + long + "__1234.5678.9abc.def0..abcd.1234..."},
		{longNS, longName, "sctp", longPort, "[1234:5678:9abc:def0::abcd:1234:8765]:443", "2FLXFK6X-" + long + "__1234.5678.9abc.def0..abcd.1234..."},
	} {
		got := servicePortEndpointChainNameBase(tc.ns, tc.name, tc.proto, tc.port, tc.endpoint)
		if got != tc.want {
			t.Errorf("servicePortEndpointChainNameBase(..., %q) = %q, want %q", tc.endpoint, got, tc.want)
		}
		if len(got) > chainNameBaseLengthMax {
			t.Errorf("%q is %d bytes, more than %d", got, len(got), chainNameBaseLengthMax)
		}
	}
}

func TestHashAndTruncate(t *testing.T) {
	for _, n := range []int{0, 1, 230, 231, 232, 300, 1000} {
		in := strings.Repeat("x", n)
		got := hashAndTruncate(in)
		wantLen := 9 + n
		if wantLen > 240 {
			wantLen = 240
		}
		if len(got) != wantLen {
			t.Errorf("len(hashAndTruncate(%d bytes)) = %d, want %d", n, len(got), wantLen)
		}
		if got[8] != '-' {
			t.Errorf("no hash separator in %q", got)
		}
		if 9+n > 240 && !strings.HasSuffix(got, "...") {
			t.Errorf("truncated name %q does not end in ...", got)
		}
		if 9+n <= 240 && got[9:] != in {
			t.Errorf("untruncated name altered")
		}
	}
}

func TestTruncateComment(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"kube-system/kube-dns:dns", "kube-system/kube-dns:dns"},
		{strings.Repeat("a", 128), strings.Repeat("a", 128)},
		{strings.Repeat("a", 129), strings.Repeat("a", 128)},
		{"loft-acme-platform-services-team-dev-v-shared-workloads-ns-001/my-api-svc-x-my-api-namespace-x-acme-shared-vcluster--a1b2c3d4e:http",
			"loft-acme-platform-services-team-dev-v-shared-workloads-ns-001/my-api-svc-x-my-api-namespace-x-acme-shared-vcluster--a1b2c3d4e:h"},
	} {
		if got := truncateComment(tc.in); got != tc.want {
			t.Errorf("truncateComment(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMasqueradeMark(t *testing.T) {
	for bit, want := range map[int]string{0: "0x00000001", 5: "0x00000020", 14: "0x00004000", 31: "0x80000000"} {
		if got := MasqueradeMark(bit); got != want {
			t.Errorf("MasqueradeMark(%d) = %q, want %q", bit, got, want)
		}
	}
}
