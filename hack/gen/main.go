// Command gen writes a realistic, deterministic input for benchmarks and for
// anyone reproducing svc2rules' performance figures:
//
//	go run ./hack/gen -services 10000 -endpoints 10 > big.yaml
//
// Every Service gets one EndpointSlice. The mix: mostly ClusterIP, every
// -nodeport-every-th NodePort, every -lb-every-th LoadBalancer with
// externalTrafficPolicy Local and a source range, every -multiport-every-th
// with a second (UDP) port, every -affinity-every-th with ClientIP affinity;
// endpoints spread round-robin over -nodes nodes (node-1 is "this" node),
// every 20th endpoint not ready.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
)

func main() {
	services := flag.Int("services", 1000, "number of Services")
	endpoints := flag.Int("endpoints", 10, "endpoints per Service")
	nodes := flag.Int("nodes", 10, "nodes the endpoints are spread over (node-1 ... node-N)")
	nodePortEvery := flag.Int("nodeport-every", 10, "every K-th Service is a NodePort (0: none)")
	lbEvery := flag.Int("lb-every", 25, "every K-th Service is a LoadBalancer with externalTrafficPolicy Local (0: none)")
	multiEvery := flag.Int("multiport-every", 5, "every K-th Service has a second, UDP port (0: none)")
	affinityEvery := flag.Int("affinity-every", 7, "every K-th Service has ClientIP affinity (0: none)")
	format := flag.String("format", "yaml", "yaml or json (one JSON object per line)")
	flag.Parse()
	if *services < 0 || *services > 1_000_000 || *endpoints < 0 || *endpoints > 1000 || *nodes < 1 {
		fmt.Fprintln(os.Stderr, "gen: out-of-range arguments")
		os.Exit(2)
	}
	every := func(k, i int) bool { return k > 0 && i%k == 0 }
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer w.Flush()
	nodePort := 30000
	for i := 0; i < *services; i++ {
		ns := fmt.Sprintf("ns-%d", i%50)
		name := fmt.Sprintf("svc-%d", i)
		a := i + 1
		cip := fmt.Sprintf("10.%d.%d.%d", 96+(a>>16)&0x0f, (a>>8)&0xff, a&0xff)
		typ := "ClusterIP"
		switch {
		case every(*lbEvery, i):
			typ = "LoadBalancer"
		case every(*nodePortEvery, i):
			typ = "NodePort"
		}
		multi := every(*multiEvery, i)
		ports := []struct {
			name, proto string
			port        int
		}{{"http", "TCP", 80}}
		if multi {
			ports = append(ports, struct {
				name, proto string
				port        int
			}{"dns", "UDP", 53})
		}
		if *format == "json" {
			fmt.Fprintf(w, `{"apiVersion":"v1","kind":"Service","metadata":{"name":%q,"namespace":%q},"spec":{"type":%q,"clusterIP":%q`, name, ns, typ, cip)
			if typ == "LoadBalancer" {
				fmt.Fprintf(w, `,"externalTrafficPolicy":"Local","healthCheckNodePort":%d,"loadBalancerSourceRanges":["203.0.113.0/24"]`, 32767-i%767)
			}
			if every(*affinityEvery, i) {
				fmt.Fprint(w, `,"sessionAffinity":"ClientIP"`)
			}
			fmt.Fprint(w, `,"ports":[`)
			for j, p := range ports {
				if j > 0 {
					fmt.Fprint(w, ",")
				}
				fmt.Fprintf(w, `{"name":%q,"port":%d,"protocol":%q,"targetPort":%d`, p.name, p.port, p.proto, 8000+p.port)
				if typ != "ClusterIP" {
					fmt.Fprintf(w, `,"nodePort":%d`, 30000+(nodePort-30000)%2768)
					nodePort++
				}
				fmt.Fprint(w, "}")
			}
			fmt.Fprint(w, "]}")
			if typ == "LoadBalancer" {
				fmt.Fprintf(w, `,"status":{"loadBalancer":{"ingress":[{"ip":"198.51.%d.%d"}]}}`, (a>>8)&0xff, a&0xff)
			}
			fmt.Fprintln(w, "}")
			fmt.Fprintf(w, `{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"%s-abc","namespace":%q,"labels":{"kubernetes.io/service-name":%q}},"addressType":"IPv4","ports":[`, name, ns, name)
			for j, p := range ports {
				if j > 0 {
					fmt.Fprint(w, ",")
				}
				fmt.Fprintf(w, `{"name":%q,"port":%d,"protocol":%q}`, p.name, 8000+p.port, p.proto)
			}
			fmt.Fprint(w, `],"endpoints":[`)
			for e := 0; e < *endpoints; e++ {
				if e > 0 {
					fmt.Fprint(w, ",")
				}
				idx := i**endpoints + e
				fmt.Fprintf(w, `{"addresses":["10.%d.%d.%d"],"conditions":{"ready":%t},"nodeName":"node-%d"}`, 128+(idx>>16)&0x7f, (idx>>8)&0xff, idx&0xff, idx%20 != 19, 1+idx%*nodes)
			}
			fmt.Fprintln(w, "]}")
			continue
		}
		fmt.Fprintf(w, "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  type: %s\n  clusterIP: %s\n", name, ns, typ, cip)
		if typ == "LoadBalancer" {
			fmt.Fprintf(w, "  externalTrafficPolicy: Local\n  healthCheckNodePort: %d\n  loadBalancerSourceRanges:\n  - 203.0.113.0/24\n", 32767-i%767)
		}
		if every(*affinityEvery, i) {
			fmt.Fprint(w, "  sessionAffinity: ClientIP\n")
		}
		fmt.Fprintf(w, "  selector:\n    app: %s\n  ports:\n", name)
		for _, p := range ports {
			fmt.Fprintf(w, "  - name: %s\n    port: %d\n    protocol: %s\n    targetPort: %d\n", p.name, p.port, p.proto, 8000+p.port)
			if typ != "ClusterIP" {
				fmt.Fprintf(w, "    nodePort: %d\n", 30000+(nodePort-30000)%2768)
				nodePort++
			}
		}
		if typ == "LoadBalancer" {
			fmt.Fprintf(w, "status:\n  loadBalancer:\n    ingress:\n    - ip: 198.51.%d.%d\n", (a>>8)&0xff, a&0xff)
		}
		fmt.Fprintf(w, "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: %s-abc\n  namespace: %s\n  labels:\n    kubernetes.io/service-name: %s\naddressType: IPv4\nports:\n", name, ns, name)
		for _, p := range ports {
			fmt.Fprintf(w, "- name: %s\n  port: %d\n  protocol: %s\n", p.name, 8000+p.port, p.proto)
		}
		fmt.Fprint(w, "endpoints:\n")
		for e := 0; e < *endpoints; e++ {
			idx := i**endpoints + e
			fmt.Fprintf(w, "- addresses:\n  - 10.%d.%d.%d\n  conditions:\n    ready: %t\n  nodeName: node-%d\n", 128+(idx>>16)&0x7f, (idx>>8)&0xff, idx&0xff, idx%20 != 19, 1+idx%*nodes)
		}
	}
}
