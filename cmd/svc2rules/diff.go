package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/svc2rules/svc2rules/internal/cli"
	"github.com/svc2rules/svc2rules/internal/diff"
)

func init() { subcommands = append(subcommands, newDiffCommand) }

// diffChanged ends diff with exit status 1 (changes found), as kubectl diff.
// The report is on stdout already; ExitStatus lets run() exit without more.
type diffChanged struct{ summary string }

func (e diffChanged) Error() string   { return "differences found (exit status 1): " + e.summary }
func (e diffChanged) ExitStatus() int { return 1 }

func newDiffCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	o := cli.DefaultCompileOptions()
	var format, vsBackend string
	cmd := &cobra.Command{
		Use:   "diff OLD NEW [flags]",
		Short: "Show what a change of manifests (or of proxy mode) does to a node's rules",
		Long: `diff compiles two manifest sets (files or directories, e.g. a pull request's base and
head) for the same backend and node settings, and reports per service port what is
added, removed or changed: endpoints, load-balancing shares, policies, and what traffic
starts to be REJECTED, DROPPED or becomes unreachable. Then the unified diff of the rules,
kube-proxy's hashed chain names annotated with their service.

With --vs-backend it compiles one manifest set for two backends instead: what changes
on a node when it migrates proxy modes (e.g. --backend iptables --vs-backend nft).

Exit status (as kubectl diff): 0 no change, 1 changes, 2 or more an error.`,
		Example: `  svc2rules diff base/ head/ --node-name node-a --node-ip 192.168.0.10
  svc2rules diff base/ head/ -o markdown > comment.md
  svc2rules diff manifests/ --backend iptables --vs-backend nft`,
		RunE: func(cmd *cobra.Command, args []string) error {
			known := false
			for _, f := range diff.Formats {
				known = known || f == format
			}
			if !known {
				return &cli.UsageError{Err: fmt.Errorf("-o must be one of %s, not %q", strings.Join(diff.Formats, ", "), format)}
			}
			opts := diff.Options{VsBackend: vsBackend, Stdin: stdin}
			if vsBackend != "" {
				if len(args) != 1 {
					return &cli.UsageError{Err: errors.New("--vs-backend compares one manifest set: give exactly one PATH")}
				}
				opts.Old = []string{args[0]}
			} else {
				if len(args) != 2 {
					return &cli.UsageError{Err: errors.New("give OLD and NEW (files or directories)")}
				}
				opts.Old, opts.New = []string{args[0]}, []string{args[1]}
			}
			if err := o.ApplyConfigFile(cmd.Flags()); err != nil {
				return err
			}
			opts.Compile = o
			r, err := diff.Run(opts)
			if err != nil {
				// Errors exit 2: 1 means "changes".
				var ue *cli.UsageError
				if !errors.As(err, &ue) {
					err = &cli.UsageError{Err: err}
				}
				return err
			}
			var buf bytes.Buffer
			if err := diff.Write(&buf, format, r); err != nil {
				return &cli.UsageError{Err: err}
			}
			if _, err := stdout.Write(buf.Bytes()); err != nil {
				return &cli.UsageError{Err: err}
			}
			if r.Changed() {
				return diffChanged{fmt.Sprintf("%d service ports changed, +%d -%d rule lines", len(r.Ports), r.Rules.Added, r.Rules.Removed)}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	all := pflag.NewFlagSet("compile", pflag.ContinueOnError)
	o.AddFlags(all)
	all.VisitAll(func(f *pflag.Flag) {
		if f.Name != "filename" && f.Name != "output" {
			fs.AddFlag(f)
		}
	})
	fs.StringVarP(&format, "output", "o", "text", "output format: "+strings.Join(diff.Formats, ", ")+" (markdown fits a pull-request comment)")
	fs.StringVar(&vsBackend, "vs-backend", "", "compare --backend with this backend on one manifest set")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(diff.Formats, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("vs-backend", cobra.FixedCompletions([]string{"iptables", "nft", "ipvs"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
