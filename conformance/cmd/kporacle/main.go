// Command kporacle runs the real kube-proxy v1.37.2 rule generators offline on
// svc2rules' input and settings and prints the rules in svc2rules' output form.
//
//	kporacle -b iptables|nft|ipvs [--iptables-view save|restore] [svc2rules compile flags] -f input.yaml
//	kporacle -b nft --scenario ../golden/overall        (input.yaml + args of a golden scenario)
//
// The compile flags are svc2rules' (--ip-family, --node-name, --node-ip, ...),
// with svc2rules' defaults; --args FILE reads them from an args file (one per
// line, # comments), flags on the command line override it.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/svc2rules/svc2rules/conformance/oracle"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var (
		backend, view, argsFile, scenario string
		files                             []string
		strict, timing                    bool
		verbosity                         int
	)
	fs := pflag.NewFlagSet("kporacle", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVarP(&backend, "backend", "b", "iptables", "iptables | nft | ipvs")
	fs.StringVar(&view, "iptables-view", "save", "iptables/ipvs: save (full iptables-save state) | restore (the iptables-restore payload)")
	fs.StringVar(&argsFile, "args", "", "read compile flags from this args file (one --flag=value per line, # comments); command-line flags override")
	fs.StringVar(&scenario, "scenario", "", "a golden scenario directory: -f DIR/input.yaml --args DIR/args")
	fs.StringArrayVarP(&files, "filename", "f", nil, "input file (repeatable; - = stdin)")
	fs.BoolVar(&strict, "strict-mirroring", false, "mirror Endpoints only when the mirroring controller would")
	fs.BoolVar(&timing, "timing", false, "print timings to stderr")
	fs.IntVarP(&verbosity, "v", "v", -1, "kube-proxy's klog verbosity on stderr (-1: discard)")
	settings := oracle.DefaultSettings()
	settings.AddFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "kporacle: kube-proxy %s rule generation, offline, with svc2rules' flags and output forms.\n\n"+
			"Usage: kporacle -b iptables|nft|ipvs [flags] -f input.yaml\n       kporacle -b BACKEND --scenario golden/NAME\n\nFlags:\n", oracle.KubernetesVersion)
		fs.PrintDefaults()
	}
	if err := fs.Parse(argv); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kporacle: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if scenario != "" {
		files = append(files, filepath.Join(scenario, "input.yaml"))
		if argsFile == "" {
			argsFile = filepath.Join(scenario, "args")
		}
	}
	if argsFile != "" {
		// Re-parse: args file first, then the command line over it.
		data, err := os.ReadFile(argsFile)
		if err != nil && !(scenario != "" && os.IsNotExist(err)) {
			fmt.Fprintf(stderr, "kporacle: %v\n", err)
			return 2
		}
		settings = oracle.DefaultSettings()
		fs2 := pflag.NewFlagSet("kporacle", pflag.ContinueOnError)
		fs2.SetOutput(stderr)
		settings.AddFlags(fs2)
		if err := fs2.Parse(oracle.SplitArgsFile(data)); err != nil {
			fmt.Fprintf(stderr, "kporacle: %s: %v\n", argsFile, err)
			return 2
		}
		fs.VisitAll(func(f *pflag.Flag) {
			if f.Changed && fs2.Lookup(f.Name) != nil {
				_ = fs2.Set(f.Name, f.Value.String())
			}
		})
		settings.AfterParse(fs2)
	} else {
		settings.AfterParse(fs)
	}
	if len(files) == 0 {
		fmt.Fprintf(stderr, "kporacle: no input (-f FILE or --scenario DIR)\n")
		return 2
	}
	var input bytes.Buffer
	for _, f := range files {
		var data []byte
		var err error
		if f == "-" {
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "kporacle: %v\n", err)
			return 1
		}
		if input.Len() > 0 {
			input.WriteString("\n---\n")
		}
		input.Write(data)
	}
	start := time.Now()
	res, err := oracle.Run(backend, settings, input.Bytes(), oracle.RunOptions{
		IPTablesView:    view,
		StrictMirroring: strict,
		Verbosity:       verbosity,
		LogOutput:       stderr,
	})
	if err != nil {
		fmt.Fprintf(stderr, "kporacle: %v\n", strings.TrimSpace(err.Error()))
		return 1
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(stderr, "kporacle: skipped %s\n", s)
	}
	if _, err := io.WriteString(stdout, res.Output); err != nil {
		fmt.Fprintf(stderr, "kporacle: %v\n", err)
		return 1
	}
	if timing {
		fmt.Fprintf(stderr, "kporacle: backend=%s endpoints=%d sync=%v total=%v\n", backend, res.NumEndpoints,
			res.Sync.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	}
	return 0
}
