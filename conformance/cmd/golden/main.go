// Command golden regenerates or checks the golden corpus (golden/<scenario>/)
// against the real kube-proxy v1.37.2 rule generators (conformance/oracle).
//
//	cd conformance
//	go run ./cmd/golden -update [scenario...]   # rewrite iptables.txt, iptables-restore.txt, nft.txt, ipvs.txt, PROVENANCE
//	go run ./cmd/golden -check  [scenario...]   # exit 1 if a committed expected file differs from kube-proxy's output now
//
// Scenarios default to every directory of golden/ with an input.yaml.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/svc2rules/svc2rules/conformance/internal/corpus"
)

func main() {
	os.Exit(run())
}

func run() int {
	update := flag.Bool("update", false, "regenerate the expected files and PROVENANCE of the scenarios")
	check := flag.Bool("check", false, "compare the committed expected files with kube-proxy's output; exit 1 on any difference")
	dir := flag.String("dir", "", "the golden directory (default: ../golden or golden, whichever exists)")
	diffLines := flag.Int("diff-lines", 30, "-check: diff lines shown per differing file (0: all)")
	all := flag.Bool("all", false, "-update: write all four expected files even for scenarios that have none of them (e.g. userspace-only ones)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: golden -update|-check [-dir DIR] [scenario...]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *update == *check {
		fmt.Fprintln(os.Stderr, "golden: give exactly one of -update or -check")
		flag.Usage()
		return 2
	}
	if *dir == "" {
		d, err := corpus.FindGoldenDir()
		if err != nil {
			fmt.Fprintf(os.Stderr, "golden: %v\n", err)
			return 2
		}
		*dir = d
	}
	scenarios, err := corpus.Load(*dir, flag.Args())
	if err != nil {
		fmt.Fprintf(os.Stderr, "golden: %v\n", err)
		return 2
	}
	start := time.Now()
	var files, changedFiles, changedScenarios, mismatches, staleProv, omitted, skipped int
	failed := map[string]bool{}
	for _, sc := range scenarios {
		g, err := corpus.Generate(sc, *all && *update)
		if err != nil {
			fmt.Fprintf(os.Stderr, "golden: %s: %v\n", sc.Name, err)
			failed[sc.Name] = true
			continue
		}
		if len(g) == 0 {
			skipped++ // no kube-proxy v1.37 expected files (e.g. userspace-only)
			continue
		}
		want := len(sc.Files)
		if *all && *update {
			want = len(corpus.Files)
		}
		files += len(g) - 1
		omitted += want - (len(g) - 1)
		if *update {
			changed, err := corpus.Write(sc, g)
			if err != nil {
				fmt.Fprintf(os.Stderr, "golden: %s: %v\n", sc.Name, err)
				failed[sc.Name] = true
				continue
			}
			if len(changed) > 0 {
				changedScenarios++
				changedFiles += len(changed)
				fmt.Printf("updated golden/%s: %s\n", sc.Name, strings.Join(changed, ", "))
			}
			continue
		}
		ms, err := corpus.Check(sc, g, *diffLines)
		if err != nil {
			fmt.Fprintf(os.Stderr, "golden: %s: %v\n", sc.Name, err)
			failed[sc.Name] = true
			continue
		}
		for _, m := range ms {
			mismatches++
			fmt.Printf("DIFFERS golden/%s/%s: %s\n", sc.Name, m.File, m.Summary)
			if m.Diff != "" {
				for _, l := range strings.Split(m.Diff, "\n") {
					fmt.Printf("    %s\n", l)
				}
			}
		}
		if old, err := os.ReadFile(filepath.Join(sc.Dir, corpus.Provenance)); err != nil || !bytes.Equal(old, g[corpus.Provenance]) {
			staleProv++
		}
	}
	el := time.Since(start).Round(10 * time.Millisecond)
	if *update {
		fmt.Printf("golden -update: %d scenarios, %d expected files from kube-proxy (%d omitted), %d files changed in %d scenarios, %d scenarios without v1.37 files skipped, %v\n",
			len(scenarios), files, omitted, changedFiles, changedScenarios, skipped, el)
	} else {
		fmt.Printf("golden -check: %d scenarios, %d expected files compared with kube-proxy, %d differ, %d scenarios without v1.37 files skipped, %v\n",
			len(scenarios), files, mismatches, skipped, el)
		if staleProv > 0 {
			fmt.Printf("note: %d PROVENANCE files are not the generator's (not a failure; -update rewrites them)\n", staleProv)
		}
		if mismatches > 0 {
			fmt.Println("the committed expected files are not what kube-proxy produces: fix the input/args, or run `go run ./cmd/golden -update` if kube-proxy's output is the intended truth")
		}
	}
	if len(failed) > 0 {
		return 2
	}
	if mismatches > 0 {
		return 1
	}
	return 0
}
