// Package gen writes realistic, deterministic Service + EndpointSlice
// inputs for benchmarks and performance figures (used by hack/gen and the
// benchmarks of compiler and the backends).
package gen

import (
	"bufio"
	"fmt"
	"io"
)

// Options shape the generated input. Zero "every" fields mean "none".
type Options struct {
	Services, Endpoints, Nodes                            int
	NodePortEvery, LBEvery, MultiportEvery, AffinityEvery int
	// JSON writes one JSON object per line instead of YAML documents.
	JSON bool
}

// Defaults are the mix hack/gen uses by default.
func Defaults(services, endpoints int) Options {
	return Options{Services: services, Endpoints: endpoints, Nodes: 10, NodePortEvery: 10, LBEvery: 25, MultiportEvery: 5, AffinityEvery: 7}
}

// Write writes the input to out.
func Write(out io.Writer, o Options) error {
	if o.Nodes < 1 {
		o.Nodes = 1
	}
	w := bufio.NewWriterSize(out, 1<<20)
	services, endpoints, nodes := &o.Services, &o.Endpoints, &o.Nodes
	nodePortEvery, lbEvery, multiEvery, affinityEvery := &o.NodePortEvery, &o.LBEvery, &o.MultiportEvery, &o.AffinityEvery
	format := "yaml"
	if o.JSON {
		format = "json"
	}
	fmtp := &format
	every := func(k, i int) bool { return k > 0 && i%k == 0 }
	// Node ports and health check node ports come from one counter, so no
	// two are equal (the API server, and svc2rules' allocation, reject
	// duplicates). Past 32767 (over about 13,000 Services with the default
	// mix) they leave the default range, which kube-proxy does not check.
	nodePort := 30000
	nextPort := func() int { nodePort++; return nodePort - 1 }
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
		if *fmtp == "json" {
			fmt.Fprintf(w, `{"apiVersion":"v1","kind":"Service","metadata":{"name":%q,"namespace":%q},"spec":{"type":%q,"clusterIP":%q`, name, ns, typ, cip)
			if typ == "LoadBalancer" {
				fmt.Fprintf(w, `,"externalTrafficPolicy":"Local","healthCheckNodePort":%d,"loadBalancerSourceRanges":["203.0.113.0/24"]`, nextPort())
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
					fmt.Fprintf(w, `,"nodePort":%d`, nextPort())
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
			fmt.Fprintf(w, "  externalTrafficPolicy: Local\n  healthCheckNodePort: %d\n  loadBalancerSourceRanges:\n  - 203.0.113.0/24\n", nextPort())
		}
		if every(*affinityEvery, i) {
			fmt.Fprint(w, "  sessionAffinity: ClientIP\n")
		}
		fmt.Fprintf(w, "  selector:\n    app: %s\n  ports:\n", name)
		for _, p := range ports {
			fmt.Fprintf(w, "  - name: %s\n    port: %d\n    protocol: %s\n    targetPort: %d\n", p.name, p.port, p.proto, 8000+p.port)
			if typ != "ClusterIP" {
				fmt.Fprintf(w, "    nodePort: %d\n", nextPort())
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
	return w.Flush()
}
