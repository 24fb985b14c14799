package cli

import (
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/svc2rules/svc2rules/compiler"
)

// MaterializeFlags are the flags that describe the cluster the manifests
// would produce: what the API server allocates and where the workloads' pods
// run. They are part of CompileOptions (compile and materialize share them).
type MaterializeFlags struct {
	NoAllocate           bool
	ServiceNodePortRange string
	Nodes                []string
}

func (o *CompileOptions) addMaterializeFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.NoAllocate, "no-allocate", o.NoAllocate, "take the input as a cluster snapshot: allocate no ClusterIP, nodePort or healthCheckNodePort and derive no endpoints from workloads (a Service without a ClusterIP is then skipped, as kube-proxy skips it)")
	fs.StringVar(&o.ServiceNodePortRange, "service-node-port-range", o.ServiceNodePortRange, "kube-apiserver --service-node-port-range: where missing nodePorts and healthCheckNodePorts are allocated (default "+compiler.DefaultNodePortRange+")")
	fs.Var(newListValue(&o.Nodes), "nodes", "the cluster's nodes, NAME or NAME=ZONE, over which the workloads' pods are spread (default node-1=zone-a,node-2=zone-b,node-3=zone-c)")
}

// materializeOptions maps the flags to the compiler's. --service-cidrs are
// the allocation ranges (empty: the input's ServiceCIDR objects, else
// 10.96.0.0/12 and fd00:10:96::/112, for allocation only); --cluster-cidr is
// the pod network.
func (o *CompileOptions) materializeOptions() compiler.MaterializeOptions {
	return compiler.MaterializeOptions{
		NoAllocate:    o.NoAllocate,
		ServiceCIDRs:  o.ServiceCIDRs,
		NodePortRange: o.ServiceNodePortRange,
		Nodes:         o.Nodes,
		PodCIDRs:      o.ClusterCIDRs,
		NodeName:      o.NodeName,
		NodeIPs:       o.NodeIPs,
		Zone:          o.Zone,
	}
}

// validateMaterializeFlags checks the flag values (usage errors, exit 2).
func (o *CompileOptions) validateMaterializeFlags() error {
	if _, err := compiler.ParsePortRange(o.ServiceNodePortRange); err != nil {
		return usageErr("--service-node-port-range: %v", err)
	}
	if _, err := compiler.ParseNodes(o.Nodes); err != nil {
		return usageErr("--nodes: %v", err)
	}
	return nil
}

// allocationHeader is the comment line put before the rules when svc2rules
// assumed values the input did not hold ("" otherwise, so the output of a
// complete input is unchanged). iptables-restore, nft -f and sh read it as a
// comment.
func allocationHeader(m *compiler.Materialized) string {
	if !m.Assumed() {
		return ""
	}
	return "# svc2rules: " + m.Summary() + " (see svc2rules materialize)\n"
}

// MaterializeResult is the cluster the manifests would produce, as YAML.
type MaterializeResult struct {
	Output       string
	Notes        []compiler.Note
	Materialized *compiler.Materialized
}

// Materialize runs load → normalise → allocate → derive and prints the
// objects kube-proxy would read, as YAML.
func Materialize(o CompileOptions, stdin io.Reader) (*MaterializeResult, error) {
	if err := validateIPs("node-ip", o.NodeIPs); err != nil {
		return nil, err
	}
	if err := validateCIDRs("cluster-cidr", o.ClusterCIDRs); err != nil {
		return nil, err
	}
	if err := validateCIDRs("service-cidrs", o.ServiceCIDRs); err != nil {
		return nil, err
	}
	if err := o.validateMaterializeFlags(); err != nil {
		return nil, err
	}
	in, err := compiler.Load(compiler.LoadOptions{Paths: o.Files, Recursive: o.Recursive, Stdin: stdin})
	if err != nil {
		return nil, err
	}
	notes, m, err := compiler.Materialize(in, o.materializeOptions())
	if err != nil {
		return nil, err
	}
	header := []string{
		"svc2rules materialize: the objects kube-proxy " + KubeProxyVersion + " would read once the API server",
		"and the controllers have processed the manifests (workloads are not printed: their pods are the derived endpoints).",
	}
	if s := m.Summary(); s != "" {
		header = append(header, "Assumed: "+s+".")
	} else if o.NoAllocate {
		header = append(header, "Assumed: nothing (--no-allocate).")
	} else {
		header = append(header, "Assumed: nothing (the manifests were complete).")
	}
	y, err := m.YAML(header)
	if err != nil {
		return nil, err
	}
	return &MaterializeResult{Output: string(y), Notes: notes, Materialized: m}, nil
}

// withAllocationHeader puts allocationHeader on outputs that read '#' as a
// comment, so a reader sees that values were assumed. The views that promise
// kube-proxy's exact bytes (--iptables-view restore, --nft-view transaction)
// stay exact: for them the notes on stderr say it. In the ipvs sh script the
// header goes after the "#!" line.
func withAllocationHeader(o CompileOptions, m *compiler.Materialized, out string) string {
	h := allocationHeader(m)
	if h == "" {
		return out
	}
	switch o.Backend {
	case "iptables":
		if o.IPTablesView == "restore" {
			return out
		}
	case "nft":
		if o.NFTView == "transaction" {
			return out
		}
	case "ipvs":
		switch o.IPVSSection {
		case "":
			if strings.HasPrefix(out, "#!") {
				if i := strings.IndexByte(out, '\n'); i >= 0 {
					return out[:i+1] + h + out[i+1:]
				}
			}
		case "iptables":
			if o.IPTablesView == "restore" {
				return out
			}
		default:
			return out
		}
	default:
		return out
	}
	return h + out
}
