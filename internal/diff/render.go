package diff

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/svc2rules/svc2rules/internal/check"
)

// Formats are the values of diff -o.
var Formats = []string{"text", "markdown", "json"}

// MaxMarkdownRuleBytes bounds the rule diff in a markdown report, so the
// whole comment stays under the 65536 characters GitHub allows.
const MaxMarkdownRuleBytes = 40000

// Bounds of the markdown impact list and service port table.
const (
	maxMarkdownImpactBytes = 6000
	maxMarkdownPortsBytes  = 12000
)

// Write renders the report.
func Write(w io.Writer, format string, r *Report) error {
	var s string
	switch format {
	case "text", "":
		s = Text(r)
	case "markdown":
		s = Markdown(r)
	case "json":
		b, err := json.MarshalIndent(r.normalized(), "", "  ")
		if err != nil {
			return err
		}
		s = string(b) + "\n"
	default:
		return fmt.Errorf("unknown output format %q (%s)", format, strings.Join(Formats, ", "))
	}
	_, err := io.WriteString(w, s)
	return err
}

// normalized has empty lists instead of nil ones (stable JSON).
func (r *Report) normalized() *Report {
	c := *r
	if c.Ports == nil {
		c.Ports = []PortChange{}
	}
	if c.Impact == nil {
		c.Impact = []Impact{}
	}
	if c.Rules.Hunks == nil {
		c.Rules.Hunks = []Hunk{}
	}
	if c.Rules.Chains == nil {
		c.Rules.Chains = []Chain{}
	}
	return &c
}

func (r *Report) title() string {
	var b strings.Builder
	if r.Mode == "backends" {
		fmt.Fprintf(&b, "%s → %s", r.Old.Backend, r.New.Backend)
	} else {
		fmt.Fprintf(&b, "%s → %s (%s", check.Sanitize(r.Old.Label), check.Sanitize(r.New.Label), r.New.Backend)
	}
	sep := ", "
	if r.Mode == "backends" {
		b.WriteString(" (")
		sep = ""
	}
	if r.Family != "" {
		b.WriteString(sep + r.Family)
		sep = ", "
	}
	if r.NodeName != "" {
		b.WriteString(sep + "node " + r.NodeName)
	}
	b.WriteString(")")
	return b.String()
}

func (r *Report) counts() string {
	n := map[string]int{}
	for _, p := range r.Ports {
		n[p.Change]++
	}
	return fmt.Sprintf("%d added, %d removed, %d changed, %d unchanged", n["added"], n["removed"], n["changed"], r.Unchanged)
}

func sign(change string) string {
	switch change {
	case "added":
		return "+"
	case "removed":
		return "-"
	}
	return "~"
}

// details are a port change's lines, in a fixed order.
func details(p PortChange) []string {
	var out []string
	out = append(out, p.Fields...)
	if len(p.EndpointsAdded) > 0 {
		out = append(out, "endpoints added: "+strings.Join(p.EndpointsAdded, ", "))
	}
	if len(p.EndpointsRemoved) > 0 {
		out = append(out, "endpoints removed: "+strings.Join(p.EndpointsRemoved, ", "))
	}
	for _, c := range p.EndpointsChanged {
		out = append(out, "endpoint "+c)
	}
	out = append(out, p.Balancing...)
	for _, t := range p.Traffic {
		out = append(out, fmt.Sprintf("%s: %s → %s", t.Path, t.Before, t.After))
	}
	return out
}

// Text renders the report for a terminal.
func Text(r *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "svc2rules diff: %s\n", r.title())
	if !r.Changed() {
		b.WriteString("no change\n")
		return b.String()
	}
	fmt.Fprintf(&b, "Service ports: %s\n", r.counts())
	if len(r.Node) > 0 {
		b.WriteString("\nNode:\n")
		for _, n := range r.Node {
			fmt.Fprintf(&b, "  * %s\n", n)
		}
	}
	if len(r.Impact) > 0 {
		b.WriteString("\nImpact:\n")
		for _, im := range r.Impact {
			mark := "+"
			if im.Breaks {
				mark = "!"
			}
			fmt.Fprintf(&b, "  %s %s\n", mark, im.Text)
		}
	}
	for _, p := range r.Ports {
		fmt.Fprintf(&b, "\n%s %s %s (%s)\n", sign(p.Change), p.SPN, p.Protocol, p.Change)
		for _, d := range details(p) {
			fmt.Fprintf(&b, "    %s\n", d)
		}
	}
	if len(r.Rules.Hunks) > 0 {
		fmt.Fprintf(&b, "\nRules: +%d -%d lines\n", r.Rules.Added, r.Rules.Removed)
		writeUnified(&b, r, -1)
		if len(r.Rules.Chains) > 0 {
			b.WriteString("\nChains:\n")
			for _, c := range r.Rules.Chains {
				fmt.Fprintf(&b, "  %s  %s  %s\n", c.Name, c.Service, c.Role)
			}
		}
	}
	return b.String()
}

// writeUnified writes the unified diff; with max >= 0 it stops after about
// max bytes and says how much was left out.
func writeUnified(b *strings.Builder, r *Report, max int) {
	start := b.Len()
	fmt.Fprintf(b, "--- %s\n+++ %s\n", check.Sanitize(r.Rules.OldLabel), check.Sanitize(r.Rules.NewLabel))
	total := 0
	for _, h := range r.Rules.Hunks {
		total += len(h.Lines)
	}
	written := 0
	for _, h := range r.Rules.Hunks {
		if max >= 0 && b.Len()-start > max {
			fmt.Fprintf(b, "... %d more lines (run svc2rules diff for all of them)\n", total-written)
			return
		}
		fmt.Fprintf(b, "@@ -%d,%d +%d,%d @@", h.OldStart, h.OldCount, h.NewStart, h.NewCount)
		if len(h.Services) > 0 {
			svcs := h.Services
			more := ""
			if len(svcs) > 3 {
				more = fmt.Sprintf(" and %d more", len(svcs)-3)
				svcs = svcs[:3]
			}
			fmt.Fprintf(b, " %s%s", strings.Join(svcs, ", "), more)
		}
		b.WriteByte('\n')
		for _, l := range h.Lines {
			if max >= 0 && b.Len()-start > max {
				fmt.Fprintf(b, "... %d more lines (run svc2rules diff for all of them)\n", total-written)
				return
			}
			b.WriteString(l)
			b.WriteByte('\n')
			written++
		}
	}
}

// mdText escapes text for a markdown paragraph or table cell.
func mdText(s string) string {
	s = html.EscapeString(check.Sanitize(s))
	r := strings.NewReplacer("|", `\|`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`, "#", `\#`, "~", `\~`)
	return r.Replace(s)
}

// mdCode is s as an inline code span that no backtick in s can close.
func mdCode(s string) string {
	s = check.Sanitize(s)
	longest, run := 0, 0
	for _, c := range s {
		if c == '`' {
			run++
			if run > longest {
				longest = run
			}
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if longest > 0 {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

// Markdown renders the report as a pull-request comment.
func Markdown(r *Report) string {
	var b strings.Builder
	if r.Mode == "backends" {
		fmt.Fprintf(&b, "### svc2rules diff: %s → %s", mdCode(r.Old.Backend), mdCode(r.New.Backend))
	} else {
		fmt.Fprintf(&b, "### svc2rules diff: %s → %s", mdCode(r.Old.Label), mdCode(r.New.Label))
	}
	var facts []string
	if r.Mode != "backends" {
		facts = append(facts, mdText(r.New.Backend))
	}
	if r.Family != "" {
		facts = append(facts, r.Family)
	}
	if r.NodeName != "" {
		facts = append(facts, "node "+mdCode(r.NodeName))
	}
	fmt.Fprintf(&b, " (%s)\n\n", strings.Join(facts, ", "))
	if !r.Changed() {
		b.WriteString("No change.\n")
		return b.String()
	}
	fmt.Fprintf(&b, "**Service ports:** %s\n", r.counts())
	if len(r.Node) > 0 {
		b.WriteString("\n#### Node\n")
		for _, n := range r.Node {
			fmt.Fprintf(&b, "- %s\n", mdText(n))
		}
	}
	if len(r.Impact) > 0 {
		b.WriteString("\n#### Impact\n")
		start := b.Len()
		for i, im := range r.Impact {
			if b.Len()-start > maxMarkdownImpactBytes {
				fmt.Fprintf(&b, "- ... and %d more\n", len(r.Impact)-i)
				break
			}
			mark := ":white_check_mark:"
			if im.Breaks {
				mark = ":warning:"
			}
			fmt.Fprintf(&b, "- %s %s\n", mark, mdText(im.Text))
		}
	}
	if len(r.Ports) > 0 {
		b.WriteString("\n#### Service ports\n| | Service port | Changes |\n|---|---|---|\n")
		start := b.Len()
		for i, p := range r.Ports {
			if b.Len()-start > maxMarkdownPortsBytes {
				fmt.Fprintf(&b, "| | ... | and %d more service ports (run svc2rules diff for all of them) |\n", len(r.Ports)-i)
				break
			}
			var cells []string
			for _, d := range details(p) {
				cells = append(cells, mdText(d))
			}
			fmt.Fprintf(&b, "| %s | %s %s | %s |\n", sign(p.Change), mdCode(p.SPN), p.Protocol, strings.Join(cells, "<br>"))
		}
	}
	if len(r.Rules.Hunks) > 0 {
		fmt.Fprintf(&b, "\n<details><summary>Rule diff: +%d −%d lines</summary>\n\n", r.Rules.Added, r.Rules.Removed)
		var u strings.Builder
		writeUnified(&u, r, MaxMarkdownRuleBytes)
		text := u.String()
		fence := "```"
		for strings.Contains(text, fence) {
			fence += "`"
		}
		fmt.Fprintf(&b, "%sdiff\n%s%s\n", fence, text, fence)
		if len(r.Rules.Chains) > 0 {
			b.WriteString("\n| Chain | Service | Role |\n|---|---|---|\n")
			for _, c := range r.Rules.Chains {
				fmt.Fprintf(&b, "| %s | %s | %s |\n", mdCode(c.Name), mdCode(c.Service), mdText(c.Role))
			}
		}
		b.WriteString("\n</details>\n")
	}
	return b.String()
}
