package compiler

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestBuildUserspace(t *testing.T) {
	const in = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: ns}
spec:
  ipFamilies: [IPv6, IPv4]
  clusterIP: fd00::10
  clusterIPs: [fd00::10, 10.96.0.10]
  externalIPs: [203.0.113.1, "2001:db8::1"]
  ports:
  - {name: dns, port: 53, protocol: TCP}
  - {name: web, port: 80, protocol: TCP}
status:
  loadBalancer:
    ingress: [{hostname: lb.example}, {ip: 198.51.100.1, ipMode: Proxy}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: web, namespace: ns}
subsets:
- addresses: [{ip: 10.0.0.2}, {ip: "fd00:1::2"}]
  notReadyAddresses: [{ip: 10.0.0.9}]
  ports:
  - {name: dns, port: 53, protocol: UDP}
- addresses: [{ip: 10.0.0.2}]
  ports:
  - {name: dns, port: 53, protocol: UDP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-x, namespace: ns, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: web, port: 80}]
endpoints:
- addresses: [10.0.0.7]
---
apiVersion: v1
kind: Service
metadata: {name: skipped, namespace: ns, labels: {service.kubernetes.io/headless: ""}}
spec:
  clusterIP: 10.96.0.11
  ports:
  - {port: 80}
`
	p := filepath.Join(t.TempDir(), "in.yaml")
	if err := os.WriteFile(p, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	inputs, err := Load(LoadOptions{Paths: []string{p}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Normalize(inputs); err != nil {
		t.Fatal(err)
	}
	ports := BuildUserspace(inputs)
	if len(ports) != 2 {
		t.Fatalf("%d ports, want 2 (the headless-labelled Service is skipped)", len(ports))
	}
	dns, web := ports[0], ports[1]
	if dns.SPN != "ns/web:dns" || web.SPN != "ns/web:web" {
		t.Fatalf("order: %s, %s", dns.SPN, web.SPN)
	}
	// Endpoints win over slices; the port name matches whatever the
	// protocol; duplicates and other-family addresses are kept.
	if want := []string{"10.0.0.2:53", "[fd00:1::2]:53", "10.0.0.2:53"}; !reflect.DeepEqual(dns.Backends, want) {
		t.Errorf("dns backends %v, want %v", dns.Backends, want)
	}
	if dns.NotReadyBackends != 1 || dns.EndpointsFrom != "Endpoints" {
		t.Errorf("dns: notReady %d from %q", dns.NotReadyBackends, dns.EndpointsFrom)
	}
	if len(web.Backends) != 0 {
		t.Errorf("web backends %v: the Endpoints object has no port web, and slices are not read", web.Backends)
	}
	if dns.ClusterIP != "fd00::10" || !reflect.DeepEqual(dns.OtherFamilyClusterIPs, []string{"10.96.0.10"}) {
		t.Errorf("cluster IPs %s %v", dns.ClusterIP, dns.OtherFamilyClusterIPs)
	}
	if !reflect.DeepEqual(dns.ExternalIPs, []string{"203.0.113.1", "2001:db8::1"}) {
		t.Errorf("external IPs %v", dns.ExternalIPs)
	}
	if !reflect.DeepEqual(dns.LoadBalancerIPs, []string{"198.51.100.1"}) || dns.HostnameOnlyIngress != 1 {
		t.Errorf("LB IPs %v, hostname-only %d", dns.LoadBalancerIPs, dns.HostnameOnlyIngress)
	}
}
