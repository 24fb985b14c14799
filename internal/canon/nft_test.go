package canon

import (
	"strings"
	"testing"
)

const nftDump = `add table ip kube-proxy { comment "rules for kube-proxy" ; }
add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
add chain ip kube-proxy services
add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
add rule ip kube-proxy nat-output jump services
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kube-proxy services ip daddr { 10.96.0.0/16 } drop
add element ip kube-proxy cluster-ips { 10.96.0.1 }
add element ip kube-proxy cluster-ips { 10.96.0.2 }
add element ip kube-proxy service-ips { 10.96.0.1 . tcp . 443 : goto services }
`

// The same state as a fresh-node transaction: add+delete and add+flush
// pairs, other object order, element order, spacing, a multi-element line.
const nftTransaction = `add table ip kube-proxy { comment "rules for kube-proxy" ; }
add chain ip kube-proxy nat-output
delete chain ip kube-proxy nat-output
add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
flush chain ip kube-proxy nat-output
add chain ip kube-proxy services
flush chain ip kube-proxy services
add rule ip kube-proxy nat-output jump services
add set ip kube-proxy nodeport-ips { type ipv4_addr ; }
delete set ip kube-proxy nodeport-ips
add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
add counter ip kube-proxy c1
delete counter ip kube-proxy c1
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kube-proxy services ip daddr {10.96.0.0/16} drop
# a comment
add element ip kube-proxy cluster-ips { 10.96.0.2, 10.96.0.1 }
add element ip kube-proxy service-ips { 10.96.0.1 . tcp . 443 : drop }
delete element ip kube-proxy service-ips { 10.96.0.1 . tcp . 443 }
add element ip kube-proxy service-ips { 10.96.0.1 . tcp . 443 : goto services }
`

func TestNFTEqual(t *testing.T) {
	eq, diff, err := NFT(nftDump, nftTransaction)
	if err != nil {
		t.Fatal(err)
	}
	if !eq {
		t.Errorf("dump and transaction differ:\n%s", diff)
	}
}

func TestNFTDifferences(t *testing.T) {
	for _, tc := range []struct {
		name, from, to string
	}{
		{"rule order within a chain", "add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips\nadd rule ip kube-proxy services ip daddr { 10.96.0.0/16 } drop\n",
			"add rule ip kube-proxy services ip daddr { 10.96.0.0/16 } drop\nadd rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips\n"},
		{"element value", "goto services }", "drop }"},
		{"missing element", "add element ip kube-proxy cluster-ips { 10.96.0.2 }\n", ""},
		{"comment text", `"Active ClusterIPs"`, `"Active ClusterIP"`},
		{"family", "add chain ip kube-proxy services\n", "add chain ip kube-proxy services\nadd chain ip kube-proxy extra\n"},
		{"base chain priority", "priority -100", "priority -110"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Replace(nftDump, tc.from, tc.to, 1)
			if got == nftDump {
				t.Fatalf("replacement %q not found", tc.from)
			}
			eq, diff, err := NFT(nftDump, got)
			if err != nil {
				t.Fatal(err)
			}
			if eq || diff == "" {
				t.Errorf("difference not reported (diff %q)", diff)
			}
		})
	}
}

func TestNFTErrors(t *testing.T) {
	for _, tc := range []struct{ name, script string }{
		{"block syntax", "table ip kube-proxy {\n}\n"},
		{"unknown verb", "list table ip kube-proxy\n"},
		{"rule without chain", "add table ip t\nadd rule ip t c drop\n"},
		{"object without table", "add chain ip t c\n"},
		{"delete missing chain", "add table ip t\ndelete chain ip t c\n"},
		{"flush missing set", "add table ip t\nflush set ip t s\n"},
		{"element without set", "add table ip t\nadd element ip t s { 1.2.3.4 }\n"},
		{"element without braces", "add table ip t\nadd set ip t s { type ipv4_addr ; }\nadd element ip t s 1.2.3.4\n"},
		{"rule handle", "add table ip t\nadd chain ip t c\nadd rule ip t c handle 3 drop\n"},
		{"unterminated quote", "add table ip t { comment \"x ; }\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := CanonicalNFT(tc.script); err == nil {
				t.Errorf("no error for %q", tc.script)
			}
			if _, _, err := NFT(nftDump, tc.script); err == nil {
				t.Errorf("NFT: no error")
			}
		})
	}
}

func TestCanonicalNFTOrder(t *testing.T) {
	got, err := CanonicalNFT(nftTransaction)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`add table ip kube-proxy { comment "rules for kube-proxy" ; }`,
		`add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }`,
		`add chain ip kube-proxy services`,
		`add rule ip kube-proxy nat-output jump services`,
		`add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips`,
		`add rule ip kube-proxy services ip daddr { 10.96.0.0/16 } drop`,
		`add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }`,
		`add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }`,
		`add element ip kube-proxy cluster-ips { 10.96.0.1 }`,
		`add element ip kube-proxy cluster-ips { 10.96.0.2 }`,
		`add element ip kube-proxy service-ips { 10.96.0.1 . tcp . 443 : goto services }`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("canonical form:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestTokenizeNFT(t *testing.T) {
	got, err := tokenizeNFT(`add element ip t m { 1.2.3.4 comment "a, {b}; \"c\"" : goto x,2.3.4.5:drop }`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"add", "element", "ip", "t", "m", "{", "1.2.3.4", "comment", `"a, {b}; \"c\""`, ":", "goto", "x", ",", "2.3.4.5:drop", "}"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("tokens %q, want %q", got, want)
	}
}
