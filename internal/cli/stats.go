package cli

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Stats are the figures "compile --stats" prints to stderr: the size of the
// plan, what the output holds per table, and the time of each phase.
type Stats struct {
	Services, ServicePorts, Endpoints int
	Tables                            []TableStats
	OutputLines, OutputBytes          int
	Phases                            []Phase
}

// TableStats counts one table (or, for ipvs, one part) of the output.
// Counts are in the order they were first met, e.g. chains, rules, sets.
type TableStats struct {
	Name   string
	Counts []Count
	Lines  int
}

// Count is one labelled figure ("chains", "rules", "sets", ...).
type Count struct {
	Label string
	N     int
}

// Phase is the wall time of one step of compile.
type Phase struct {
	Name     string
	Duration time.Duration
}

// phaseTimer records phases into Stats (nil Stats: nothing recorded).
type phaseTimer struct {
	st   *Stats
	last time.Time
}

func newPhaseTimer(st *Stats) *phaseTimer { return &phaseTimer{st: st, last: time.Now()} }

// done ends the phase begun at the previous done (or at the start).
func (t *phaseTimer) done(name string) {
	now := time.Now()
	if t.st != nil {
		t.st.Phases = append(t.st.Phases, Phase{Name: name, Duration: now.Sub(t.last)})
	}
	t.last = now
}

func (t *TableStats) add(label string) {
	for i := range t.Counts {
		if t.Counts[i].Label == label {
			t.Counts[i].N++
			return
		}
	}
	t.Counts = append(t.Counts, Count{Label: label, N: 1})
}

// countOutput fills the per-table figures of st from the compiled text of
// the backend (the backends stay pure: the text is the truth).
func countOutput(st *Stats, o CompileOptions, out string) {
	st.OutputBytes = len(out)
	tables := map[string]*TableStats{}
	var order []string
	use := func(name string) *TableStats {
		t, ok := tables[name]
		if !ok {
			t = &TableStats{Name: name}
			tables[name] = t
			order = append(order, name)
		}
		return t
	}

	// section is the ipvs script's payload being read ("" outside one);
	// with --ipvs-section the whole output is that payload.
	section := ""
	if o.Backend == "ipvs" {
		section = o.IPVSSection
	}
	iptTable := "" // the iptables-save/restore table being read
	for len(out) > 0 {
		line := out
		if i := strings.IndexByte(out, '\n'); i >= 0 {
			line, out = out[:i], out[i+1:]
		} else {
			out = ""
		}
		st.OutputLines++
		if o.Backend == "ipvs" && o.IPVSSection == "" {
			if name, ok := strings.CutSuffix(line, "_payload() {"); ok && !strings.ContainsAny(name, " \t") {
				section = name
				continue
			}
			if line == "SVC2RULES_EOF" {
				section = ""
				continue
			}
			if section != "" && strings.HasPrefix(line, "\tcat <<") {
				continue
			}
		}
		switch {
		case o.Backend == "nft":
			// "add chain ip kube-proxy NAME", "flush chain ...", "delete ...".
			f := strings.Fields(line)
			if len(f) < 4 || (f[0] != "add" && f[0] != "flush" && f[0] != "delete") {
				continue
			}
			t := use(f[2] + " " + f[3])
			t.Lines++
			if f[0] == "add" {
				switch f[1] {
				case "chain":
					t.add("chains")
				case "rule":
					t.add("rules")
				case "set", "map":
					t.add("sets")
				case "element":
					t.add("elements")
				}
			}
		case section == "ipvsadm":
			t := use("ipvs")
			t.Lines++
			switch {
			case strings.HasPrefix(line, "-A "):
				t.add("virtual servers")
			case strings.HasPrefix(line, "-a "):
				t.add("real servers")
			}
		case section == "ipset":
			t := use("ipset")
			t.Lines++
			switch {
			case strings.HasPrefix(line, "create "):
				t.add("sets")
			case strings.HasPrefix(line, "add "):
				t.add("entries")
			}
		case section == "addresses":
			t := use("kube-ipvs0")
			t.Lines++
			t.add("addresses")
		default: // iptables-save / iptables-restore text
			if strings.HasPrefix(line, "*") {
				iptTable = line[1:]
			}
			if iptTable == "" {
				continue
			}
			t := use(iptTable)
			t.Lines++
			switch {
			case strings.HasPrefix(line, ":"):
				t.add("chains")
			case strings.HasPrefix(line, "-A ") || strings.HasPrefix(line, "-I "):
				t.add("rules")
			case line == "COMMIT":
				iptTable = ""
			}
		}
	}
	for _, name := range order {
		st.Tables = append(st.Tables, *tables[name])
	}
}

// WriteResult writes the compiled rules (WriteOutput) and, with --stats,
// prints the figures to stderr, the write included.
func WriteResult(o CompileOptions, res *Result, stdout, stderr io.Writer) error {
	t := newPhaseTimer(res.Stats)
	err := WriteOutput(o.Output, res.Output, stdout)
	t.done("write")
	if err == nil && res.Stats != nil {
		PrintStats(stderr, res.Stats)
	}
	return err
}

// PrintStats prints st, one "svc2rules: stats:" line per figure group.
func PrintStats(w io.Writer, st *Stats) {
	fmt.Fprintf(w, "svc2rules: stats: plan: %d services, %d service ports, %d endpoints\n", st.Services, st.ServicePorts, st.Endpoints)
	for _, t := range st.Tables {
		var parts []string
		for _, c := range t.Counts {
			parts = append(parts, fmt.Sprintf("%d %s", c.N, c.Label))
		}
		parts = append(parts, fmt.Sprintf("%d lines", t.Lines))
		fmt.Fprintf(w, "svc2rules: stats: table %s: %s\n", t.Name, strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "svc2rules: stats: output: %d lines, %d bytes\n", st.OutputLines, st.OutputBytes)
	var total time.Duration
	var parts []string
	for _, p := range st.Phases {
		total += p.Duration
		parts = append(parts, fmt.Sprintf("%s %s", p.Name, fmtDuration(p.Duration)))
	}
	parts = append(parts, "total "+fmtDuration(total))
	fmt.Fprintf(w, "svc2rules: stats: time: %s\n", strings.Join(parts, ", "))
}

func fmtDuration(d time.Duration) string {
	return fmt.Sprintf("%.3fs", d.Seconds())
}

// planStats fills the plan figures of st.
func planStats(st *Stats, res *Result) {
	if res.Plan == nil {
		return
	}
	seen := map[string]bool{}
	for _, sp := range res.Plan.ServicePorts {
		seen[sp.Namespace+"/"+sp.Name] = true
	}
	st.Services = len(seen)
	st.ServicePorts = len(res.Plan.ServicePorts)
	st.Endpoints = res.Plan.TotalEndpoints
}
