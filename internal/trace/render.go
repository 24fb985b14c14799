package trace

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
)

// Formats are the output formats of a trace.
var Formats = []string{"text", "json"}

// Write prints a trace in format "text" or "json".
func Write(w io.Writer, format string, r *Result) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "text", "":
		_, err := io.WriteString(w, Text(r))
		return err
	}
	return fmt.Errorf("unknown format %q (text or json)", format)
}

// Percent prints a probability as a percentage ("33.3%").
func Percent(p float64) string {
	s := fmt.Sprintf("%.1f", 100*p)
	s = strings.TrimSuffix(s, ".0")
	return s + "%"
}

func (o Outcome) describe() string {
	var b strings.Builder
	switch o.Verdict {
	case VerdictDNAT:
		fmt.Fprintf(&b, "DNAT to %s", o.Endpoint)
	case VerdictProxy:
		if o.Endpoint != "" {
			fmt.Fprintf(&b, "PROXY: kube-proxy dials %s", o.Endpoint)
		} else {
			b.WriteString("PROXY: kube-proxy's userspace proxy (backends unknown)")
		}
	case VerdictReject:
		b.WriteString("REJECT: the client sees \"connection refused\"")
	case VerdictDrop:
		b.WriteString("DROP: the client times out")
	case VerdictAccept:
		b.WriteString("ACCEPT (not rewritten)")
	case VerdictNoMatch:
		fmt.Fprintf(&b, "NO MATCH: no rule rewrote or stopped it; it goes to %s unchanged", o.Endpoint)
	}
	if o.By != "" {
		fmt.Fprintf(&b, "  [by %s]", o.By)
	}
	switch o.Delivered {
	case "local":
		b.WriteString("; delivered to a socket on the node")
	case "forwarded":
		b.WriteString("; forwarded")
	}
	if o.Delivered != "" {
		if o.Masquerade {
			b.WriteString("; masqueraded (the destination sees the node's address)")
		} else {
			b.WriteString("; not masqueraded")
		}
	}
	return b.String()
}

// Text is the human-readable trace: the verdict with its probabilities,
// then the path through the rules (a tree where random choices fork).
func Text(r *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "trace: %s %s -> %s from %s", r.Query.Proto, r.Query.Src, r.Query.Dst, r.Query.From)
	if r.Query.Iif != "" {
		fmt.Fprintf(&b, " (in on %s)", r.Query.Iif)
	}
	fmt.Fprintf(&b, "\nrules: %s (%s)\n\n", r.Backend, r.Source)

	v := r.Verdict()
	switch {
	case v == "MIXED":
		b.WriteString("verdict: depends on a random choice\n")
	case (v == VerdictDNAT || v == VerdictProxy) && len(r.Outcomes) > 1:
		fmt.Fprintf(&b, "verdict: %s, load-balanced over %d endpoints\n", v, len(r.Endpoints()))
	default:
		fmt.Fprintf(&b, "verdict: %s\n", v)
	}
	for _, o := range r.Outcomes {
		fmt.Fprintf(&b, "  %6s  %s\n", Percent(o.Probability), o.describe())
	}
	var aff []string
	seen := map[string]bool{}
	for _, o := range r.Outcomes {
		for _, a := range strings.Split(o.Affinity, "; ") {
			if a != "" && !seen[a] {
				seen[a] = true
				aff = append(aff, a)
			}
		}
	}
	if len(aff) > 0 {
		b.WriteString("session affinity:\n")
		for _, a := range aff {
			fmt.Fprintf(&b, "  - %s\n", a)
		}
	}

	b.WriteString("\npath:\n")
	root := buildTree(r.Paths)
	printTree(&b, root, "  ")

	if len(r.Assumptions) > 0 {
		b.WriteString("\nassumptions:\n")
		for _, a := range r.Assumptions {
			fmt.Fprintf(&b, "  - %s\n", a)
		}
	}
	if len(r.Warnings) > 0 {
		b.WriteString("\nwarnings:\n")
		for _, w := range r.Warnings {
			fmt.Fprintf(&b, "  - %s\n", w)
		}
	}
	return b.String()
}

type node struct {
	step     Step
	children []*node
	index    map[string]*node
	leaves   []Path
	prob     float64
}

func buildTree(paths []Path) *node {
	root := &node{index: map[string]*node{}}
	for _, p := range paths {
		n := root
		n.prob += p.Probability
		for _, s := range p.Steps {
			k := s.key()
			c := n.index[k]
			if c == nil {
				c = &node{step: s, index: map[string]*node{}}
				n.index[k] = c
				n.children = append(n.children, c)
			}
			c.prob += p.Probability
			n = c
		}
		n.leaves = append(n.leaves, p)
	}
	return root
}

func stepLine(s Step) (string, string) {
	where := s.Table
	if s.Chain != "" {
		if where != "" {
			where += " "
		}
		where += s.Chain
	}
	if s.Rule > 0 {
		where += fmt.Sprintf(" #%d", s.Rule)
	}
	head := fmt.Sprintf("%-11s ", s.Hook)
	if where != "" && s.Hook != "ipvs" {
		head += where + ": "
	} else if s.Hook == "ipvs" {
		head += s.Chain + ": "
	}
	head += s.Note
	return head, s.Text
}

func leafLine(p Path) string {
	o := Outcome{Verdict: p.Verdict, By: p.By, Endpoint: p.Endpoint, Delivered: p.Delivered, Masquerade: p.Masquerade}
	return "=> " + o.describe()
}

func printTree(b *strings.Builder, n *node, indent string) {
	for {
		for _, l := range n.leaves {
			fmt.Fprintf(b, "%s%s\n", indent, leafLine(l))
		}
		if len(n.children) == 1 && len(n.leaves) == 0 {
			c := n.children[0]
			writeStep(b, c.step, indent, "")
			n = c
			continue
		}
		break
	}
	for i, c := range n.children {
		mark, cont := "├─ ", "│  "
		if i == len(n.children)-1 {
			mark, cont = "└─ ", "   "
		}
		label := fmt.Sprintf("[%s] ", fracOrPercent(c.prob/math.Max(n.prob, 1e-12)))
		writeStep(b, c.step, indent+mark, label)
		printTree(b, c, indent+cont)
	}
}

func fracOrPercent(p float64) string {
	if p > 0 {
		n := math.Round(1 / p)
		if n >= 1 && math.Abs(1/n-p) < 1e-6 {
			if n == 1 {
				return "100%"
			}
			return fmt.Sprintf("1/%d", int(n))
		}
	}
	return Percent(p)
}

func writeStep(b *strings.Builder, s Step, prefix, label string) {
	head, text := stepLine(s)
	fmt.Fprintf(b, "%s%s%s\n", prefix, label, head)
	if text != "" {
		pad := prefix
		if strings.HasSuffix(prefix, "├─ ") {
			pad = strings.TrimSuffix(prefix, "├─ ") + "│  "
		} else if strings.HasSuffix(prefix, "└─ ") {
			pad = strings.TrimSuffix(prefix, "└─ ") + "   "
		}
		fmt.Fprintf(b, "%s            %s\n", pad, text)
	}
}
