// Command svc2rules compiles Kubernetes Service, Endpoints and EndpointSlice
// manifests, offline, into the rules kube-proxy v1.37.2 programs on a node.
// This file is cobra wiring only; the work is in internal/cli, compiler and
// backends.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/svc2rules/svc2rules/internal/cli"
)

func main() {
	tuneGC()
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit status:
// 0 success, 1 failure (bad input, I/O), 2 usage error.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCommand(stdin, stdout, stderr)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var st interface{ ExitStatus() int }
	if errors.As(err, &st) {
		return st.ExitStatus() // check's findings, diff's changes: reported on stdout
	}
	fmt.Fprintf(stderr, "svc2rules: error: %v\n", err)
	var ue *cli.UsageError
	if errors.As(err, &ue) || isFlagError(err) {
		return 2
	}
	return 1
}

type flagError struct{ error }

func isFlagError(err error) bool {
	var fe flagError
	return errors.As(err, &fe)
}

func newRootCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "svc2rules",
		Short: "Compile Kubernetes Services into the rules kube-proxy programs",
		Long: `svc2rules reads Service, Endpoints and EndpointSlice manifests offline (no cluster)
and prints exactly the rules kube-proxy ` + cli.KubeProxyVersion + ` would program on a node:
an iptables-save script, an IPVS bundle or an nft -f script.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return flagError{err} })
	root.AddCommand(newCompileCommand(stdin, stdout, stderr), newVersionCommand(stdout))
	for _, newCmd := range subcommands {
		root.AddCommand(newCmd(stdin, stdout, stderr))
	}
	return root
}

// subcommands are the further commands; each lives in its own file and adds
// its constructor here from an init function, so commands can be added
// without touching this file.
var subcommands []func(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command

func newCompileCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	o := cli.DefaultCompileOptions()
	cmd := &cobra.Command{
		Use:   "compile -f PATH [flags]",
		Short: "Print the rules kube-proxy would program for the manifests",
		Example: `  svc2rules compile -f examples/
  svc2rules compile -f svc.yaml --node-name node1 --node-ip 192.168.0.2 --cluster-cidr 10.244.0.0/16
  svc2rules compile -f - -b iptables --iptables-view restore < svc.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(o.Files) == 0 {
				return &cli.UsageError{Err: errors.New("no input: give -f FILE, -f DIR or -f - (stdin)")}
			}
			if err := o.ApplyConfigFile(cmd.Flags()); err != nil {
				return err
			}
			res, err := cli.Compile(o, stdin)
			if err != nil {
				return err
			}
			for _, n := range res.Notes {
				fmt.Fprintf(stderr, "svc2rules: note: %s\n", n)
			}
			return cli.WriteResult(o, res, stdout, stderr)
		},
	}
	o.AddFlags(cmd.Flags())
	_ = cmd.RegisterFlagCompletionFunc("backend", cobra.FixedCompletions([]string{"iptables", "nft", "ipvs", "userspace"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("ip-family", cobra.FixedCompletions([]string{"ipv4", "ipv6"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("iptables-view", cobra.FixedCompletions([]string{"save", "restore"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("nft-view", cobra.FixedCompletions([]string{"dump", "transaction"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("ipvs-section", cobra.FixedCompletions([]string{"ipvsadm", "ipset", "addresses", "iptables"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("userspace-section", cobra.FixedCompletions([]string{"rules", "table"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("detect-local-mode", cobra.FixedCompletions([]string{"ClusterCIDR", "NodeCIDR", "BridgeInterface", "InterfaceNamePrefix", "None"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml", "json")
	return cmd
}

func newVersionCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the svc2rules version and the kube-proxy version it reproduces",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(stdout, "svc2rules %s (kube-proxy %s rules)\n", cli.Version(), cli.KubeProxyVersion)
			return err
		},
	}
}
