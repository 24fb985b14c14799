// Package corpus reads and writes the golden corpus (the repository's
// golden/<scenario>/ directories): input.yaml and args are the scenario, the
// expected files are what kube-proxy v1.37.2 produces for it, computed by the
// oracle.
package corpus

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/svc2rules/svc2rules/conformance/oracle"
)

// File is one expected output of a scenario.
type File struct {
	Name    string // file name in the scenario directory
	Backend string // svc2rules backend
	View    string // iptables view (iptables, ipvs)
}

// Files are the expected outputs every scenario gets, in PROVENANCE order.
var Files = []File{
	{"iptables.txt", "iptables", "save"},
	{"iptables-restore.txt", "iptables", "restore"},
	{"nft.txt", "nft", "save"},
	{"ipvs.txt", "ipvs", "save"},
}

// Provenance is the name of the file that says where the expected files come from.
const Provenance = "PROVENANCE"

// Materialized is the file that, when a scenario has it, is the oracle's
// input instead of input.yaml: the scenario's manifests with what the API
// server and controllers would add (allocation, EndpointSlices from
// workloads), written by `svc2rules materialize`. kube-proxy only ever sees
// such objects.
const Materialized = "materialized.yaml"

// Scenario is one golden/<name>/ directory.
type Scenario struct {
	Name      string
	Dir       string
	Input     []byte // the oracle's input: materialized.yaml if present, else input.yaml
	InputFile string
	Args      []byte // content of the args file (may be empty)
	// Files are the expected files this scenario has (Files names). A scenario
	// with none of them and no other expected file (e.g. userspace.txt) is new
	// and gets all of them; one that only has other backends' files (a
	// userspace-only scenario) gets none.
	Files []File
}

// Settings parses the scenario's args.
func (s *Scenario) Settings() (*oracle.Settings, error) {
	st, err := oracle.ParseArgsFile(s.Args)
	if err != nil {
		return nil, fmt.Errorf("%s/args: %v", s.Name, err)
	}
	return st, nil
}

// FindGoldenDir returns the repository's golden/ directory seen from the
// current directory (conformance/ or the repository root).
func FindGoldenDir() (string, error) {
	for _, d := range []string{"../golden", "golden", "../../golden", "../../../golden"} {
		if _, err := os.Stat(filepath.Join(d, "README.md")); err == nil {
			return filepath.Clean(d), nil
		}
	}
	return "", fmt.Errorf("cannot find the golden/ directory; use -dir")
}

// Load reads the named scenarios of dir, or all (every subdirectory with an
// input.yaml) when names is empty.
func Load(dir string, names []string) ([]*Scenario, error) {
	if len(names) == 0 {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.IsDir() {
				if _, err := os.Stat(filepath.Join(dir, e.Name(), "input.yaml")); err == nil {
					names = append(names, e.Name())
				}
			}
		}
		sort.Strings(names)
	}
	var out []*Scenario
	for _, n := range names {
		n = strings.TrimSuffix(filepath.Base(strings.TrimSuffix(n, "/")), "/")
		sd := filepath.Join(dir, n)
		inputFile := Materialized
		input, err := os.ReadFile(filepath.Join(sd, Materialized))
		if os.IsNotExist(err) {
			inputFile = "input.yaml"
			input, err = os.ReadFile(filepath.Join(sd, "input.yaml"))
		}
		if err != nil {
			return nil, fmt.Errorf("scenario %s: %v", n, err)
		}
		args, err := os.ReadFile(filepath.Join(sd, "args"))
		if err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("scenario %s: %v", n, err)
		}
		sc := &Scenario{Name: n, Dir: sd, Input: input, InputFile: inputFile, Args: args}
		for _, f := range Files {
			if _, err := os.Stat(filepath.Join(sd, f.Name)); err == nil {
				sc.Files = append(sc.Files, f)
			}
		}
		if len(sc.Files) == 0 {
			others, _ := filepath.Glob(filepath.Join(sd, "*.txt"))
			if len(others) == 0 {
				sc.Files = Files // a new scenario
			}
		}
		out = append(out, sc)
	}
	return out, nil
}

// Generated are the expected files of one scenario as kube-proxy produces them
// now: file name -> content; a file kube-proxy cannot produce is absent (and
// PROVENANCE says why).
type Generated map[string][]byte

// Generate runs the oracle for every expected file of s (all of Files when
// all is set).
func Generate(s *Scenario, all bool) (Generated, error) {
	files := s.Files
	if all {
		files = Files
	}
	if len(files) == 0 {
		return Generated{}, nil
	}
	st, err := s.Settings()
	if err != nil {
		return nil, err
	}
	out := Generated{}
	var prov bytes.Buffer
	fmt.Fprintf(&prov, "# Expected files of golden/%s: the output of the real kube-proxy %s rule generators\n", s.Name, oracle.KubernetesVersion)
	fmt.Fprintf(&prov, "# (k8s.io/kubernetes %s, one full sync, run offline by conformance/oracle) for %s and args.\n", oracle.KubernetesVersion, s.InputFile)
	fmt.Fprintf(&prov, "# Regenerate: cd conformance && go run ./cmd/golden -update %s\n", s.Name)
	// Lines about other files (e.g. "materialized.yaml: svc2rules materialize
	// ...") are kept as they are.
	if old, err := os.ReadFile(filepath.Join(s.Dir, Provenance)); err == nil {
		for _, l := range strings.Split(string(old), "\n") {
			name, _, ok := strings.Cut(l, ":")
			if !ok || strings.HasPrefix(l, "#") || isExpectedFile(name) {
				continue
			}
			prov.WriteString(l + "\n")
		}
	}
	for _, f := range files {
		cmd := fmt.Sprintf("go run ./cmd/kporacle -b %s", f.Backend)
		if f.Backend == "iptables" && f.View == "restore" {
			cmd += " --iptables-view restore"
		}
		cmd += " --scenario ../golden/" + s.Name
		if s.InputFile != "input.yaml" {
			cmd = fmt.Sprintf("go run ./cmd/kporacle -b %s", f.Backend)
			if f.Backend == "iptables" && f.View == "restore" {
				cmd += " --iptables-view restore"
			}
			cmd += fmt.Sprintf(" --args ../golden/%s/args -f ../golden/%s/%s", s.Name, s.Name, s.InputFile)
		}
		res, err := oracle.Run(f.Backend, st, s.Input, oracle.RunOptions{IPTablesView: f.View})
		if err != nil {
			msg := strings.Join(strings.Fields(err.Error()), " ")
			fmt.Fprintf(&prov, "%s: omitted: kube-proxy %s failed: %s (%s)\n", f.Name, oracle.KubernetesVersion, msg, cmd)
			continue
		}
		out[f.Name] = []byte(res.Output)
		fmt.Fprintf(&prov, "%s: kube-proxy %s: %s\n", f.Name, oracle.KubernetesVersion, cmd)
	}
	out[Provenance] = prov.Bytes()
	return out, nil
}

func isExpectedFile(name string) bool {
	for _, f := range Files {
		if f.Name == name {
			return true
		}
	}
	return false
}

// Write writes g into the scenario directory (only files whose content
// changes) and removes expected files kube-proxy no longer produces. It
// returns the names of the files it changed.
func Write(s *Scenario, g Generated) ([]string, error) {
	var changed []string
	if len(g) == 0 {
		return nil, nil
	}
	names := []string{Provenance}
	for _, f := range Files {
		names = append(names, f.Name)
	}
	for _, n := range names {
		p := filepath.Join(s.Dir, n)
		old, err := os.ReadFile(p)
		exists := err == nil
		data, want := g[n]
		switch {
		case want && (!exists || !bytes.Equal(old, data)):
			if err := os.WriteFile(p, data, 0o644); err != nil {
				return changed, err
			}
			changed = append(changed, n)
		case !want && exists && n != Provenance:
			if err := os.Remove(p); err != nil {
				return changed, err
			}
			changed = append(changed, n+" (removed)")
		}
	}
	return changed, nil
}

// Mismatch is one committed expected file that differs from kube-proxy's
// output now.
type Mismatch struct {
	File    string
	Summary string // one line
	Diff    string // unified diff, committed -> kube-proxy now (truncated)
}

// Check compares the committed expected files of s with g. PROVENANCE is not
// compared (see Provenance staleness in cmd/golden).
func Check(s *Scenario, g Generated, maxDiffLines int) ([]Mismatch, error) {
	var out []Mismatch
	for _, f := range s.Files {
		p := filepath.Join(s.Dir, f.Name)
		old, err := os.ReadFile(p)
		exists := err == nil
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		data, want := g[f.Name]
		switch {
		case !exists && !want:
		case !exists:
			out = append(out, Mismatch{File: f.Name, Summary: "missing: kube-proxy produces it (" + lineCount(data) + ")"})
		case !want:
			out = append(out, Mismatch{File: f.Name, Summary: "committed, but kube-proxy now fails to produce it (see PROVENANCE after -update)"})
		case !bytes.Equal(old, data):
			sum, diff := DiffSummary(string(old), string(data), "committed golden/"+s.Name+"/"+f.Name, "kube-proxy "+oracle.KubernetesVersion+" now", maxDiffLines)
			out = append(out, Mismatch{File: f.Name, Summary: sum, Diff: diff})
		}
	}
	return out, nil
}

func lineCount(b []byte) string {
	return fmt.Sprintf("%d lines", bytes.Count(b, []byte("\n")))
}

// DiffSummary returns a one-line summary of how b differs from a and a unified
// diff truncated to maxLines lines.
func DiffSummary(a, b, labelA, labelB string, maxLines int) (string, string) {
	al, bl := difflib.SplitLines(a), difflib.SplitLines(b)
	m := difflib.NewMatcher(al, bl)
	var removed, added, first int
	first = -1
	for _, op := range m.GetOpCodes() {
		if op.Tag == 'e' {
			continue
		}
		if first < 0 {
			first = op.I1 + 1
		}
		removed += op.I2 - op.I1
		added += op.J2 - op.J1
	}
	sum := fmt.Sprintf("%d lines differ (-%d +%d), first at line %d", max(removed, added), removed, added, first)
	if a != "" && b != "" && a != b && removed == 0 && added == 0 {
		sum = "differs only in trailing newline / line ending"
	}
	diff, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{A: al, B: bl, FromFile: labelA, ToFile: labelB, Context: 1})
	lines := strings.Split(strings.TrimRight(diff, "\n"), "\n")
	if maxLines > 0 && len(lines) > maxLines {
		lines = append(lines[:maxLines], fmt.Sprintf("... (%d more diff lines)", len(lines)-maxLines))
	}
	return sum, strings.Join(lines, "\n")
}
