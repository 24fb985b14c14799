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
	"flag"
	"fmt"
	"os"

	"github.com/svc2rules/svc2rules/internal/gen"
)

func main() {
	d := gen.Defaults(1000, 10)
	flag.IntVar(&d.Services, "services", d.Services, "number of Services")
	flag.IntVar(&d.Endpoints, "endpoints", d.Endpoints, "endpoints per Service")
	flag.IntVar(&d.Nodes, "nodes", d.Nodes, "nodes the endpoints are spread over (node-1 ... node-N)")
	flag.IntVar(&d.NodePortEvery, "nodeport-every", d.NodePortEvery, "every K-th Service is a NodePort (0: none)")
	flag.IntVar(&d.LBEvery, "lb-every", d.LBEvery, "every K-th Service is a LoadBalancer with externalTrafficPolicy Local (0: none)")
	flag.IntVar(&d.MultiportEvery, "multiport-every", d.MultiportEvery, "every K-th Service has a second, UDP port (0: none)")
	flag.IntVar(&d.AffinityEvery, "affinity-every", d.AffinityEvery, "every K-th Service has ClientIP affinity (0: none)")
	format := flag.String("format", "yaml", "yaml or json (one JSON object per line)")
	flag.Parse()
	if d.Services < 0 || d.Services > 1_000_000 || d.Endpoints < 0 || d.Endpoints > 1000 || d.Nodes < 1 || (*format != "yaml" && *format != "json") {
		fmt.Fprintln(os.Stderr, "gen: out-of-range arguments")
		os.Exit(2)
	}
	d.JSON = *format == "json"
	if err := gen.Write(os.Stdout, d); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
