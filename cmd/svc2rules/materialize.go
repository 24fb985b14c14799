package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/svc2rules/svc2rules/internal/cli"
)

func init() { subcommands = append(subcommands, newMaterializeCommand) }

func newMaterializeCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	o := cli.DefaultCompileOptions()
	cmd := &cobra.Command{
		Use:   "materialize -f PATH [flags]",
		Short: "Print the objects kube-proxy would read: manifests after allocation and endpoint derivation",
		Long: `materialize prints, as YAML, the cluster that compile compiles: the manifests as the API
server would store them (ClusterIPs, nodePorts and healthCheckNodePorts allocated,
deterministically and stably, from --service-cidrs and --service-node-port-range),
EndpointSlices the EndpointSlice controller would write for Services with a selector
and no endpoints in the input (from the pods of the input's Deployments, ReplicaSets,
StatefulSets, DaemonSets, ReplicationControllers, Jobs, CronJobs and Pods, spread
over --nodes, addressed from --cluster-cidr), and the assumed nodes. Every assumed
value is marked with a "# svc2rules:" comment. compile on this output gives the same
rules as compile on the manifests.

It takes every flag of compile (the same args files work); only the input flags,
--service-cidrs, --service-node-port-range, --nodes, --cluster-cidr, --node-name,
--node-ip, --zone and --no-allocate change what it prints.`,
		Example: `  svc2rules materialize -f examples/git-app/
  svc2rules materialize -f app/ -R --nodes node-a=zone-1,node-b=zone-2 --cluster-cidr 10.244.0.0/16 -o cluster.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(o.Files) == 0 {
				return &cli.UsageError{Err: errors.New("no input: give -f FILE, -f DIR or -f - (stdin)")}
			}
			if err := o.ApplyConfigFile(cmd.Flags()); err != nil {
				return err
			}
			res, err := cli.Materialize(o, stdin)
			if err != nil {
				return err
			}
			for _, n := range res.Notes {
				fmt.Fprintf(stderr, "svc2rules: note: %s\n", n)
			}
			return cli.WriteOutput(o.Output, res.Output, stdout)
		},
	}
	o.AddFlags(cmd.Flags())
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml", "json")
	return cmd
}
