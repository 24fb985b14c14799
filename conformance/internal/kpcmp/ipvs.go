package kpcmp

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// IPVSSections are svc2rules' --ipvs-section names and the headers of the
// oracle's four ipvs sections.
var IPVSSections = []struct{ Name, Header string }{
	{"ipvsadm", "### ipvsadm-save -n"},
	{"ipset", "### ipset save"},
	{"addresses", "### kube-ipvs0 addresses"},
	{"iptables", "### iptables-save"},
}

// SplitIPVS splits the oracle's ipvs output into its sections (by svc2rules'
// section name).
func SplitIPVS(text string) (map[string]string, error) {
	byHeader := map[string]string{}
	for _, s := range IPVSSections {
		byHeader[s.Header] = s.Name
	}
	out := map[string]*strings.Builder{}
	var cur *strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "### ") {
			name, ok := byHeader[strings.TrimSpace(line)]
			if !ok {
				return nil, fmt.Errorf("unknown section header %q", line)
			}
			cur = &strings.Builder{}
			out[name] = cur
			continue
		}
		if cur != nil {
			cur.WriteString(line + "\n")
		}
	}
	res := map[string]string{}
	for k, v := range out {
		res[k] = v.String()
	}
	return res, nil
}

// normLines: blank and # lines dropped, blanks collapsed, sorted.
func normLines(text string) []string {
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		l = strings.Join(strings.Fields(l), " ")
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, l)
	}
	sort.Strings(lines)
	return lines
}

// IPVSSection compares one section other than iptables (which is compared
// with the iptables canonicaliser): as sorted lists of lines.
func IPVSSection(want, got string) (bool, string) {
	w, g := normLines(want), normLines(got)
	if equalLines(w, g) {
		return true, ""
	}
	return false, LineDiff(w, g)
}

// LineDiff is a one-line summary and a short unified diff (first hunks) of two
// normalised line lists, kube-proxy's first.
func LineDiff(want, got []string) string {
	m := difflib.NewMatcher(want, got)
	var nw, ng int
	first := ""
	for _, op := range m.GetOpCodes() {
		if op.Tag == 'e' {
			continue
		}
		if first == "" {
			switch {
			case op.I1 < len(want):
				first = want[op.I1]
			case op.J1 < len(got):
				first = got[op.J1]
			}
		}
		nw += op.I2 - op.I1
		ng += op.J2 - op.J1
	}
	if len(first) > 100 {
		first = first[:100] + "..."
	}
	head := fmt.Sprintf("%d kube-proxy lines vs %d svc2rules lines differ; first: %s", nw, ng, first)
	d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: addNL(want), B: addNL(got), FromFile: "kube-proxy v1.37.2", ToFile: "svc2rules", Context: 1,
	})
	lines := strings.Split(strings.TrimRight(d, "\n"), "\n")
	if len(lines) > 40 {
		lines = append(lines[:40], fmt.Sprintf("... (%d more diff lines)", len(lines)-40))
	}
	return head + "\n" + strings.Join(lines, "\n")
}

func addNL(ls []string) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l + "\n"
	}
	return out
}
