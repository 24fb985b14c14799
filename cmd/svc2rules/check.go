package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/svc2rules/svc2rules/compiler"
	"github.com/svc2rules/svc2rules/internal/check"
	"github.com/svc2rules/svc2rules/internal/cli"
)

func init() { subcommands = append(subcommands, newCheckCommand) }

// findingsError ends check with exit status 1 (warnings with --fail-on-warn)
// or 2 (errors; wrapped in a cli.UsageError so that run() exits 2). The
// report is on stdout already; ExitStatus lets run() exit without repeating it.
type findingsError struct {
	msg  string
	code int
}

func (e findingsError) Error() string   { return e.msg }
func (e findingsError) ExitStatus() int { return e.code }

// reuseFlags adds the named flags of "compile" (same names, meanings and
// defaults) to fs.
func reuseFlags(fs *pflag.FlagSet, o *cli.CompileOptions, names ...string) {
	all := pflag.NewFlagSet("compile", pflag.ContinueOnError)
	o.AddFlags(all)
	for _, n := range names {
		if f := all.Lookup(n); f != nil {
			fs.AddFlag(f)
		}
	}
}

func newCheckCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	o := cli.DefaultCompileOptions()
	var format string
	var failOnWarn bool
	var maxDocs int
	cmd := &cobra.Command{
		Use:   "check -f PATH [flags]",
		Short: "Report every problem of the manifests that matters to kube-proxy",
		Long: `check validates every Service, Endpoints, EndpointSlice, Node and ServiceCIDR as the
API server would, then looks at them together: duplicate ClusterIPs and node ports,
ports outside --service-node-port-range, ClusterIPs outside the service CIDRs,
endpoints of missing Services, Service ports no endpoint port matches (kube-proxy
REJECTs), Services without ready endpoints, traffic policy Local without an
endpoint on --node-name (kube-proxy DROPs), topology hints kube-proxy ignores.

Exit status: 0 no errors (warnings allowed), 1 warnings with --fail-on-warn,
2 errors, or check could not run (bad flag, missing file, input over a limit).
Rule IDs and formats: docs/check.md.`,
		Example: `  svc2rules check -f manifests/
  svc2rules check -f manifests/ -R --node-name node-a --service-cidrs 10.96.0.0/12 --fail-on-warn
  svc2rules check -f manifests/ -o sarif > check.sarif
  svc2rules check -f manifests/ -o github     # annotations in a GitHub Actions job`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(o.Files) == 0 {
				return &cli.UsageError{Err: errors.New("no input: give -f FILE, -f DIR or -f - (stdin)")}
			}
			known := false
			for _, f := range check.Formats {
				known = known || f == format
			}
			if !known {
				return &cli.UsageError{Err: fmt.Errorf("-o must be one of %s, not %q", strings.Join(check.Formats, ", "), format)}
			}
			if err := o.ApplyConfigFile(cmd.Flags()); err != nil {
				return err
			}
			r := check.DefaultPortRange
			if o.ServiceNodePortRange != "" {
				var err error
				if r, err = check.ParsePortRange(o.ServiceNodePortRange); err != nil {
					return &cli.UsageError{Err: fmt.Errorf("--service-node-port-range: %v", err)}
				}
				if _, err := compiler.ParsePortRange(o.ServiceNodePortRange); err != nil {
					return &cli.UsageError{Err: fmt.Errorf("--service-node-port-range: %v", err)}
				}
			}
			if _, err := compiler.ParseNodes(o.Nodes); err != nil {
				return &cli.UsageError{Err: fmt.Errorf("--nodes: %v", err)}
			}
			report, err := check.Run(check.Options{
				Files:         o.Files,
				Recursive:     o.Recursive,
				Stdin:         stdin,
				MaxDocuments:  maxDocs,
				NodeName:      o.NodeName,
				Zone:          o.Zone,
				NodeIPs:       o.NodeIPs,
				ServiceCIDRs:  o.ServiceCIDRs,
				NodePortRange: r,
				FeatureGates:  o.FeatureGates,

				NoAllocate:        o.NoAllocate,
				NodePortRangeFlag: o.ServiceNodePortRange,
				Nodes:             o.Nodes,
				PodCIDRs:          o.ClusterCIDRs,
			})
			if err != nil {
				// check could not run: exit 2, like a finding of severity error.
				return &cli.UsageError{Err: err}
			}
			var buf bytes.Buffer
			if err := check.Write(&buf, format, report, failOnWarn); err != nil {
				return err
			}
			if _, err := stdout.Write(buf.Bytes()); err != nil {
				return err
			}
			switch {
			case report.Count(check.Error) > 0:
				return &cli.UsageError{Err: findingsError{"check failed: " + report.Summary(), 2}}
			case failOnWarn && report.Count(check.Warning) > 0:
				return findingsError{"check failed (--fail-on-warn): " + report.Summary(), 1}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	reuseFlags(fs, &o, "filename", "recursive", "node-name", "node-ip", "zone", "service-cidrs", "feature-gates", "config",
		"service-node-port-range", "no-allocate", "nodes", "cluster-cidr")
	fs.StringVarP(&format, "output", "o", "text", "output format: "+strings.Join(check.Formats, ", "))
	fs.BoolVar(&failOnWarn, "fail-on-warn", false, "exit 1 when there are warnings (and no errors)")
	fs.IntVar(&maxDocs, "max-documents", compiler.DefaultMaxDocuments, "refuse input of more documents and List items than this")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(check.Formats, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	return cmd
}
