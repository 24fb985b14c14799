// Command difftest is the differential random test: it generates random,
// API-valid Services / EndpointSlices / Endpoints / Nodes / ServiceCIDRs and
// compile settings, compiles each case with svc2rules and with kube-proxy
// v1.37.2 (the oracle), and compares per backend with internal/canon.
//
//	cd conformance
//	go run ./cmd/difftest                     # CI: seed 1, 300 cases, every implemented backend
//	go run ./cmd/difftest -seed 42 -n 20000   # exploration
//	go run ./cmd/difftest -seed 42 -case 117  # one case (shrunk and printed if it fails)
//	go run ./cmd/difftest -seed 42 -case 117 -save diff-seed42-case117   # ... saved as golden/<name>
//
// A failing case is shrunk (greedy removal of objects, endpoints, ports,
// fields and settings while the same backend keeps failing the same way) and
// printed as args + input.yaml. Exit status: 0 all equal, 1 mismatches, 2 usage.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/svc2rules/svc2rules/conformance/internal/corpus"
	"github.com/svc2rules/svc2rules/conformance/internal/diff"
	"github.com/svc2rules/svc2rules/conformance/internal/gen"
	"github.com/svc2rules/svc2rules/conformance/oracle"
)

func main() { os.Exit(run()) }

func run() int {
	seed := flag.Uint64("seed", 1, "random seed")
	n := flag.Int("n", 300, "number of cases")
	one := flag.Int("case", -1, "run only this case index of -seed")
	backendsFlag := flag.String("backends", "iptables,nft,ipvs", "backends to compare (those svc2rules does not implement are skipped)")
	shrink := flag.Bool("shrink", true, "shrink failing cases to a minimal reproduction")
	maxShrink := flag.Int("max-shrink", 3, "shrink and print at most this many failing cases (the rest are listed)")
	save := flag.String("save", "", "with -case: save the (shrunk) failing case as golden/NAME (input.yaml, args and kube-proxy's expected files)")
	dir := flag.String("dir", "", "golden directory for -save (default ../golden)")
	print := flag.Bool("print", false, "print the case (args and input) even if it passes (with -case)")
	verbose := flag.Bool("v", false, "one line per case")
	without := flag.String("without", "", "leave these generator features out (comma list; -without help lists them)")
	flag.Parse()
	opt := gen.Options{Without: map[string]bool{}}
	for _, f := range strings.Split(*without, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if _, ok := gen.Features[f]; !ok {
			var names []string
			for n, d := range gen.Features {
				names = append(names, fmt.Sprintf("  %-13s %s", n, d))
			}
			sort.Strings(names)
			fmt.Fprintf(os.Stderr, "difftest: features for -without:\n%s\n", strings.Join(names, "\n"))
			if f == "help" {
				return 0
			}
			return 2
		}
		opt.Without[f] = true
	}
	if *save != "" && *one < 0 {
		fmt.Fprintln(os.Stderr, "difftest: -save needs -case")
		return 2
	}

	var backends []string
	for _, b := range strings.Split(*backendsFlag, ",") {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		ok, err := diff.Implemented(b)
		if !ok {
			fmt.Printf("difftest: skipping backend %s: svc2rules: %v\n", b, err)
			continue
		}
		backends = append(backends, b)
	}
	if len(backends) == 0 {
		fmt.Println("difftest: no backend to compare")
		return 0
	}

	first, last := 0, *n
	if *one >= 0 {
		first, last = *one, *one+1
	}
	start := time.Now()
	counts := map[string]map[diff.Kind]int{}
	for _, b := range backends {
		counts[b] = map[diff.Kind]int{}
	}
	type failure struct {
		index   int
		outcome diff.Outcome
	}
	var failures []failure
	for i := first; i < last; i++ {
		c := gen.GenerateWith(*seed, i, opt)
		input := c.Render()
		var line []string
		for _, b := range backends {
			o := diff.Compare(b, c.Settings, input)
			counts[b][o.Kind]++
			line = append(line, b+"="+string(o.Kind))
			if o.Failed() {
				failures = append(failures, failure{i, o})
			}
		}
		if *verbose {
			fmt.Printf("case %d: %s (%s)\n", i, strings.Join(line, " "), c.Summary())
		}
		if *print && *one >= 0 {
			printCase(c)
		}
	}
	elapsed := time.Since(start)

	// Shrink and print the first failures.
	shown := 0
	byIndex := map[int][]diff.Outcome{}
	for _, f := range failures {
		byIndex[f.index] = append(byIndex[f.index], f.outcome)
	}
	var idx []int
	for i := range byIndex {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		outs := byIndex[i]
		if shown >= *maxShrink {
			var parts []string
			for _, o := range outs {
				parts = append(parts, o.Backend+" "+string(o.Kind)+" ("+o.Part+")")
			}
			fmt.Printf("FAIL case %d: %s (reproduce: go run ./cmd/difftest -seed %d -case %d%s)\n", i, strings.Join(parts, ", "), *seed, i, map[bool]string{true: " -without " + *without}[*without != ""])
			continue
		}
		shown++
		o := outs[0]
		c := gen.GenerateWith(*seed, i, opt)
		fmt.Printf("\n=== FAIL seed %d case %d: %s %s (%s); %d backend(s) fail on this case\n", *seed, i, o.Backend, o.Kind, o.Part, len(outs))
		fmt.Printf("original: %s\n", c.Summary())
		if *shrink {
			sig := o.Signature()
			t0 := time.Now()
			small, checks := gen.Shrink(c, func(x *gen.Case) bool {
				return diff.Compare(o.Backend, x.Settings, x.Render()).Signature() == sig
			}, 0)
			c = small
			o = diff.Compare(o.Backend, c.Settings, c.Render())
			fmt.Printf("shrunk in %d checks (%v) to: %s\n", checks, time.Since(t0).Round(time.Millisecond), c.Summary())
		}
		printCase(c)
		fmt.Printf("--- %s %s: %s (kube-proxy = -, svc2rules = +)\n%s\n", o.Backend, o.Part, o.Kind, truncate(o.Detail, 60))
		wo := ""
		if *without != "" {
			wo = " -without " + *without
		}
		fmt.Printf("--- reproduce: go run ./cmd/difftest -seed %d -case %d%s\n", *seed, i, wo)
		fmt.Printf("--- save as a golden scenario: go run ./cmd/difftest -seed %d -case %d%s -save diff-s%d-c%d\n", *seed, i, wo, *seed, i)
		if *save != "" {
			if err := saveCase(*dir, *save, c, *seed, i, *without, o); err != nil {
				fmt.Fprintf(os.Stderr, "difftest: -save: %v\n", err)
				return 2
			}
		}
	}
	if *save != "" && len(failures) == 0 {
		c := gen.GenerateWith(*seed, *one, opt)
		if err := saveCase(*dir, *save, c, *seed, *one, *without, diff.Outcome{}); err != nil {
			fmt.Fprintf(os.Stderr, "difftest: -save: %v\n", err)
			return 2
		}
	}

	cases := last - first
	if *without != "" {
		fmt.Printf("\n(generator features left out: %s)", *without)
	}
	fmt.Printf("\ndifftest: seed %d, %d cases, %v (%.1f ms/case)\n", *seed, cases, elapsed.Round(time.Millisecond), float64(elapsed.Microseconds())/1000/float64(max(cases, 1)))
	for _, b := range backends {
		var parts []string
		for _, k := range []diff.Kind{diff.Equal, diff.Differ, diff.Svc2rulesError, diff.OracleError, diff.BothError, diff.NotImplemented} {
			if counts[b][k] > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", k, counts[b][k]))
			}
		}
		fmt.Printf("  %-8s %s\n", b, strings.Join(parts, ", "))
	}
	if len(failures) > 0 {
		fmt.Printf("FAIL: %d mismatches in %d cases\n", len(failures), len(idx))
		return 1
	}
	fmt.Println("PASS: svc2rules equals kube-proxy on every case")
	return 0
}

func printCase(c *gen.Case) {
	fmt.Printf("--- args\n%s", c.ArgsFile(""))
	fmt.Printf("--- input.yaml\n%s", c.Render())
}

func truncate(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = append(ls[:lines], fmt.Sprintf("... (%d more lines)", len(ls)-lines))
	}
	return strings.Join(ls, "\n")
}

func saveCase(dir, name string, c *gen.Case, seed uint64, index int, without string, o diff.Outcome) error {
	if dir == "" {
		d, err := corpus.FindGoldenDir()
		if err != nil {
			return err
		}
		dir = d
	}
	sd := filepath.Join(dir, name)
	if _, err := os.Stat(sd); err == nil {
		return fmt.Errorf("%s exists", sd)
	}
	if err := os.MkdirAll(sd, 0o755); err != nil {
		return err
	}
	why := "passes"
	if o.Kind != "" {
		why = fmt.Sprintf("%s %s (%s) when found", o.Backend, o.Kind, o.Part)
	}
	repro := fmt.Sprintf("go run ./cmd/difftest -seed %d -case %d", seed, index)
	if without != "" {
		repro += " -without " + without
	}
	header := fmt.Sprintf("# Covers: differential-test case (%s, shrunk); svc2rules vs kube-proxy: %s\n", repro, why)
	if err := os.WriteFile(filepath.Join(sd, "input.yaml"), append([]byte(header), c.Render()...), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(sd, "args"), c.ArgsFile("differential test: "+repro), 0o644); err != nil {
		return err
	}
	scs, err := corpus.Load(dir, []string{name})
	if err != nil {
		return err
	}
	g, err := corpus.Generate(scs[0], true)
	if err != nil {
		return err
	}
	if _, err := corpus.Write(scs[0], g); err != nil {
		return err
	}
	fmt.Printf("saved %s (input.yaml, args, kube-proxy %s expected files, PROVENANCE); add a row to golden/README.md\n", sd, oracle.KubernetesVersion)
	return nil
}
