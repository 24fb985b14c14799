package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/svc2rules/svc2rules/internal/cli"
	"github.com/svc2rules/svc2rules/internal/explain"
)

func init() { subcommands = append(subcommands, newExplainCommand) }

func newExplainCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	o := cli.DefaultCompileOptions()
	var format string
	var rules bool
	cmd := &cobra.Command{
		Use:   "explain [ns/name[:port]...] -f PATH [flags]",
		Short: "Explain what kube-proxy does with a Service's ports on a node, and why",
		Long: `explain compiles the manifests for one node (the compile flags: --backend, --node-name,
--node-ip, --zone, --cluster-cidr, ...) and, for each port of the Services named (all of them
when none is), says:

  - the addresses involved: cluster IP, NodePort and the node addresses it answers on,
    external and load balancer IPs, the endpoints' pod IPs;
  - the policies (internal/external traffic policy, session affinity, topology);
  - which endpoints serve internal (cluster IP) and external (NodePort, external and load
    balancer IPs) traffic, with each one's share of new connections, and why every other
    endpoint is left out: not ready, terminating (only a fallback), hinted for another zone
    or node, on another node under a Local policy;
  - who is masqueraded, and what loadBalancerSourceRanges let through;
  - the chains, sets, map elements or virtual servers implementing it in the chosen backend,
    with kube-proxy's hashed names (--show-rules prints their rules).

Without --ip-family both families are explained where the Service has a cluster IP of it.
A Service is "ns/name" ("name" means namespace default), a port "ns/name:port" with the port's
name or number.`,
		Example: `  svc2rules explain shop/web -f manifests/ --node-name node1 --node-ip 192.168.0.10 --cluster-cidr 10.244.0.0/16
  svc2rules explain shop/web:https -f manifests/ -b nft --node-name node1 -o json
  svc2rules explain -f manifests/ -b ipvs --node-name node1 --show-rules`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "json" {
				return &cli.UsageError{Err: fmt.Errorf("-o must be text or json, not %q", format)}
			}
			if len(o.Files) == 0 {
				return &cli.UsageError{Err: errors.New("no input: give -f FILE, -f DIR or -f - (stdin)")}
			}
			if err := o.ApplyConfigFile(cmd.Flags()); err != nil {
				return err
			}
			var fams []string
			if cmd.Flags().Changed("ip-family") {
				f, err := o.Family()
				if err != nil {
					return err
				}
				fams = []string{map[bool]string{true: "ipv6", false: "ipv4"}[f == "IPv6"]}
			}
			rep, err := explain.Run(explain.Options{Compile: o, Families: fams, Services: args, Stdin: stdin})
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := explain.Write(&buf, format, rep, rules); err != nil {
				return err
			}
			_, err = stdout.Write(buf.Bytes())
			return err
		},
	}
	fs := cmd.Flags()
	all := pflag.NewFlagSet("compile", pflag.ContinueOnError)
	o.AddFlags(all)
	all.VisitAll(func(f *pflag.Flag) {
		if f.Name != "output" {
			fs.AddFlag(f)
		}
	})
	fs.StringVarP(&format, "output", "o", "text", "output format: text or json")
	fs.BoolVar(&rules, "show-rules", false, "text output: print every rule, element or entry of the objects listed")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(explain.Formats, cobra.ShellCompDirectiveNoFileComp))
	_ = stderr
	return cmd
}
